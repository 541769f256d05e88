// Watches configFolder for settings files with the platform's own file events (fs.watch: inotify,
// ReadDirectoryChangesW). Not chokidar: on every change of a folder it lists the whole folder again
// and stats every entry, and it watches each file on its own — per run, a cost that grows with the
// number of settings files the folder holds (issue 16: ≈ 1.4 s of daemon CPU per 300 runs in the
// bench). The folder is flat and every event names its file, so one watch and no listing suffice;
// what a watch can miss (the daemon was down, the kernel's queue overflowed) the daemon's listing at
// start and the agent's `enable` for every run command bring anyway.
import { watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { parseSettingsFileName } from '../../config/settings-file.js';

export interface SettingsWatcher {
  close(): Promise<void>;
}

// Calls `onFile` for every settings file (config/settings-file.ts owns the pattern; refused names
// too: the daemon logs why it refuses them) created, renamed in or written in `folder`, once per
// event: the daemon's decision per file is idempotent, and a file removed by then is skipped there.
export async function watchSettingsFolder(folder: string, onFile: (path: string) => void, onError: (error: unknown) => void): Promise<SettingsWatcher> {
  const watcher: FSWatcher = watch(folder, { persistent: true }, (_event, file) => {
    if (typeof file === 'string' && parseSettingsFileName(file).kind !== 'other') onFile(join(folder, file));
  });
  watcher.on('error', onError);
  return {
    close: async () => watcher.close(),
  };
}
