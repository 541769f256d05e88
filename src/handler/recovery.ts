// After a restart (kill -9, crash, agent restart, reboot): every run the journal says is not
// terminal is re-attached, finished from its recorded exit status, failed as rebooted, or —
// if it never started — scheduled again. Nothing runs twice (run-command.md §8).
import { readdir } from 'node:fs/promises';
import type { RunCommand } from '../config/run-command.js';
import { errorCodes, HandlerError, toErrorMessage } from '../errors.js';
import { isActiveJournal, readJournal, type RunJournal } from '../runner/journal.js';
import { readProcessIdentity } from '../runner/process.js';
import { Run, type RunDeps, type RunExtension } from '../runner/run.js';
import type { Log } from './logger.js';
import { toRunDir, type HandlerPaths } from './paths.js';
import { listRecords, removeRecord } from './sequence-records.js';

export interface RecoveryHooks {
  adopt(run: Run, command?: RunCommand): void;
  schedule(run: Run, command: RunCommand): void;
  load(journal: RunJournal): Promise<RunCommand>;
  // The run extensions of a command (blob streaming), for runs that are resumed or rescheduled.
  extend?(command: RunCommand): RunExtension[];
  readonly runDeps: RunDeps;
  readonly log: Log;
}

// Resumes or finishes every interrupted run; returns how many were found.
export async function recoverRuns(paths: HandlerPaths, hooks: RecoveryHooks): Promise<number> {
  let found = 0;
  for (const record of await listRecords(paths.recordsDir)) {
    if (record.disabledAt !== undefined) continue;
    const runDir = toRunDir(paths, record.runId);
    const journal = await readJournal(runDir);
    if (journal === undefined) {
      // Accepted but never journaled: nothing started, so consider its settings afresh.
      await removeRecord(paths.recordsDir, record.name);
      continue;
    }
    if (!isActiveJournal(journal)) continue;
    found += 1;
    hooks.log.info('recovering run', { name: journal.name, seq: journal.seq, runId: journal.runId, state: journal.state });
    await recoverRun(runDir, journal, hooks);
  }
  return found;
}

async function recoverRun(runDir: string, journal: RunJournal, hooks: RecoveryHooks): Promise<void> {
  const identity = journal.process ?? (await readProcessIdentity(runDir));
  if (identity !== undefined) {
    // Started (perhaps before its Running state was journaled): re-attach or finish it.
    const running: RunJournal = { ...journal, state: 'Running', process: identity, startTime: journal.startTime || journal.endTime };
    const { command, extensions } = journal.uploads ? await loadStreaming(journal, hooks) : { command: undefined, extensions: [] };
    const run = new Run(runDir, running, undefined, hooks.runDeps, extensions);
    hooks.adopt(run, command);
    void run.resume();
    return;
  }
  let command: RunCommand | undefined;
  try {
    command = await hooks.load(journal);
  } catch (error) {
    const run = new Run(runDir, journal, undefined, hooks.runDeps);
    hooks.adopt(run);
    const cause = error instanceof HandlerError ? error : new HandlerError(errorCodes.invalidSettings, toErrorMessage(error));
    await run.fail(new HandlerError(cause.code, `the settings could not be read again after a restart: ${cause.message}`));
    return;
  }
  const run = new Run(runDir, journal, command, hooks.runDeps, hooks.extend?.(command) ?? []);
  hooks.adopt(run, command);
  hooks.schedule(run, command);
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

// Run directories on disk (for uninstall and diagnostics).
export async function listRunDirs(paths: HandlerPaths): Promise<string[]> {
  return (await readdir(paths.runsDir).catch(() => [] as string[])).map((runId) => toRunDir(paths, runId));
}
