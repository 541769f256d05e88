// Watches configFolder for settings files (chokidar; no globs — chokidar ≥ 4 ignores them).
import { watch, type FSWatcher } from 'chokidar';
import { basename } from 'node:path';
import { parseSettingsFileName } from '../../config/settings-file.js';

// A settings file by its name (config/settings-file.ts owns the pattern), refused ones included:
// the daemon logs why it refuses them.
const isSettingsFile = (path: string): boolean => parseSettingsFileName(basename(path)).kind !== 'other';

export interface SettingsWatcher {
  close(): Promise<void>;
}

// Calls `onFile` for every `*.settings` file added or rewritten in `folder`.
export async function watchSettingsFolder(folder: string, onFile: (path: string) => void, onError: (error: unknown) => void): Promise<SettingsWatcher> {
  const watcher: FSWatcher = watch(folder, {
    ignoreInitial: true,
    depth: 0,
    // The agent writes settings directly; rename-into-place shows up as an add.
    atomic: false,
    ignored: (path, stats) => path !== folder && stats?.isFile() === true && !isSettingsFile(path),
  });
  const forward = (path: string): void => {
    if (isSettingsFile(path)) onFile(path);
  };
  watcher.on('add', forward);
  watcher.on('change', forward);
  watcher.on('error', onError);
  await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  return { close: () => watcher.close() };
}
