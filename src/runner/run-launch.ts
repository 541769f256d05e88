// Getting a run's script launched: the launch-attempt journal patch (its count, its fencing nonce
// and the deadline), the preparation (RunAs, the script, its argv and environment), and the fenced
// launch request itself (hardening #5, launch-fence.ts).
import type { RunCommand } from '../config/run-command.js';
import { errorCodes, HandlerError } from '../errors.js';
import { toRfc3339, type TimerClock } from '../util/time.js';
import type { RunJournal } from './journal.js';
import type { JournalWriter } from './journal-writer.js';
import { newLaunchNonce } from './launch-fence.js';
import { toRunEnvironment } from './parameters.js';
import { prepareScript } from './prepare-script.js';
import type { ScriptHandle, ScriptLaunch } from './process-contract.js';
import type { RunDeps } from './run-deps.js';
import { toRunFilePath } from './run-directory.js';

// Resolves with `work`, or as soon as `signal` aborts (the work is left to end on its own).
export function untilAborted(work: Promise<void> | undefined, signal: AbortSignal): Promise<void> {
  if (work === undefined || signal.aborted) return Promise.resolve(work).then(() => undefined);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => resolve();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

// What to journal, as preparation starts: one more launch attempt (before any launch work: if that
// work takes the daemon down, recovery knows and gives up after a few, recovery.ts), the nonce that
// fences this attempt's launch (launchFenced), and the deadline (a deadline already journaled, by a
// daemon that stopped while this run was preparing, is kept). Written without fsync (issue 16: one
// journal commit less before every launch): the count is for a daemon that died, whose writes the
// kernel kept; after a power loss nothing of this boot's launch is left to count, and a monotonic
// deadline means nothing on the next boot.
export function toLaunchAttempt(journal: RunJournal, clock: TimerClock): Partial<RunJournal> {
  const timeout = journal.timeoutInSeconds;
  const { deadline, deadlineMonotonicMs } = journal;
  const launchAttempts = (journal.launchAttempts ?? 0) + 1;
  // The nonce that fences this attempt's launch (launchFenced) rides on the same write.
  const attempt = { launchAttempts, launchNonce: newLaunchNonce() };
  const armsDeadline = timeout > 0 && deadline === undefined && deadlineMonotonicMs === undefined;
  return armsDeadline ? { ...attempt, deadlineMonotonicMs: clock.monotonicMs() + timeout * 1000 } : attempt;
}

// The launch of `command` for the run in `runDir`: its RunAs user, its script and environment.
export async function prepareLaunch(
  command: RunCommand,
  run: { runDir: string; journal: RunJournal },
  deps: RunDeps,
  options: { warn: (message: string) => void; signal: AbortSignal },
): Promise<ScriptLaunch> {
  const { runDir, journal } = run;
  const { warn, signal } = options;
  // RunAs: the user is looked up first (−102), and the script goes to the user's working directory.
  const { runAs: runAsLayer, scripts } = deps.platform;
  const runAs = await runAsLayer.prepareRunAs(command, { runId: journal.runId, workRoot: deps.workRoot, warn });
  // The script, its artifacts, its argv and its environment additions (named parameters for bash).
  const script = await prepareScript(command, runAs?.workDir ?? runDir, { warn, signal, sources: { ...deps.sources, scripts } });
  const runEnv = toRunEnvironment(journal.name, journal.seq, deps.agentEnv?.() ?? {});
  const launch: ScriptLaunch = {
    runDir,
    program: script.program,
    args: script.args,
    env: { ...deps.baseEnv, ...runEnv, ...script.env },
    stdoutPath: toRunFilePath(runDir, 'stdout'),
    stderrPath: toRunFilePath(runDir, 'stderr'),
    graceMs: deps.graceMs,
    ...(deps.maxOutputBytes !== undefined ? { maxOutputBytes: deps.maxOutputBytes } : {}),
  };
  return runAsLayer.applyRunAs(launch, runAs, { ...runEnv, ...script.env });
}

// The patch of a run whose script was launched. Written without fsync (issue 16: one journal commit
// less per run before its status says Running): the wrapper fsyncs the same identity (process.json)
// before it reports it, and recovery reads that file when the journal has none, so a power loss that
// takes this write leaves recovery the same answer; a daemon that dies leaves the write to the
// kernel, which keeps it.
export function toRunningPatch(handle: ScriptHandle, clock: TimerClock): Partial<RunJournal> {
  return {
    state: 'Running' as const,
    message: 'Execution in progress',
    // startTime stays the acceptance time; the launch is kept for the events' duration.
    launchTime: toRfc3339(clock.now()),
    process: handle.identity,
  };
}

// Sends the launch request, fenced (hardening #5): its nonce is journaled first (with the launch
// attempt, toLaunchAttempt), and the request leaves only once that journal is written, so a
// restarted daemon always knows of a launch that may still be on its way, and fences it
// (launch-fence.ts). Not fsynced: a run cut off by a reboot is never started again, so only a
// daemon of this boot must see it, and the kernel keeps it for that. Undefined when stopped first.
export async function launchFenced(
  launch: ScriptLaunch,
  writer: JournalWriter,
  deps: RunDeps,
  run: { isStopped: () => boolean; signal: AbortSignal },
): Promise<ScriptHandle | undefined> {
  if (run.isStopped()) return undefined;
  const { launchNonce } = writer.journal;
  await untilAborted(writer.retrying, run.signal);
  if (run.isStopped()) return undefined;
  if (launchNonce === undefined || writer.landed?.launchNonce !== launchNonce) {
    throw new HandlerError(errorCodes.startExecution, 'the script was not started: its launch could not be recorded in the run journal');
  }
  return deps.platform.processLayer.launchScript({ ...launch, launchNonce });
}
