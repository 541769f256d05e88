// `install`: create the handler's data directories; idempotent. It also writes the endpoint file
// (infra/endpoint-file.ts), so that the first enable's native client can start the daemon itself.
import { mkdir } from 'node:fs/promises';
import { packageRoot, type HandlerContext } from '../infra/context.js';
import { writeEndpointFile } from '../infra/endpoint-file.js';
import type { Log } from '../infra/logger.js';

// Runs the install command.
export async function runInstall(context: HandlerContext, env: NodeJS.ProcessEnv, log: Log): Promise<number> {
  await context.store.ensure();
  await mkdir(context.paths.logFolder, { recursive: true, mode: 0o755 });
  await writeEndpointFile(packageRoot, context, env);
  log.info('installed', { version: context.version, stateDir: context.paths.stateDir });
  return 0;
}
