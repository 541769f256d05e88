// Which settings file is current for each run command in configFolder (protocol.md §5): the
// newest mtime, the highest sequence number on a tie (sequence numbers are not guaranteed to grow).
import { readdir, rm, stat } from 'node:fs/promises';
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

// Removes the settings files of `name` below sequence number `seq`, as Microsoft's handler does once
// a newer one is accepted (they will never run); returns their names.
export async function removeOlderSettings(folder: string, name: string, seq: number): Promise<string[]> {
  const removed: string[] = [];
  for (const file of await readdir(folder).catch(() => [] as string[])) {
    const parsed = parseSettingsFileName(file);
    if (parsed.kind !== 'settings' || parsed.name !== name || parsed.seq >= seq) continue;
    await rm(join(folder, file), { force: true });
    removed.push(file);
  }
  return removed;
}
