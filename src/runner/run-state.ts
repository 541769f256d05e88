// The closed set of run states, the allowed transitions, and the one mapping from an
// outcome to the instance view's executionState (run-command.md §6).

export const runStates = ['Pending', 'Running', 'Succeeded', 'Failed', 'TimedOut', 'Canceled'] as const;
export type RunState = (typeof runStates)[number];

const transitions: Readonly<Record<RunState, readonly RunState[]>> = {
  // Pending → Succeeded: a run with nothing to run (installAsService without a source).
  // Pending → TimedOut: timeoutInSeconds runs from the start of preparation (downloads, blob creation).
  Pending: ['Running', 'Succeeded', 'Failed', 'TimedOut', 'Canceled'],
  Running: ['Succeeded', 'Failed', 'TimedOut', 'Canceled'],
  Succeeded: [],
  Failed: [],
  TimedOut: [],
  Canceled: [],
};

// True for states a run never leaves.
export function isTerminal(state: RunState): boolean {
  return transitions[state].length === 0;
}

// True when a run in `from` may move to `to`.
export function canTransition(from: RunState, to: RunState): boolean {
  return transitions[from].includes(to);
}

// How a started script ended, as the daemon saw it.
export type Outcome =
  | { readonly kind: 'exited'; readonly exitCode: number }
  | { readonly kind: 'signaled'; readonly signal: number }
  | { readonly kind: 'timed-out'; readonly timeoutInSeconds: number }
  | { readonly kind: 'canceled'; readonly reason: string }
  | { readonly kind: 'rebooted' }
  | { readonly kind: 'not-run'; readonly reason: string }
  // Nothing to run, and that is not a failure (installAsService without a source).
  | { readonly kind: 'nothing-to-run'; readonly reason: string }
  | { readonly kind: 'handler-error'; readonly code: number; readonly message: string };

// The single mapping from an outcome to executionState.
export function toExecutionState(outcome: Outcome): RunState {
  switch (outcome.kind) {
    case 'exited':
      return outcome.exitCode === 0 ? 'Succeeded' : 'Failed';
    case 'nothing-to-run':
      return 'Succeeded';
    case 'timed-out':
      return 'TimedOut';
    case 'canceled':
      return 'Canceled';
    case 'signaled':
    case 'rebooted':
    case 'not-run':
    case 'handler-error':
      return 'Failed';
  }
}

// The instance view's exitCode for an outcome (−1 for signals, the handler's code for its faults).
export function toExitCode(outcome: Outcome): number {
  switch (outcome.kind) {
    case 'exited':
      return outcome.exitCode;
    case 'handler-error':
      return outcome.code;
    case 'nothing-to-run':
      return 0;
    default:
      return -1;
  }
}

// The instance view's executionMessage for a terminal outcome.
export function toOutcomeMessage(outcome: Outcome): string {
  switch (outcome.kind) {
    case 'exited':
      // Compat wording, parsed by callers (run-command.md §6).
      return outcome.exitCode === 0 ? 'Execution completed' : `Execution failed: command terminated with exit status=${outcome.exitCode}`;
    case 'signaled':
      return `Execution failed: the script was killed by signal ${outcome.signal}`;
    case 'timed-out':
      return `Execution failed: timed out after ${outcome.timeoutInSeconds} s (timeoutInSeconds); the script and its child processes were terminated`;
    case 'canceled':
      return `Execution failed: canceled (${outcome.reason}); the script and its child processes were terminated`;
    case 'rebooted':
      return 'Execution failed: the VM restarted during execution; output captured before the restart is shown';
    case 'not-run':
      return `Execution failed: ${outcome.reason}`;
    case 'nothing-to-run':
      return `Execution completed: ${outcome.reason}`;
    case 'handler-error':
      return `Execution failed: ${outcome.message}`;
  }
}
