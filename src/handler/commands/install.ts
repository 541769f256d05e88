// `install`: create the handler's data directories; idempotent.
import type { HandlerContext } from '../context.js';
import type { Log } from '../logger.js';
import { ensureStateDirs } from '../paths.js';

// Runs the install command.
export async function runInstall(context: HandlerContext, log: Log): Promise<number> {
  await ensureStateDirs(context.paths);
  log.info('installed', { version: context.version, stateDir: context.paths.stateDir });
  return 0;
}
