// `enable`: make sure a status file exists for (name, seq) and a daemon serves this install, then
// exit — fast, idempotent, never running or waiting for the script (protocol.md §4).
import { readCommandIdentity } from '../../config/run-command.js';
import { toAgentVariables } from '../../runner/parameters.js';
import { ensureStatusFile } from '../agent/status-file.js';
import type { HandlerContext } from '../infra/context.js';
import { ensureDaemon } from '../infra/daemon-control.js';
import type { Log } from '../infra/logger.js';

// Runs the enable command; returns the process exit code.
export async function runEnable(context: HandlerContext, env: NodeJS.ProcessEnv, log: Log): Promise<number> {
  const identity = readCommandIdentity(env);
  if ('error' in identity) {
    log.error(`enable refused: ${identity.error}`);
    process.stderr.write(`enable: ${identity.error}\n`);
    return 1;
  }
  await ensureStatusFile(context, identity.name, identity.seq);
  const daemon = await ensureDaemon(context, log);
  if (daemon !== 'starting') await context.daemon.enable(identity.name, identity.seq, toAgentVariables(env));
  log.info('enable', { name: identity.name, seq: identity.seq, daemon });
  return 0;
}
