// `daemon`: the long-lived process that watches settings files and runs scripts.
import { toErrorMessage } from '../../errors.js';
import { adoptDeferredCaCertificates } from '../../util/extra-ca-certificates.js';
import { sourceMappedStack } from '../../util/source-mapped-stack.js';
import { systemClock } from '../../util/time.js';
import type { HandlerContext } from '../infra/context.js';
import { Daemon } from '../daemon/daemon.js';
import type { DaemonEndpoint } from '../infra/daemon-endpoint.js';
import { DaemonAlreadyRunning } from '../infra/ipc.js';
import { makeDaemonLog } from '../infra/daemon-log.js';
import type { Log } from '../infra/logger.js';
import { Redactor } from '../infra/redact.js';
import { makeRunDeps } from '../daemon/run-deps.js';

// Runs the daemon until it is asked to stop; returns the process exit code.
// `endpoint`: the control endpoint daemon-command.ts bound before loading this module, or that it
// found another daemon serving (none: start() binds it).
export async function runDaemon(context: HandlerContext, env: NodeJS.ProcessEnv, options: { console: boolean; endpoint?: DaemonEndpoint | 'already-running' }): Promise<number> {
  const redactor = new Redactor();
  const log = await makeDaemonLog(context.paths.logFolder, redactor, { console: options.console });
  if (options.endpoint === 'already-running') return alreadyRunning(log);
  // Before any TLS connection, and before the scripts' environment is taken from `env`.
  const extraCa = adoptDeferredCaCertificates(env, (message) => log.warn(message));
  if (extraCa !== undefined) log.info('extra CA certificates are read at the first TLS connection', { file: extraCa });
  const endpoint = options.endpoint === undefined ? {} : { endpoint: options.endpoint };
  const daemon = new Daemon({ context, log, redactor, clock: systemClock, runDeps: makeRunDeps(context, env, (text) => redactor.redact(text)), ...endpoint });
  // The daemon must keep serving every other run command whatever one of them does.
  process.on('unhandledRejection', (reason) => log.error('unhandled rejection', { error: toErrorMessage(reason) }));
  process.on('uncaughtException', (error) => log.error('uncaught exception', { error: toErrorMessage(error), stack: sourceMappedStack(error.stack) }));
  process.on('SIGHUP', () => undefined);
  try {
    await daemon.start();
  } catch (error) {
    if (!(error instanceof DaemonAlreadyRunning)) throw error;
    return alreadyRunning(log);
  }
  // Once per daemon: which path decrypts protected settings (it starts the libcrypto helper).
  void context.platform.describeDecryptionPath().then((path) => log.info('protected settings decryption', { path })).catch(() => undefined);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void daemon.stop(false));
  await daemon.stopped;
  await log.close();
  return 0;
}

async function alreadyRunning(log: Log & { close(): Promise<void> }): Promise<number> {
  log.info('another daemon already serves this install; exiting');
  await log.close();
  return 0;
}
