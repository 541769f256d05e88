// `update` (new version, after the old version disabled every run command and the agent copied
// status/*): restore the exactly-once records those disables marked, so nothing re-runs, and
// mark the update so the old version's uninstall keeps the shared state (protocol.md §8).
import { access } from 'node:fs/promises';
import type { HandlerContext } from '../context.js';
import type { Log } from '../logger.js';
import { ensureStateDirs } from '../paths.js';
import { listRecords, writeRecord } from '../sequence-records.js';
import { toStatusPath, writeStatusFile } from '../status-file.js';
import { readJournal } from '../../runner/journal.js';
import { toRunDir } from '../paths.js';
import { writeUpdateMarker } from '../update-marker.js';

const exists = (path: string): Promise<boolean> => access(path).then(() => true, () => false);

// Runs the update command.
export async function runUpdate(context: HandlerContext, env: NodeJS.ProcessEnv, log: Log): Promise<number> {
  const { paths } = context;
  await ensureStateDirs(paths);
  const from = env['AZURE_GUEST_AGENT_UPDATING_FROM_VERSION'] ?? 'unknown';
  const to = env['VERSION'] ?? context.version;
  await writeUpdateMarker(paths.stateDir, { from, to, at: Date.now() });
  let restored = 0;
  for (const record of await listRecords(paths.recordsDir)) {
    if (record.disabledAt === undefined) continue;
    // A deleted run command's status file was removed by the agent; an updated one's was copied.
    if (!(await exists(toStatusPath(paths.statusFolder, record.name, record.seq)))) continue;
    const { disabledAt: _dropped, ...live } = record;
    await writeRecord(paths.recordsDir, live);
    // The copied status may say Running: the old disable stopped that script after its last write.
    const runDir = toRunDir(paths, record.runId);
    const journal = await readJournal(runDir);
    if (journal) await writeStatusFile(paths.statusFolder, journal, runDir, Date.now());
    restored += 1;
  }
  log.info('updated', { from, to, restoredRecords: restored });
  return 0;
}
