// Which settings file is current for each run command in configFolder (protocol.md §5): the
// newest mtime, the highest sequence number on a tie (sequence numbers are not guaranteed to grow).
import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { parseSettingsFileName, toSettingsFileName } from '../../config/settings-file.js';

export interface CurrentSettings {
  readonly name: string;
  readonly seq: number;
  readonly path: string;
}

// The current settings file of every run command in `folder`.
export async function listCurrentSettings(folder: string): Promise<CurrentSettings[]> {
  const current = new Map<string, { seq: number; mtimeMs: number }>();
  for (const file of await readdir(folder).catch(() => [] as string[])) {
    const parsed = parseSettingsFileName(file);
    if (parsed.kind !== 'settings') continue;
    const mtimeMs = await stat(join(folder, file)).then((s) => s.mtimeMs, () => -1);
    const best = current.get(parsed.name);
    if (best === undefined || mtimeMs > best.mtimeMs || (mtimeMs === best.mtimeMs && parsed.seq > best.seq)) {
      current.set(parsed.name, { seq: parsed.seq, mtimeMs });
    }
  }
  return [...current].map(([name, { seq }]) => ({ name, seq, path: join(folder, toSettingsFileName(name, seq)) }));
}

// The settings files of configFolder, by run command, kept in memory so that accepting a run does
// not list the folder (issue 16: a listing per run grows with the folder). Filled by a listing at
// start (and hourly), told of every file the watcher or an enable brings.
export class SettingsFiles {
  readonly #folder: string;
  readonly #seqs = new Map<string, Set<number>>();

  constructor(folder: string) {
    this.#folder = folder;
  }

  // Adds every settings file the folder holds now.
  async refresh(): Promise<void> {
    for (const file of await readdir(this.#folder).catch(() => [] as string[])) {
      const parsed = parseSettingsFileName(file);
      if (parsed.kind === 'settings') this.note(parsed.name, parsed.seq);
    }
  }

  // A settings file of `name` with sequence number `seq` is (or was) in the folder.
  note(name: string, seq: number): void {
    const seqs = this.#seqs.get(name);
    if (seqs === undefined) this.#seqs.set(name, new Set([seq]));
    else seqs.add(seq);
  }

  // Removes the settings files of `name` below sequence number `seq`, as Microsoft's handler does
  // once a newer one is accepted (they will never run); returns the names of those it removed.
  async removeOlder(name: string, seq: number): Promise<string[]> {
    const removed: string[] = [];
    for (const older of [...(this.#seqs.get(name) ?? [])].filter((known) => known < seq)) {
      this.#seqs.get(name)?.delete(older);
      const file = toSettingsFileName(name, older);
      const gone = await unlink(join(this.#folder, file)).then(() => true, () => false);
      if (gone) removed.push(file);
    }
    return removed;
  }
}
