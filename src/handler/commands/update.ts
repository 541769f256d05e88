// `update` (new version, after the old version disabled every run command and the agent copied
// status/*): restore the exactly-once records those disables marked, so nothing re-runs, and
// mark the update so the old version's uninstall keeps the shared state (protocol.md §8).
import { access } from 'node:fs/promises';
import { toStatusPath, writeStatusFile } from '../agent/status-file.js';
import type { HandlerContext } from '../infra/context.js';
import type { Log } from '../infra/logger.js';
import { writeUpdateMarker } from '../state/update-marker.js';

const exists = (path: string): Promise<boolean> => access(path).then(() => true, () => false);

// Runs the update command.
export async function runUpdate(context: HandlerContext, env: NodeJS.ProcessEnv, log: Log): Promise<number> {
  const { paths, store } = context;
  await store.ensure();
  const from = env['AZURE_GUEST_AGENT_UPDATING_FROM_VERSION'] ?? 'unknown';
  const to = env['VERSION'] ?? context.version;
  await writeUpdateMarker(store, { from, to, at: Date.now() });
  let restored = 0;
  for (const { record: read } of await store.listRecords()) {
    if (read.kind !== 'present' || read.value.disabledAt === undefined) continue;
    const record = read.value;
    // A deleted run command's status file was removed by the agent; an updated one's was copied.
    if (!(await exists(toStatusPath(paths.statusFolder, record.name, record.seq)))) continue;
    const { disabledAt: _dropped, ...live } = record;
    await store.recordLaunch(live);
    // The copied status may say Running: the old disable stopped that script after its last write.
    const journal = await store.readJournal(record.runId);
    if (journal.kind === 'present') await writeStatusFile(paths.statusFolder, journal.value, store.toRunDir(record.runId), Date.now());
    restored += 1;
  }
  log.info('updated', { from, to, restoredRecords: restored });
  return 0;
}
