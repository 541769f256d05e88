// `uninstall`: stop the daemon and every script it runs and remove the handler's state — except
// during an update, when the new version needs that state (protocol.md §8).
import { readdir, rm, rmdir } from 'node:fs/promises';
import { toErrorMessage } from '../../errors.js';
import type { HandlerContext } from '../infra/context.js';
import { waitForDaemonGone } from '../infra/daemon-control.js';
import type { Log } from '../infra/logger.js';
import { makeRunDeps } from '../daemon/run-deps.js';
import { takeUpdateMarker } from '../state/update-marker.js';
import { stopRunDirect } from './stop-run.js';

// Runs the uninstall command; always exits 0.
export async function runUninstall(context: HandlerContext, env: NodeJS.ProcessEnv, log: Log): Promise<number> {
  const { paths, options, store, platform } = context;
  const update = await takeUpdateMarker(store, Date.now());
  await context.daemon.shutdown(update === undefined);
  await waitForDaemonGone(context, options.killGraceMs + 15_000);
  if (update) {
    log.info('uninstall during an update: state kept for the new version', { from: update.from, to: update.to });
    return 0;
  }
  const deps = makeRunDeps(context, env);
  for (const { record } of await store.listRecords()) {
    if (record.kind === 'present') await stopRunDirect(store, record.value.runId, 'the handler is being uninstalled', deps);
  }
  // Runs remove their RunAs working directories when they end; this catches any a crash left,
  // including those of runs whose state is already gone (every entry of the work root).
  const workDirs = new Set([...(await store.listRunIds()), ...(await readdir(options.workRoot).catch(() => []))]);
  for (const runId of workDirs) {
    await platform.runAs.removeWorkDir(options.workRoot, runId).catch((error: unknown) => {
      log.warn('could not remove a RunAs working directory', { runId, error: toErrorMessage(error) });
    });
  }
  await rmdir(options.workRoot).catch(() => undefined);
  await rm(paths.stateDir, { recursive: true, force: true });
  log.info('uninstalled', { stateDir: paths.stateDir });
  return 0;
}
