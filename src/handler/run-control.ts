// Stopping runs without the daemon (disable or uninstall while it is down): the run is
// rebuilt from its journal, re-attached and canceled through the same Run code the daemon uses.
import { readJournal, isActiveJournal } from '../runner/journal.js';
import { readProcessIdentity } from '../runner/process.js';
import { Run, type RunDeps } from '../runner/run.js';
import { toRunDir, type HandlerPaths } from './paths.js';

// Cancels the run `runId` if its journal says it is still active; resolves when it is terminal.
export async function cancelRunDirect(paths: HandlerPaths, runId: string, reason: string, deps: RunDeps): Promise<void> {
  const runDir = toRunDir(paths, runId);
  const journal = await readJournal(runDir);
  if (journal === undefined || !isActiveJournal(journal)) return;
  const identity = journal.process ?? (await readProcessIdentity(runDir));
  if (identity === undefined) {
    await new Run(runDir, journal, undefined, deps).cancel(reason);
    return;
  }
  const run = new Run(runDir, { ...journal, state: 'Running', process: identity }, undefined, deps);
  void run.resume();
  await run.cancel(reason);
}
