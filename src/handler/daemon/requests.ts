// The daemon's answers to its control requests (daemon-client.ts): hello; enable, acknowledged at
// once and considered later; disable, cancel and shutdown. Disable and cancel wait until the
// interrupted runs are recovered, so they never race recovery over the same run.
import type { KeyedQueue } from '../../util/keyed-queue.js';
import type { Clock } from '../../util/time.js';
import type { HandlerContext } from '../infra/context.js';
import { toHello, type DaemonEndpoint } from '../infra/daemon-endpoint.js';
import type { Log } from '../infra/logger.js';
import type { RunRegistry } from './run-registry.js';

export interface RequestDeps {
  readonly context: HandlerContext;
  readonly log: Log;
  readonly clock: Clock;
  readonly runs: RunRegistry;
  // The daemon's decisions about one run command, serialised per name.
  readonly decisions: KeyedQueue;
  // Resolved once interrupted runs are recovered.
  readonly recovered: Promise<void>;
  // Keeps the agent's variables of the latest enable for the runs it starts (run-command.md §4).
  setAgentEnv(agentEnv: Readonly<Record<string, string>>): void;
  // Considers the settings file an enable names.
  enable(name: string, seq: number): Promise<void>;
  stop(cancelRuns: boolean): Promise<void>;
}

// Hands the daemon's request handlers to its control endpoint.
export function attachRequests(endpoint: DaemonEndpoint, deps: RequestDeps): void {
  const { context, recovered } = deps;
  endpoint.attach({
    hello: async () => toHello(context),
    // Answered at once: `enable` must not wait for a superseded run to die.
    enable: async ({ name, seq, agentEnv }) => {
      if (agentEnv !== undefined) deps.setAgentEnv(agentEnv);
      void deps.enable(name, seq);
      return {};
    },
    disable: async ({ name }) => (await recovered, await disable(name, deps), {}),
    cancel: async ({ name }) => (await recovered, { canceled: await cancel(name, deps) }),
    shutdown: async ({ cancelRuns }) => (setImmediate(() => void deps.stop(cancelRuns)), {}),
  }, deps.log);
}

async function cancel(name: string, deps: RequestDeps): Promise<boolean> {
  const run = deps.runs.get(name);
  if (!run) return false;
  await run.cancel('canceled by the operator');
  return true;
}

// The run command was deleted: silence its status, kill its tree, forget its record.
async function disable(name: string, deps: RequestDeps): Promise<void> {
  const { store } = deps.context;
  await deps.decisions.run(name, async () => {
    const run = deps.runs.get(name);
    const record = await store.readRecord(name);
    const recordedRunId = record.kind === 'present' ? record.value.runId : undefined;
    await deps.runs.silence(name, [run?.journal.runId, recordedRunId].filter((id): id is string => id !== undefined));
    if (run) await run.cancel('disable: the run command was deleted, or the handler is being updated or removed');
    await store.markDisabled(name, record, deps.clock.now());
    deps.log.info('run command disabled', { name, seq: record.kind === 'present' ? record.value.seq : undefined, runId: recordedRunId });
  });
}
