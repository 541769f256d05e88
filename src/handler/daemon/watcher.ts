// Watches configFolder for settings files (chokidar; no globs — chokidar ≥ 4 ignores them).
import { watch, type FSWatcher } from 'chokidar';
import { basename } from 'node:path';

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
    ignored: (path, stats) => path !== folder && stats?.isFile() === true && !path.endsWith('.settings'),
  });
  const forward = (path: string): void => {
    if (basename(path).endsWith('.settings')) onFile(path);
  };
  watcher.on('add', forward);
  watcher.on('change', forward);
  watcher.on('error', onError);
  await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  return { close: () => watcher.close() };
}
