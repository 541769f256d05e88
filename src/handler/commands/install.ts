// `install`: create the handler's data directories; idempotent.
import { mkdir } from 'node:fs/promises';
import type { HandlerContext } from '../infra/context.js';
import type { Log } from '../infra/logger.js';

// Runs the install command.
export async function runInstall(context: HandlerContext, log: Log): Promise<number> {
  await context.store.ensure();
  await mkdir(context.paths.logFolder, { recursive: true, mode: 0o755 });
  log.info('installed', { version: context.version, stateDir: context.paths.stateDir });
  return 0;
}
