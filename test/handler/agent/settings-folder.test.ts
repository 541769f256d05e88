import { utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listCurrentSettings } from '../../../src/handler/agent/settings-folder.js';
import { useTempDir } from '../../helpers/temp-dir.js';

const dir = useTempDir('settings-folder');

async function file(name: string, mtimeSeconds: number): Promise<void> {
  await writeFile(join(dir(), name), '{}');
  await utimes(join(dir(), name), mtimeSeconds, mtimeSeconds);
}

describe('current settings files', () => {
  it('takes the newest file of each run command, not the highest sequence number', async () => {
    await file('a.7.settings', 1000);
    await file('a.0.settings', 2000);
    await file('b.1.settings', 1500);
    const current = (await listCurrentSettings(dir())).sort((x, y) => x.name.localeCompare(y.name));
    expect(current).toEqual([
      { name: 'a', seq: 0, path: join(dir(), 'a.0.settings') },
      { name: 'b', seq: 1, path: join(dir(), 'b.1.settings') },
    ]);
  });

  it('takes the highest sequence number when the times are equal, and ignores other and refused files', async () => {
    await file('c.2.settings', 1000);
    await file('c.10.settings', 1000);
    await file('3.settings', 5000);
    await file('notes.txt', 5000);
    await file('..x.1.settings', 5000);
    expect(await listCurrentSettings(dir())).toEqual([{ name: 'c', seq: 10, path: join(dir(), 'c.10.settings') }]);
  });

  it('returns nothing for a folder that does not exist', async () => {
    expect(await listCurrentSettings(join(dir(), 'missing'))).toEqual([]);
  });
});
