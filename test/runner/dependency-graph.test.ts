import { describe, expect, it } from 'vitest';
import {
  findCycle, toDependencyVerdict, toWaitingMessage, type DependencyState,
} from '../../src/runner/dependency-graph.js';

const states = (entries: Record<string, DependencyState>) => new Map(Object.entries(entries));

describe('dependency graph', () => {
  it('is ready only when every dependency succeeded', () => {
    expect(toDependencyVerdict(states({ a: { kind: 'succeeded' }, b: { kind: 'succeeded' } }))).toEqual({ kind: 'ready' });
    expect(toDependencyVerdict(new Map())).toEqual({ kind: 'ready' });
  });

  it('waits for active and missing dependencies and says which are missing', () => {
    expect(toDependencyVerdict(states({ a: { kind: 'succeeded' }, b: { kind: 'active', state: 'Running' }, c: { kind: 'missing' } }))).toEqual({
      kind: 'wait',
      waitingFor: ['b', 'c'],
      missing: ['c'],
    });
  });

  it('is blocked by the first dependency that did not succeed, naming its state and exit code', () => {
    const verdict = toDependencyVerdict(states({ a: { kind: 'active', state: 'Pending' }, b: { kind: 'failed', state: 'TimedOut', exitCode: -1 } }));
    expect(verdict).toEqual({ kind: 'blocked', dependency: 'b', state: 'TimedOut', exitCode: -1 });
  });

  it('names what a waiting run waits for', () => {
    const message = toWaitingMessage(states({ a: { kind: 'succeeded' }, b: { kind: 'active', state: 'Running' }, c: { kind: 'missing' } }));
    expect(message).toBe('Waiting for dependencies: b (Running), c (not created yet)');
  });

  it('finds a cycle through the start node and reports it as a path', () => {
    const graph = new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]]);
    expect(findCycle(graph, 'a')).toEqual(['a', 'b', 'c', 'a']);
    expect(findCycle(graph, 'd')).toBeUndefined();
    expect(findCycle(new Map([['x', ['y']]]), 'x')).toBeUndefined();
  });
});
