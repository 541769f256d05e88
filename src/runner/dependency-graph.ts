// The dependsOn graph between run commands (run-command.md §5): pure functions, no I/O.

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

// The names in an order where every run command comes after its dependencies (unknown names last
// are ignored); undefined when the graph has a cycle.
export function toExecutionOrder(graph: ReadonlyMap<string, readonly string[]>): string[] | undefined {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (node: string): boolean => {
    const seen = state.get(node);
    if (seen === 'done') return true;
    if (seen === 'visiting') return false;
    state.set(node, 'visiting');
    for (const next of graph.get(node) ?? []) if (graph.has(next) && !visit(next)) return false;
    state.set(node, 'done');
    order.push(node);
    return true;
  };
  for (const node of graph.keys()) if (!visit(node)) return undefined;
  return order;
}

// Dependencies named in the graph that no run command in it has.
export function findUnknownReferences(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const unknown = new Set<string>();
  for (const dependencies of graph.values()) for (const name of dependencies) if (!graph.has(name)) unknown.add(name);
  return [...unknown];
}
