// The mark `update` leaves for the old version's `uninstall` (protocol.md §8: new update runs
// before old uninstall), so that uninstall keeps the state the new version uses.
import { unlink } from 'node:fs/promises';
import { readJsonFile, writeFileAtomic } from '../../util/atomic-file.js';
import * as z from '../../util/schema.js';
import type { RunStore } from './run-store.js';

const markerSchema = z.object({ from: z.string(), to: z.string(), at: z.number() });
export type UpdateMarker = z.infer<typeof markerSchema>;

// An update mark older than this is a leftover, not an update in progress.
const markerLifetimeMs = 60 * 60 * 1000;

function markerPath(store: RunStore): string {
  return store.toStateFile('update-in-progress.json');
}

// Records that an update from `from` to `to` is under way.
export async function writeUpdateMarker(store: RunStore, marker: UpdateMarker): Promise<void> {
  await writeFileAtomic(markerPath(store), JSON.stringify(marker));
}

// Takes (reads and removes) a fresh update mark; undefined when no update is under way.
export async function takeUpdateMarker(store: RunStore, nowMs: number): Promise<UpdateMarker | undefined> {
  const parsed = markerSchema.safeParse(await readJsonFile(markerPath(store)).catch(() => undefined));
  await unlink(markerPath(store)).catch(() => undefined);
  if (!parsed.success || nowMs - parsed.data.at > markerLifetimeMs) return undefined;
  return parsed.data;
}
