// Stopping a run without the daemon (disable or uninstall while it is down): the run is rebuilt
// from its journal, re-attached and canceled through the same Run code the daemon uses.
import { isActiveJournal } from '../../runner/journal.js';
import { readProcessIdentity } from '../../runner/process-contract.js';
import { Run } from '../../runner/run.js';
import type { RunDeps } from '../../runner/run-deps.js';
import type { RunStore } from '../state/run-store.js';

// Cancels the run `runId` if its journal says it is still active; resolves when it is terminal.
// A run whose journal cannot be read is stopped through its wrapper's record, if it has one.
export async function stopRunDirect(store: RunStore, runId: string, reason: string, deps: RunDeps): Promise<void> {
  const runDir = store.toRunDir(runId);
  const read = await store.readJournal(runId);
  if (read.kind === 'absent' || (read.kind === 'present' && !isActiveJournal(read.value))) return;
  const identity = (read.kind === 'present' ? read.value.process : undefined) ?? (await readProcessIdentity(runDir));
  if (read.kind === 'corrupt') {
    if (identity !== undefined) deps.platform.processLayer.killRunNow(identity);
    return;
  }
  const journal = read.value;
  if (identity === undefined) {
    await new Run(runDir, journal, undefined, deps).cancel(reason);
    return;
  }
  const run = new Run(runDir, { ...journal, state: 'Running', process: identity }, undefined, deps);
  void run.resume();
  await run.cancel(reason);
}
