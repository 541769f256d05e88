// `daemon`: in the foreground, on the agent's layout or (`--local`) on ./.runcommand.
import { loadHandlerContext } from '../infra/context.js';
import { runDaemon } from '../commands/daemon.js';
import { ensureLocalLayout } from './local-layout.js';

// Starts the daemon; with `local` it creates the local layout first and also logs to the console.
export async function runDaemonCommand(explicit: string | undefined, local: boolean, env: NodeJS.ProcessEnv): Promise<number> {
  const path = local ? (await ensureLocalLayout(process.cwd())).handlerEnvironmentPath : explicit;
  const context = await loadHandlerContext(path, env);
  if (local) process.stdout.write(`runcommand-handler: serving ${context.paths.configFolder}\n`);
  return runDaemon(context, env, { console: local });
}
