import { describe, expect, it } from 'vitest';
import {
  canTransition,
  isTerminal,
  runStates,
  toExecutionState,
  toExitCode,
  toOutcomeMessage,
  type Outcome,
  type RunState,
} from '../../src/runner/run-state.js';

// The allowed transitions, written out independently of the implementation.
const allowed: Record<RunState, RunState[]> = {
  // Pending → Succeeded: nothing to run (installAsService without a source, run-command.md §1);
  // Pending → TimedOut: the timeout counts from the start of preparation.
  Pending: ['Running', 'Succeeded', 'Failed', 'TimedOut', 'Canceled'],
  Running: ['Succeeded', 'Failed', 'TimedOut', 'Canceled'],
  Succeeded: [],
  Failed: [],
  TimedOut: [],
  Canceled: [],
};

describe('run states', () => {
  it('are the instance view executionState values of run-command.md §6 that a run can be in, in order', () => {
    expect([...runStates]).toEqual(['Pending', 'Running', 'Succeeded', 'Failed', 'TimedOut', 'Canceled']);
  });

  for (const from of runStates) {
    for (const to of runStates) {
      const expected = allowed[from].includes(to);
      it(`${expected ? 'allows' : 'refuses'} the transition ${from} → ${to}`, () => {
        expect(canTransition(from, to)).toBe(expected);
      });
    }
  }

  it('treats Succeeded, Failed, TimedOut and Canceled as terminal and Pending and Running as not', () => {
    const terminal = runStates.filter((state) => isTerminal(state));
    expect(terminal).toEqual(['Succeeded', 'Failed', 'TimedOut', 'Canceled']);
  });

  it('never allows a state to transition to itself', () => {
    expect(runStates.filter((state) => canTransition(state, state))).toEqual([]);
  });
});

interface Case {
  readonly title: string;
  readonly outcome: Outcome;
  readonly state: RunState;
  readonly exitCode: number;
  readonly message: string;
}

const cases: Case[] = [
  { title: 'an exit with code 0', outcome: { kind: 'exited', exitCode: 0 }, state: 'Succeeded', exitCode: 0, message: 'Execution completed' },
  {
    title: 'an exit with code 3',
    outcome: { kind: 'exited', exitCode: 3 },
    state: 'Failed',
    exitCode: 3,
    message: 'Execution failed: command terminated with exit status=3',
  },
  {
    title: 'an exit with code 255',
    outcome: { kind: 'exited', exitCode: 255 },
    state: 'Failed',
    exitCode: 255,
    message: 'Execution failed: command terminated with exit status=255',
  },
  {
    title: 'a kill by signal 9',
    outcome: { kind: 'signaled', signal: 9 },
    state: 'Failed',
    exitCode: -1,
    message: 'Execution failed: the script was killed by signal 9',
  },
  {
    title: 'a timeout after 30 s',
    outcome: { kind: 'timed-out', timeoutInSeconds: 30 },
    state: 'TimedOut',
    exitCode: -1,
    message: 'Execution failed: timed out after 30 s (timeoutInSeconds); the script and its child processes were terminated',
  },
  {
    title: 'a cancel by disable',
    outcome: { kind: 'canceled', reason: 'disable' },
    state: 'Canceled',
    exitCode: -1,
    message: 'Execution failed: canceled (disable); the script and its child processes were terminated',
  },
  {
    title: 'nothing to run (installAsService without a source)',
    outcome: { kind: 'nothing-to-run', reason: 'nothing was run' },
    state: 'Succeeded',
    exitCode: 0,
    message: 'Execution completed: nothing was run',
  },
  {
    title: 'a reboot during execution',
    outcome: { kind: 'rebooted' },
    state: 'Failed',
    exitCode: -1,
    message: 'Execution failed: the VM restarted during execution; output captured before the restart is shown',
  },
  {
    title: 'a handler error -204',
    outcome: { kind: 'handler-error', code: -204, message: 'no shell found' },
    state: 'Failed',
    exitCode: -204,
    message: 'Execution failed: no shell found',
  },
  {
    title: 'a handler error -102',
    outcome: { kind: 'handler-error', code: -102, message: "Failed to lookup RunAs user 'nobody2'" },
    state: 'Failed',
    exitCode: -102,
    message: "Execution failed: Failed to lookup RunAs user 'nobody2'",
  },
];

describe('outcome mapping', () => {
  for (const { title, outcome, state, exitCode, message } of cases) {
    it(`maps ${title} to executionState ${state}, exitCode ${exitCode} and its executionMessage`, () => {
      expect(toExecutionState(outcome)).toBe(state);
      expect(toExitCode(outcome)).toBe(exitCode);
      expect(toOutcomeMessage(outcome)).toBe(message);
    });
  }

  it('maps every outcome to a terminal state reachable from Running', () => {
    for (const { outcome } of cases) {
      const state = toExecutionState(outcome);
      expect(isTerminal(state)).toBe(true);
      expect(canTransition('Running', state)).toBe(true);
    }
  });
});
