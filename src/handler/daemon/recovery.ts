// After a restart (kill -9, crash, agent restart, reboot): every run the journal says is not
// terminal is re-attached, finished from its recorded exit status, failed as rebooted, or —
// if it never started — scheduled again. Nothing runs twice (run-command.md §8): a journal that
// cannot be read is never taken for "never started", nor is a launch that may still be on its way
// (it is fenced first, launch-fence.ts).
import type { RunCommand } from '../../config/run-command.js';
import { errorCodes, HandlerError, toErrorMessage } from '../../errors.js';
import { isActiveJournal, makeRunJournal, maxLaunchAttempts, type RunJournal } from '../../runner/journal.js';
import { fenceLaunch, type FencedLaunch, type FenceOptions } from '../../runner/launch-fence.js';
import { readProcessIdentity, type ProcessIdentity } from '../../runner/process-contract.js';
import { Run, type RunExtension } from '../../runner/run.js';
import type { RunDeps } from '../../runner/run-deps.js';
import type { Log } from '../infra/logger.js';
import type { RunStore, SequenceRecord } from '../state/run-store.js';

export interface RecoveryHooks {
  adopt(run: Run, command?: RunCommand): void;
  schedule(run: Run, command: RunCommand): void;
  load(journal: RunJournal): Promise<RunCommand>;
  // The run extensions of a command (blob streaming), for runs that are resumed or rescheduled.
  extend?(command: RunCommand): RunExtension[];
  readonly runDeps: RunDeps;
  readonly log: Log;
  // How long a launch claimed by a wrapper has to report the script (tests shorten it).
  readonly launchFence?: FenceOptions;
}

// Resumes or finishes every interrupted run; returns how many were found.
export async function recoverRuns(store: RunStore, hooks: RecoveryHooks): Promise<number> {
  let found = 0;
  for (const { name, record: read } of await store.listRecords()) {
    if (read.kind === 'corrupt') {
      hooks.log.error('exactly-once record unreadable: its run is not recovered, and nothing runs again for it', { name, reason: read.reason });
      continue;
    }
    if (read.kind !== 'present' || read.value.disabledAt !== undefined || read.value.takenOver) continue;
    const record = read.value;
    const runDir = store.toRunDir(record.runId);
    const journal = await store.readJournal(record.runId);
    if (journal.kind === 'absent') {
      // Accepted but never journaled: nothing started, so consider its settings afresh.
      await store.removeRecord(record.name);
      continue;
    }
    if (journal.kind === 'corrupt') {
      found += 1;
      await recoverUnreadable(runDir, record, journal.reason, hooks);
      continue;
    }
    if (!isActiveJournal(journal.value)) continue;
    found += 1;
    hooks.log.info('recovering run', { name: record.name, seq: record.seq, runId: record.runId, state: journal.value.state });
    await recoverRun(runDir, journal.value, hooks, store);
  }
  return found;
}

// A run whose journal cannot be read: followed to its end if its script runs (the wrapper knows its
// outcome), else ended as failed — never started (again).
async function recoverUnreadable(runDir: string, record: SequenceRecord, reason: string, hooks: RecoveryHooks): Promise<void> {
  const { name, seq, runId } = record;
  hooks.log.error('run journal unreadable: the run is ended, never started again', { name, seq, runId, reason });
  const journal = { ...makeRunJournal({ name, seq, runId, settingsFile: '', bootId: hooks.runDeps.bootId }, hooks.runDeps.clock.now()), message: `the run journal ${reason}` };
  const identity = await readProcessIdentity(runDir);
  if (identity !== undefined) return recoverRun(runDir, { ...journal, state: 'Running', process: identity }, hooks);
  const run = new Run(runDir, journal, undefined, hooks.runDeps);
  hooks.adopt(run);
  await run.fail(new HandlerError(errorCodes.general, `the run journal ${reason}; whether the script started is unknown, so it is not started (again)`));
}

// The executionMessage of a run whose launch was on its way when the daemon died and then lost.
export function launchOutcomeUnknown(reason: string): string {
  return `the daemon stopped while the script was being started, and ${reason}: whether the script ran is unknown, so it is not started again`;
}

// The executionMessage of a run ended because its launch kept taking the daemon down.
export function launchFailedRepeatedly(attempts: number): string {
  return `the run's launch failed repeatedly: the handler's daemon stopped during each of its ${attempts} launch attempts (script download, blob creation or start), so it is not started again`;
}

// Who runs the script of an interrupted run: recorded, reported by its wrapper, or — for a launch
// that may still be on its way — found by fencing that launch (hardening #5). 'fenced': the script
// did not and now never will start.
async function findScript(runDir: string, journal: RunJournal, hooks: RecoveryHooks): Promise<FencedLaunch> {
  const identity = journal.process ?? (await readProcessIdentity(runDir));
  if (identity !== undefined) return { kind: 'started', identity };
  // An earlier version's journal has no nonce: its launch cannot be fenced.
  if (journal.launchNonce === undefined) return { kind: 'fenced' };
  // A claim names its wrapper (pid, start time): checked against pid reuse by the process layer.
  const layer = hooks.runDeps.platform.processLayer;
  const isAlive = layer.isProcessAlive === undefined ? {} : { isAlive: (pid: number, startTime: string) => layer.isProcessAlive?.(pid, startTime) ?? false };
  return fenceLaunch(runDir, journal.launchNonce, { ...isAlive, ...hooks.launchFence });
}

async function recoverRun(runDir: string, journal: RunJournal, hooks: RecoveryHooks, store?: RunStore): Promise<void> {
  return recoverFrom(runDir, journal, await findScript(runDir, journal, hooks), hooks, store);
}

async function recoverFrom(runDir: string, journal: RunJournal, script: FencedLaunch, hooks: RecoveryHooks, store?: RunStore): Promise<void> {
  const meta = { name: journal.name, seq: journal.seq, runId: journal.runId };
  if (script.kind === 'started') return resumeRun(runDir, journal, script.identity, hooks);
  if (script.kind === 'claimed') {
    // Its wrapper lives but has not reported the script yet (starved, stopped): the script may
    // still start, so the run is never started again; it is followed in the background, so one
    // stalled wrapper holds up neither the other runs' recovery nor the daemon.
    hooks.log.warn('run launch claimed by a wrapper that has not reported the script yet: followed until it does or ends', { ...meta, wrapperPid: script.wrapperPid });
    void script.reported
      .then(async (found) => ((await isCurrent(store, journal)) ? recoverFrom(runDir, journal, found, hooks) : endSuperseded(runDir, journal, found, hooks)))
      .catch((error: unknown) => hooks.log.error('run launch could not be followed', { ...meta, error: toErrorMessage(error) }));
    return;
  }
  if (script.kind === 'unknown') {
    hooks.log.error('run launch interrupted, its outcome unknown: the run is ended, never started again', { ...meta, reason: script.reason });
    return failRun(runDir, journal, hooks, new HandlerError(errorCodes.general, launchOutcomeUnknown(script.reason)));
  }
  const attempts = journal.launchAttempts ?? 0;
  if (attempts >= maxLaunchAttempts) {
    // Its launch work was begun this often and the daemon died during each: never begun again.
    hooks.log.error('run launch failed repeatedly: the run is ended, never started again', { ...meta, attempts });
    return failRun(runDir, journal, hooks, new HandlerError(errorCodes.startExecution, launchFailedRepeatedly(attempts)));
  }
  return relaunch(runDir, journal, hooks);
}

// Whether the run command's record still names this run (not disabled, replaced or taken over since).
async function isCurrent(store: RunStore | undefined, journal: RunJournal): Promise<boolean> {
  const read = await store?.readRecord(journal.name);
  if (read === undefined) return true;
  return read.kind === 'present' && read.value.runId === journal.runId && read.value.disabledAt === undefined && !read.value.takenOver;
}

// A followed launch whose run command was deleted or replaced meanwhile: its script, if it started,
// is ended as a deleted run command's is, and the run never becomes live (a newer run may be).
async function endSuperseded(runDir: string, journal: RunJournal, found: FencedLaunch, hooks: RecoveryHooks): Promise<void> {
  hooks.log.info('followed run launch ended: its run command was deleted or replaced meanwhile', { name: journal.name, seq: journal.seq, runId: journal.runId, started: found.kind === 'started' });
  if (found.kind !== 'started') return;
  const run = new Run(runDir, { ...journal, state: 'Running', process: found.identity, startTime: journal.startTime || journal.endTime }, undefined, hooks.runDeps);
  void run.resume();
  await run.cancel('disable: the run command was deleted or replaced while its launch was followed');
}

// Schedules afresh a run whose launch never started and now never will (fenced).
async function relaunch(runDir: string, journal: RunJournal, hooks: RecoveryHooks): Promise<void> {
  let command: RunCommand | undefined;
  try {
    command = await hooks.load(journal);
  } catch (error) {
    const cause = error instanceof HandlerError ? error : new HandlerError(errorCodes.invalidSettings, toErrorMessage(error));
    return failRun(runDir, journal, hooks, new HandlerError(cause.code, `the settings could not be read again after a restart: ${cause.message}`));
  }
  const run = new Run(runDir, journal, command, hooks.runDeps, hooks.extend?.(command) ?? []);
  hooks.adopt(run, command);
  hooks.schedule(run, command);
}

// Re-attaches to a script that started (perhaps before its Running state was journaled), or finishes it.
async function resumeRun(runDir: string, journal: RunJournal, identity: ProcessIdentity, hooks: RecoveryHooks): Promise<void> {
  const running: RunJournal = { ...journal, state: 'Running', process: identity, startTime: journal.startTime || journal.endTime };
  const { command, extensions } = journal.uploads ? await loadStreaming(journal, hooks) : { command: undefined, extensions: [] };
  const run = new Run(runDir, running, undefined, hooks.runDeps, extensions);
  hooks.adopt(run, command);
  void run.resume();
}

// Ends a run that is not (or not again) started.
async function failRun(runDir: string, journal: RunJournal, hooks: RecoveryHooks, error: HandlerError): Promise<void> {
  const run = new Run(runDir, journal, undefined, hooks.runDeps);
  hooks.adopt(run);
  await run.fail(error);
}

// A run that streams to blobs needs its settings again to resume the uploads (issue 4); if they
// cannot be read, the run still finishes and its executionMessage says the uploads stopped.
async function loadStreaming(journal: RunJournal, hooks: RecoveryHooks): Promise<{ command?: RunCommand; extensions: RunExtension[] }> {
  try {
    const command = await hooks.load(journal);
    return { command, extensions: hooks.extend?.(command) ?? [] };
  } catch (error) {
    const cause = toErrorMessage(error);
    hooks.log.warn('blob uploads not resumed: the settings could not be read again', { name: journal.name, seq: journal.seq, runId: journal.runId, error: cause });
    return { extensions: [{ beforeFinish: async () => `blob uploads were not resumed after a restart: the settings could not be read again (${cause})` }] };
  }
}
