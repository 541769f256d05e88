// Starting, finding and stopping the daemon from a lifecycle command.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { sleep } from '../../util/time.js';
import { cliPath, packageRoot, type HandlerContext } from './context.js';
import type { Log } from './logger.js';
import { toDaemonEnvironment } from '../../util/extra-ca-certificates.js';

export type DaemonState = 'running' | 'started' | 'starting';

// Waits until no daemon answers for this install (or the time is up); true when gone.
export async function waitForDaemonGone(context: HandlerContext, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await context.daemon.hello(200)) === undefined) return true;
    await sleep(50);
  }
  return false;
}

// V8 flags of the daemon, set by the daemon itself once its control endpoint is bound
// (daemon-command.ts): on node's command line any V8 flag changes the flag hash that node's
// embedded code cache of its own modules is checked against, and every builtin the daemon loads
// is then compiled from source (≈ 16 ms more for the ones it loads before it can answer `enable`,
// 2 CPUs; issue 11.4). `--no-opt`: no optimising compiler (TurboFan). The daemon's work is waiting
// on files, processes and sockets, and its heavy lifting (JSON, buffers, streams, hashing) is
// native code; compiling its hot JS buys little CPU but costs memory that stays for the daemon's
// lifetime: ≈ 3.5 MB of node's own code pages (the compiler) resident after its first runs, a
// third of what it held above a bare node when idle (README, Figures). `--no-sparkplug`: nor the
// baseline compiler, for the same reason (≈ 1.5 MB of the idle daemon); the daemon's JS runs in the
// interpreter. `--semi-space-growth-factor=1`: the young generation stays at its initial size
// (1 MB per semi-space) instead of growing under a burst of runs — what `--max-semi-space-size=1`
// did from the command line; V8 gives grown semi-spaces back only when its memory reducer runs,
// which it does not always within the first minute of idling (a few MB more).
export const daemonV8Flags: readonly string[] = ['--no-opt', '--no-sparkplug', '--semi-space-growth-factor=1'];

// Node's own flags of the daemon's command line: none (daemonV8Flags says why). The native enable
// client (src/native/rch-enable.c, start_daemon) starts it the same way.
export const daemonNodeFlags: readonly string[] = [];

// Starts the daemon in its own session, detached from the agent's process group, with its own
// stdout/stderr (a file in the log folder), so it holds none of the agent's capture files.
export async function spawnDaemon(context: HandlerContext): Promise<void> {
  await mkdir(context.paths.logFolder, { recursive: true });
  const out = openSync(join(context.paths.logFolder, 'daemon.out'), 'a', 0o644);
  try {
    const child = spawn(process.execPath, [...daemonNodeFlags, cliPath, 'daemon', '--handler-environment', context.paths.handlerEnvironmentPath], {
      detached: true,
      stdio: ['ignore', out, out],
      cwd: packageRoot,
      // NODE_EXTRA_CA_CERTS is read at the daemon's first TLS connection, not at its start.
      env: toDaemonEnvironment(process.env),
    });
    child.unref();
  } finally {
    closeSync(out);
  }
}

// Makes sure a daemon of this version serves this install; waits for it at most `budgetMs`.
export async function ensureDaemon(context: HandlerContext, log: Log, budgetMs = 1200): Promise<DaemonState> {
  const deadline = Date.now() + budgetMs;
  const hello = await context.daemon.hello();
  if (hello && hello.configFolder === context.paths.configFolder) return 'running';
  if (hello) {
    // Another version's daemon (an update in progress): it leaves its scripts running; ours re-attaches.
    log.info('asking the daemon of another version to stop', { version: hello.version });
    await context.daemon.shutdown(false);
    await waitForDaemonGone(context, Math.max(0, deadline - Date.now() - 300));
  }
  await spawnDaemon(context);
  while (Date.now() < deadline) {
    await sleep(25);
    if (await context.daemon.hello(200)) return 'started';
  }
  return 'starting';
}
