import { describe, expect, it } from 'vitest';
import { toEndEvent, toStartEvent } from '../../../src/handler/daemon/run-events.js';
import { toDependencyState } from '../../../src/runner/dependency-graph.js';
import type { RunJournal } from '../../../src/runner/journal.js';

const journal = {
  version: 1, runId: 'deploy.3.abc', name: 'deploy', seq: 3, state: 'Failed', message: 'Execution failed: command terminated with exit status=2',
  exitCode: 2, startTime: '2026-11-26T10:00:00Z', endTime: '2026-11-26T10:01:05Z', bootId: 'b', settingsFile: '/c/deploy.3.settings',
  timeoutInSeconds: 0, asyncExecution: false, treatFailureAsDeploymentFailure: false, handlerFailure: false,
} satisfies RunJournal;

describe('run telemetry events', () => {
  it('describes a start with the run identity only', () => {
    expect(toStartEvent({ ...journal, state: 'Running' })).toEqual({ taskName: 'RunCommandStart', level: 'Informational', message: 'name=deploy seq=3 runId=deploy.3.abc', operationId: 'deploy.3.abc' });
  });

  it('describes an end with result and duration, at a level that follows the result', () => {
    const event = toEndEvent(journal);
    expect(event.message).toBe('name=deploy seq=3 runId=deploy.3.abc state=Failed exitCode=2 durationS=65 message=Execution failed: command terminated with exit status=2');
    expect(event.level).toBe('Warning');
    expect(toEndEvent({ ...journal, state: 'Succeeded' }).level).toBe('Informational');
    expect(toEndEvent({ ...journal, handlerFailure: true }).level).toBe('Error');
    expect(toEndEvent({ ...journal, startTime: '' }).message).toContain('durationS=unknown');
    // startTime is the acceptance; a launched run's duration is its script's, from launchTime.
    expect(toEndEvent({ ...journal, launchTime: '2026-11-26T10:01:00Z' }).message).toContain('durationS=5 ');
  });
});

describe('dependency state of a current run', () => {
  it('maps a journal to what a dependent waits for', () => {
    expect(toDependencyState(undefined)).toEqual({ kind: 'missing' });
    expect(toDependencyState({ ...journal, state: 'Running' })).toEqual({ kind: 'active', state: 'Running' });
    expect(toDependencyState({ ...journal, state: 'Succeeded', exitCode: 0 })).toEqual({ kind: 'succeeded' });
    expect(toDependencyState(journal)).toEqual({ kind: 'failed', state: 'Failed', exitCode: 2 });
  });
});
