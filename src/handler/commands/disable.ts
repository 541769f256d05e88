// `disable`: the run command was deleted (or the handler is being removed or updated): kill its
// script tree, never write its status again, and forget its exactly-once record (protocol.md §8).
import type { HandlerContext } from '../infra/context.js';
import type { Log } from '../infra/logger.js';
import { makeRunDeps } from '../daemon/run-deps.js';
import { stopRunDirect } from './stop-run.js';
import { readCommandIdentity } from '../../config/run-command.js';

// Runs the disable command; always exits 0 (a failing disable blocks the agent's uninstall).
export async function runDisable(context: HandlerContext, env: NodeJS.ProcessEnv, log: Log): Promise<number> {
  const identity = readCommandIdentity({ ...env, ConfigSequenceNumber: env['ConfigSequenceNumber'] ?? '0' });
  if ('error' in identity) {
    log.warn(`disable ignored: ${identity.error}`);
    return 0;
  }
  const { name } = identity;
  if (await context.daemon.disable(name)) {
    log.info('disable done by the daemon', { name });
    return 0;
  }
  const { store } = context;
  const record = await store.readRecord(name);
  if (record.kind === 'present' && record.value.disabledAt === undefined) {
    await stopRunDirect(store, record.value.runId, 'disable: the run command was deleted, or the handler is being updated or removed', makeRunDeps(context, env));
  }
  await store.markDisabled(name, record, Date.now());
  log.info('disable done without a daemon', { name, seq: record.kind === 'present' ? record.value.seq : undefined });
  return 0;
}
