// `disable`: the run command was deleted (or the handler is being removed or updated): kill its
// script tree, never write its status again, and forget its exactly-once record (protocol.md §8).
import type { HandlerContext } from '../context.js';
import { sendIpcRequest, toIpcEndpoint } from '../ipc.js';
import type { Log } from '../logger.js';
import { makeRunDeps } from '../run-deps.js';
import { cancelRunDirect } from '../run-control.js';
import { readRecord, writeRecord } from '../sequence-records.js';
import { readCommandIdentity } from './enable.js';

// Runs the disable command; always exits 0 (a failing disable blocks the agent's uninstall).
export async function runDisable(context: HandlerContext, env: NodeJS.ProcessEnv, log: Log): Promise<number> {
  const identity = readCommandIdentity({ ...env, ConfigSequenceNumber: env['ConfigSequenceNumber'] ?? '0' });
  if ('error' in identity) {
    log.warn(`disable ignored: ${identity.error}`);
    return 0;
  }
  const { name } = identity;
  const timeoutMs = context.options.killGraceMs + 15_000;
  const reply = await sendIpcRequest(toIpcEndpoint(context.paths.stateDir), { op: 'disable', name }, timeoutMs);
  if (reply?.ok) {
    log.info('disable done by the daemon', { name });
    return 0;
  }
  const { paths } = context;
  const record = await readRecord(paths.recordsDir, name);
  if (record && record.disabledAt === undefined) {
    await cancelRunDirect(paths, record.runId, 'disable: the run command was deleted, or the handler is being updated or removed', makeRunDeps(context.options, env));
    await writeRecord(paths.recordsDir, { ...record, disabledAt: Date.now() });
  }
  log.info('disable done without a daemon', { name, seq: record?.seq });
  return 0;
}
