// The dependsOn graph between run commands (run-command.md §5): pure functions, no I/O.
import type { RunJournal } from './journal.js';
import { isTerminal } from './run-state.js';

// What a dependency's current run looks like to a waiting dependent.
export type DependencyState =
  | { readonly kind: 'missing' }
  | { readonly kind: 'active'; readonly state: string }
  | { readonly kind: 'succeeded' }
  | { readonly kind: 'failed'; readonly state: string; readonly exitCode: number };

export type DependencyVerdict =
  | { readonly kind: 'ready' }
  | { readonly kind: 'wait'; readonly waitingFor: readonly string[]; readonly missing: readonly string[] }
  | { readonly kind: 'blocked'; readonly dependency: string; readonly state: string; readonly exitCode: number };

// Decides whether a dependent may start, must wait, or will never run.
export function toDependencyVerdict(states: ReadonlyMap<string, DependencyState>): DependencyVerdict {
  const waitingFor: string[] = [];
  const missing: string[] = [];
  for (const [name, state] of states) {
    if (state.kind === 'failed') return { kind: 'blocked', dependency: name, state: state.state, exitCode: state.exitCode };
    if (state.kind === 'missing') missing.push(name);
    if (state.kind !== 'succeeded') waitingFor.push(name);
  }
  return waitingFor.length === 0 ? { kind: 'ready' } : { kind: 'wait', waitingFor, missing };
}

// The executionMessage of a dependent that waits.
export function toWaitingMessage(states: ReadonlyMap<string, DependencyState>): string {
  const parts = [...states]
    .filter(([, state]) => state.kind === 'missing' || state.kind === 'active')
    .map(([name, state]) => (state.kind === 'active' ? `${name} (${state.state})` : `${name} (not created yet)`));
  return `Waiting for dependencies: ${parts.join(', ')}`;
}

// Every cycle through `start` in the graph (name → dependsOn), as the path `start → … → start`;
// the first one found, or undefined.
export function findCycle(graph: ReadonlyMap<string, readonly string[]>, start: string): string[] | undefined {
  const path: string[] = [];
  const visited = new Set<string>();
  const visit = (node: string): string[] | undefined => {
    path.push(node);
    for (const next of graph.get(node) ?? []) {
      if (next === start) return [...path, start];
      if (visited.has(next)) continue;
      visited.add(next);
      const found = visit(next);
      if (found) return found;
    }
    path.pop();
    return undefined;
  };
  return visit(start);
}

// What a dependent waits for, from the dependency's current journal (undefined: it has none).
export function toDependencyState(journal: Pick<RunJournal, 'state' | 'exitCode'> | undefined): DependencyState {
  if (journal === undefined) return { kind: 'missing' };
  if (!isTerminal(journal.state)) return { kind: 'active', state: journal.state };
  if (journal.state === 'Succeeded') return { kind: 'succeeded' };
  return { kind: 'failed', state: journal.state, exitCode: journal.exitCode };
}
