// The settings-folder watcher on the platform's own file events: every way a settings file arrives
// is seen, other files are not, and nothing is reported once it is closed.
import { appendFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { watchSettingsFolder, type SettingsWatcher } from '../../../src/handler/daemon/watcher.js';
import { waitUntil } from '../../helpers/scan.js';
import { useTempDir } from '../../helpers/temp-dir.js';

const dir = useTempDir('watcher');
let watcher: SettingsWatcher | undefined;

afterEach(async () => {
  await watcher?.close();
  watcher = undefined;
});

// Starts a watcher on the test's folder; returns the paths it reported, in order.
async function watchFolder(): Promise<string[]> {
  const seen: string[] = [];
  const errors: unknown[] = [];
  watcher = await watchSettingsFolder(dir(), (path) => void seen.push(path), (error) => void errors.push(error));
  expect(errors).toEqual([]);
  return seen;
}

describe('watchSettingsFolder', () => {
  it('reports a settings file renamed into the folder, as the agent drops it atomically', async () => {
    const seen = await watchFolder();
    await writeFile(join(dir(), '.hello.3.tmp'), '{}');
    await rename(join(dir(), '.hello.3.tmp'), join(dir(), 'hello.3.settings'));
    await waitUntil(async () => seen.includes(join(dir(), 'hello.3.settings')), 15_000, 'the renamed settings file');
    expect(seen.every((path) => path === join(dir(), 'hello.3.settings'))).toBe(true);
  });

  it('reports a settings file written in place, and again when it is rewritten', async () => {
    const seen = await watchFolder();
    await writeFile(join(dir(), 'hello.4.settings'), '{"runtime');
    await waitUntil(async () => seen.length > 0, 15_000, 'the new settings file');
    const before = seen.length;
    await appendFile(join(dir(), 'hello.4.settings'), 'Settings":[]}');
    await waitUntil(async () => seen.length > before, 15_000, 'the rewritten settings file');
    expect(new Set(seen)).toEqual(new Set([join(dir(), 'hello.4.settings')]));
  });

  it('reports refused settings names too (the daemon says why it refuses them), but no other file', async () => {
    const seen = await watchFolder();
    for (const file of ['notes.txt', 'hello.3.settings.bak', '.hello.3.tmp', 'hello.settings', '..bad.1.settings', 'last.1.settings']) {
      await writeFile(join(dir(), file), '{}');
    }
    await waitUntil(async () => seen.includes(join(dir(), 'last.1.settings')), 15_000, 'the last settings file');
    expect(new Set(seen)).toEqual(new Set(['hello.settings', '..bad.1.settings', 'last.1.settings'].map((file) => join(dir(), file))));
  });

  it('reports nothing once closed', async () => {
    const seen = await watchFolder();
    await watcher?.close();
    watcher = undefined;
    await writeFile(join(dir(), 'late.1.settings'), '{}');
    // Something still watching would have been told by now: a second watcher sees the next file.
    const later = await watchFolder();
    await writeFile(join(dir(), 'later.1.settings'), '{}');
    await waitUntil(async () => later.includes(join(dir(), 'later.1.settings')), 15_000, 'the second watcher');
    expect(seen).toEqual([]);
  });
});
