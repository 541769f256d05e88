// `uninstall`: stop the daemon and every script it runs and remove the handler's state — except
// during an update, when the new version needs that state (protocol.md §8).
import { rm, rmdir } from 'node:fs/promises';
import { basename } from 'node:path';
import { removeWorkDir } from '../../runner/run-as.js';
import type { HandlerContext } from '../context.js';
import { waitForDaemonGone } from '../daemon-control.js';
import { sendIpcRequest, toIpcEndpoint } from '../ipc.js';
import type { Log } from '../logger.js';
import { listRunDirs } from '../recovery.js';
import { makeRunDeps } from '../run-deps.js';
import { cancelRunDirect } from '../run-control.js';
import { listRecords } from '../sequence-records.js';
import { takeUpdateMarker } from '../update-marker.js';

// Runs the uninstall command; always exits 0.
export async function runUninstall(context: HandlerContext, env: NodeJS.ProcessEnv, log: Log): Promise<number> {
  const { paths, options } = context;
  const update = await takeUpdateMarker(paths.stateDir, Date.now());
  const endpoint = toIpcEndpoint(paths.stateDir);
  await sendIpcRequest(endpoint, { op: 'shutdown', cancelRuns: update === undefined }, 1000);
  await waitForDaemonGone(context, options.killGraceMs + 15_000);
  if (update) {
    log.info('uninstall during an update: state kept for the new version', { from: update.from, to: update.to });
    return 0;
  }
  const deps = makeRunDeps(options, env);
  for (const record of await listRecords(paths.recordsDir)) {
    await cancelRunDirect(paths, record.runId, 'the handler is being uninstalled', deps);
  }
  // Runs remove their RunAs working directories when they end; this catches any a crash left.
  for (const runDir of await listRunDirs(paths)) await removeWorkDir(options.workRoot, basename(runDir)).catch(() => undefined);
  await rmdir(options.workRoot).catch(() => undefined);
  await rm(paths.stateDir, { recursive: true, force: true });
  log.info('uninstalled', { stateDir: paths.stateDir });
  return 0;
}
