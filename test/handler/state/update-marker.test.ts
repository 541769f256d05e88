import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { takeUpdateMarker, writeUpdateMarker, type UpdateMarker } from '../../../src/handler/state/update-marker.js';
import { RunStore } from '../../../src/handler/state/run-store.js';
import { useTempDir } from '../../helpers/temp-dir.js';

const tempDir = useTempDir('update-marker');
const hourMs = 60 * 60 * 1000;
const at = Date.UTC(2026, 10, 26, 10, 0, 0);

describe('update marker', () => {
  it('is written as update-in-progress.json in the state dir', async () => {
    const marker: UpdateMarker = { from: '1.0.0', to: '1.1.0', at };
    await writeUpdateMarker(new RunStore(tempDir()), marker);
    expect(await readdir(tempDir())).toEqual(['update-in-progress.json']);
    expect(JSON.parse(await readFile(join(tempDir(), 'update-in-progress.json'), 'utf8'))).toEqual(marker);
  });

  it('is taken once: the first take returns it and removes the file, the second returns undefined', async () => {
    await writeUpdateMarker(new RunStore(tempDir()), { from: '1.0.0', to: '1.1.0', at });
    expect(await takeUpdateMarker(new RunStore(tempDir()), at + 1000)).toEqual({ from: '1.0.0', to: '1.1.0', at });
    expect(await readdir(tempDir())).toEqual([]);
    expect(await takeUpdateMarker(new RunStore(tempDir()), at + 2000)).toBeUndefined();
  });

  it('is still fresh exactly one hour after it was written', async () => {
    await writeUpdateMarker(new RunStore(tempDir()), { from: '1.0.0', to: '1.1.0', at });
    expect(await takeUpdateMarker(new RunStore(tempDir()), at + hourMs)).toEqual({ from: '1.0.0', to: '1.1.0', at });
  });

  it('is a leftover, ignored and removed, more than one hour after it was written', async () => {
    await writeUpdateMarker(new RunStore(tempDir()), { from: '1.0.0', to: '1.1.0', at });
    expect(await takeUpdateMarker(new RunStore(tempDir()), at + hourMs + 1)).toBeUndefined();
    expect(await readdir(tempDir())).toEqual([]);
  });

  it('returns undefined and removes the file when the marker is not JSON or has the wrong shape', async () => {
    const path = join(tempDir(), 'update-in-progress.json');
    for (const content of ['{"from":"1.0.0"', JSON.stringify({ from: '1.0.0', to: '1.1.0', at: 'now' }), JSON.stringify({ from: '1.0.0', at })]) {
      await writeFile(path, content);
      expect(await takeUpdateMarker(new RunStore(tempDir()), at)).toBeUndefined();
      expect(await readdir(tempDir())).toEqual([]);
    }
  });

  it('returns undefined when there is no marker or no state dir', async () => {
    expect(await takeUpdateMarker(new RunStore(tempDir()), at)).toBeUndefined();
    expect(await takeUpdateMarker(new RunStore(join(tempDir(), 'missing')), at)).toBeUndefined();
  });

  it('returns undefined when the marker path cannot be read', async () => {
    await mkdir(join(tempDir(), 'update-in-progress.json'));
    expect(await takeUpdateMarker(new RunStore(tempDir()), at)).toBeUndefined();
  });
});
