// A run command's current run as its dependents see it (run-command.md §5): the journal of the
// run its exactly-once record names, unless the run command was deleted.
import type { DependencyState } from '../runner/dependency-graph.js';
import { readJournal, type RunJournal } from '../runner/journal.js';
import { isTerminal } from '../runner/run-state.js';
import { toRunDir, type HandlerPaths } from './paths.js';
import { readRecord } from './sequence-records.js';

// The journal of `name`'s current run from disk; undefined when it has none (or was deleted).
export async function readCurrentJournal(paths: HandlerPaths, name: string): Promise<RunJournal | undefined> {
  const record = await readRecord(paths.recordsDir, name);
  if (record === undefined || record.disabledAt !== undefined) return undefined;
  return readJournal(toRunDir(paths, record.runId));
}

// What a dependent waits for, from the dependency's current journal.
export function toDependencyState(journal: RunJournal | undefined): DependencyState {
  if (journal === undefined) return { kind: 'missing' };
  if (!isTerminal(journal.state)) return { kind: 'active', state: journal.state };
  if (journal.state === 'Succeeded') return { kind: 'succeeded' };
  return { kind: 'failed', state: journal.state, exitCode: journal.exitCode };
}
