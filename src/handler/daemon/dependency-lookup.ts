// The state of a run command's current run, as the runs that depend on it see it (dependsOn): the
// live run's, its journal's, or the status Microsoft's handler left for it.
import { toDependencyState, type DependencyState } from '../../runner/dependency-graph.js';
import type { RunState } from '../../runner/run-state.js';
import { readStatusFile } from '../agent/status-file.js';
import type { HandlerContext } from '../infra/context.js';
import type { RunRegistry } from './run-registry.js';

// The state of `name`'s current run, for its dependents (an unreadable one did not succeed).
export async function lookupDependency(name: string, deps: { readonly context: HandlerContext; readonly runs: RunRegistry }): Promise<DependencyState> {
  const live = deps.runs.get(name)?.journal;
  if (live) return toDependencyState(live);
  const current = await deps.context.store.currentRun(name);
  if (current.kind === 'none') return toDependencyState(undefined);
  if (current.kind === 'run' && current.record.takenOver) {
    // Microsoft's handler ran it: its carried status says how it ended.
    const view = (await readStatusFile(deps.context.paths.statusFolder, name, current.record.seq))?.instanceView;
    return toDependencyState(view ? { state: view.executionState as RunState, exitCode: view.exitCode } : undefined);
  }
  if (current.kind === 'run' && current.journal.kind === 'present') return toDependencyState(current.journal.value);
  return current.kind === 'run' && current.journal.kind === 'absent' ? toDependencyState(undefined) : { kind: 'failed', state: 'Failed', exitCode: -1 };
}
