// `daemon`: in the foreground, on the agent's layout or (`--local`) on ./.runcommand. The control
// endpoint is bound first, then the daemon's modules load (daemon-endpoint.ts): a lifecycle
// command that started this daemon gets its answer without waiting for them.
import { setFlagsFromString } from 'node:v8';
import { handleFastEnable } from '../commands/fast-enable.js';
import { loadHandlerContext, packageRoot } from '../infra/context.js';
import { DaemonEndpoint } from '../infra/daemon-endpoint.js';
import { writeEndpointFile } from '../infra/endpoint-file.js';
import { DaemonAlreadyRunning } from '../infra/ipc.js';
import { daemonV8Flags } from '../infra/daemon-control.js';

// Starts the daemon; with `local` it creates the local layout first and also logs to the console.
export async function runDaemonCommand(explicit: string | undefined, local: boolean, env: NodeJS.ProcessEnv): Promise<number> {
  const path = local ? (await (await import('./operator.js')).ensureLocalLayout(process.cwd())).handlerEnvironmentPath : explicit;
  const context = await loadHandlerContext(path, env);
  if (local) process.stdout.write(`runcommand-handler: serving ${context.paths.configFolder}\n`);
  // The state folder first, root-only: the daemon's socket and lock live in it (ipc.ts).
  await context.store.ensure();
  const endpoint = await DaemonEndpoint.bind(context, handleFastEnable).catch((error: unknown) => {
    if (error instanceof DaemonAlreadyRunning) return 'already-running' as const;
    throw error;
  });
  // The native enable client finds this daemon by it (endpoint-file.ts).
  if (endpoint !== 'already-running') await writeEndpointFile(packageRoot, context, env);
  // A native client that started this daemon is waiting for its answer: before the rest loads.
  if (endpoint !== 'already-running') await endpoint.serveWaitingClients();
  // From here on the daemon's JS runs in the interpreter, in a young generation that does not grow.
  for (const flag of daemonV8Flags) setFlagsFromString(flag);
  const { runDaemon } = await import('../commands/daemon.js');
  return runDaemon(context, env, { console: local, endpoint });
}
