// How a run ends: its deadline timer, the termination of its process tree (with a SIGKILL fallback),
// the outcome a stop or the script's end gives, and the terminal journal patch an outcome makes.
import { errorCodes } from '../errors.js';
import { toRfc3339 } from '../util/time.js';
import type { RunJournal } from './journal.js';
import type { ExitRecord, OutputTruncation, ProcessIdentity } from './process-contract.js';
import type { RunDeps } from './run-deps.js';
import { toExecutionState, toExitCode, toOutcomeMessage, type Outcome } from './run-state.js';

export type StopRequest = NonNullable<RunJournal['stopRequest']>;

// A timer the run cancels once it is terminal.
export interface RunTimer {
  cancel(): void;
}

// Arms the journaled deadline, if any: `onTimeout` gets the stop request once it passes.
export function armDeadline(journal: RunJournal, deps: RunDeps, onTimeout: (request: StopRequest) => void): RunTimer | undefined {
  const { deadline, deadlineMonotonicMs, timeoutInSeconds } = journal;
  const { clock } = deps;
  if (deadlineMonotonicMs === undefined && deadline === undefined) return undefined;
  // A journal of an earlier version has only the wall-clock deadline.
  const delay = deadlineMonotonicMs !== undefined ? deadlineMonotonicMs - clock.monotonicMs() : (deadline ?? 0) - clock.now();
  return deps.clock.setTimer(() => onTimeout({ kind: 'timed-out', reason: `timeoutInSeconds ${timeoutInSeconds}` }), delay);
}

// Asks the wrapper to kill the whole tree; SIGKILLs it all if the wrapper does not finish in time.
export function terminateTree(identity: ProcessIdentity, runDir: string, deps: RunDeps): RunTimer {
  const processes = deps.platform.processLayer;
  processes.requestTermination(identity, runDir);
  return deps.clock.setTimer(() => processes.killRunNow(identity), deps.graceMs + 5000);
}

// The outcome of a run that was stopped (timed out or canceled).
export function toStopOutcome(stop: StopRequest, timeoutInSeconds: number): Outcome {
  if (stop.kind === 'timed-out') return { kind: 'timed-out', timeoutInSeconds };
  return { kind: 'canceled', reason: stop.reason };
}

// The outcome of a script that ended on its own, as its exit record says.
export function toExitOutcome(record: ExitRecord): Outcome {
  if (record.kind === 'exited') return { kind: 'exited', exitCode: record.exitCode };
  if (record.kind === 'signaled') return { kind: 'signaled', signal: record.signal };
  if (record.kind === 'unreadable') return { kind: 'handler-error', code: errorCodes.general, message: `how the script ended is unknown: ${record.reason}` };
  return { kind: 'handler-error', code: errorCodes.startExecution, message: `could not start the script (errno ${record.errno})` };
}

// The terminal journal patch for `outcome`, `notes` appended to its message (masked by `redact`).
export function toTerminalPatch(outcome: Outcome, notes: readonly string[], journal: RunJournal, deps: RunDeps): Partial<RunJournal> {
  const endTime = toRfc3339(deps.clock.now());
  return {
    state: toExecutionState(outcome),
    message: deps.redact([toOutcomeMessage(outcome), ...notes].join('; ')),
    exitCode: toExitCode(outcome),
    // Never '' in a terminal status (run-command.md §6), even for a journal from before that rule.
    startTime: journal.startTime || endTime,
    endTime,
    handlerFailure: outcome.kind === 'handler-error',
  };
}

// The executionMessage note for output the wrapper dropped (issue #6): how much, of which stream, why.
export function toTruncationNote(output: OutputTruncation): string | undefined {
  const parts = [
    ...(output.stdoutDropped > 0 ? [`${output.stdoutDropped} bytes of stdout`] : []),
    ...(output.stderrDropped > 0 ? [`${output.stderrDropped} bytes of stderr`] : []),
  ];
  const why = output.lowSpace ? 'the output cap or the file system\'s free-space reserve was reached' : 'the output cap was reached';
  if (parts.length === 0) return output.lowSpace ? 'output may be incomplete: the file system\'s free-space reserve was reached' : undefined;
  return `output truncated: ${parts.join(' and ')} dropped (${why}; the beginning and the end of each stream are kept)`;
}
