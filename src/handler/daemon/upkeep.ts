// The daemon's upkeep of the state folder (run-command.md §8): status files that agree with their
// journals after a restart, taking over what Microsoft's handler already ran, and retention — each
// run command keeps its latest run, a deleted one nothing.
import { toErrorMessage } from '../../errors.js';
import { isActiveJournal } from '../../runner/journal.js';
import { reconcileStatusFile } from '../agent/status-file.js';
import type { Clock } from '../../util/time.js';
import type { HandlerContext } from '../infra/context.js';
import type { Log } from '../infra/logger.js';
import { carryForeignStatus, type ForeignRun } from '../state/takeover.js';

export interface UpkeepDeps {
  readonly context: HandlerContext;
  readonly log: Log;
  readonly clock: Clock;
}

// Microsoft's handler ran up to `foreign.seq` of `name`: nothing runs again and its last status stays
// reported. Recorded, so that it holds after its install directory is gone.
export async function takeOverRun(deps: UpkeepDeps, name: string, seq: number, foreign: ForeignRun): Promise<void> {
  const { store, paths } = deps.context;
  await store.recordLaunch({ name, seq: foreign.seq, runId: `${name}.${foreign.seq}.takeover`, takenOver: true });
  const carried = await carryForeignStatus(foreign, name, seq, paths.statusFolder);
  deps.log.info("already run by Microsoft's handler: not run", { name, seq, mrseq: foreign.seq, statusCarried: carried });
}

// Once a run of `name` has ended, only its current run's directory stays.
export async function retainLatestRun(deps: UpkeepDeps, name: string): Promise<void> {
  const record = await deps.context.store.readRecord(name);
  if (record.kind !== 'present' || record.value.disabledAt !== undefined) return;
  const removed = await deps.context.store.removeOlderRuns(name, record.value.runId);
  if (removed.length > 0) deps.log.info('older runs removed', { name, runIds: removed.join(', ') });
}

// Retention for every name: deleted run commands' runs go too, once an update can no longer need them.
export async function applyRetention(deps: UpkeepDeps): Promise<void> {
  const removed = await deps.context.store.applyRetention(deps.clock.now()).catch((error: unknown) => {
    deps.log.warn('retention pass failed', { error: toErrorMessage(error) });
    return [] as string[];
  });
  if (removed.length > 0) deps.log.info('runs removed by retention', { runIds: removed.join(', ') });
}

// At start: every run that ended gets a status that agrees with its journal — a daemon killed between
// the terminal journal write and the status write left the status Running (issue 13, #2).
export async function reconcileStatuses(deps: UpkeepDeps): Promise<void> {
  const { store, paths } = deps.context;
  for (const { name, record } of await store.listRecords()) {
    if (record.kind !== 'present' || record.value.disabledAt !== undefined || record.value.takenOver) continue;
    const journal = await store.readJournal(record.value.runId);
    if (journal.kind !== 'present' || isActiveJournal(journal.value)) continue;
    const rewritten = await reconcileStatusFile(paths.statusFolder, journal.value, store.toRunDir(record.value.runId), deps.clock.now()).catch(() => false);
    if (rewritten) deps.log.warn('status file did not agree with the run journal: rewritten', { name, seq: journal.value.seq, runId: journal.value.runId, state: journal.value.state });
  }
}
