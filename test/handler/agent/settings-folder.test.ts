import { readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listCurrentSettings, SettingsFiles } from '../../../src/handler/agent/settings-folder.js';
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
    await file('x.settings', 5000);
    await file('notes.txt', 5000);
    await file('..x.1.settings', 5000);
    expect(await listCurrentSettings(dir())).toEqual([{ name: 'c', seq: 10, path: join(dir(), 'c.10.settings') }]);
  });

  it('returns nothing for a folder that does not exist', async () => {
    expect(await listCurrentSettings(join(dir(), 'missing'))).toEqual([]);
  });
});

describe('SettingsFiles: older settings files removed from what is known in memory', () => {
  it('removes the listed and the noted files of a name below the accepted sequence number, and no other file', async () => {
    for (const name of ['a.1.settings', 'a.2.settings', 'a.9.settings', 'b.1.settings', 'notes.txt']) await file(name, 1000);
    const files = new SettingsFiles(dir());
    await files.refresh();
    await file('a.3.settings', 1000);
    files.note('a', 3);
    expect((await files.removeOlder('a', 9)).sort()).toEqual(['a.1.settings', 'a.2.settings', 'a.3.settings']);
    expect((await readdir(dir())).sort()).toEqual(['a.9.settings', 'b.1.settings', 'notes.txt']);
  });

  it('lists the folder only when told to: a file it was never told of stays until the next refresh', async () => {
    const files = new SettingsFiles(dir());
    await files.refresh();
    await file('a.1.settings', 1000);
    expect(await files.removeOlder('a', 2)).toEqual([]);
    expect(await readdir(dir())).toEqual(['a.1.settings']);
    await files.refresh();
    expect(await files.removeOlder('a', 2)).toEqual(['a.1.settings']);
    expect(await readdir(dir())).toEqual([]);
  });

  it('reports only files it removed: one already gone (or never there) is forgotten quietly', async () => {
    const files = new SettingsFiles(dir());
    files.note('a', 1);
    expect(await files.removeOlder('a', 2)).toEqual([]);
    await file('a.1.settings', 1000);
    expect(await files.removeOlder('a', 2)).toEqual([]);
  });
});
