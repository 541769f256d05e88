// The operator's commands on a local (or given) layout: submit, status, logs, cancel.
import { loadHandlerContext, type HandlerContext } from '../context.js';
import { sendIpcRequest, toIpcEndpoint } from '../ipc.js';
import { ensureLocalLayout } from '../local-layout.js';
import { runLogs } from './logs.js';
import { runStatus } from './status.js';
import { runSubmit } from './submit.js';

interface OperatorArgs {
  readonly command: string;
  readonly positional: readonly string[];
  readonly flags: ReadonlyMap<string, readonly string[]>;
}

async function cancel(context: HandlerContext, name: string | undefined): Promise<number> {
  if (name === undefined) throw new Error('cancel needs a NAME');
  const reply = await sendIpcRequest(toIpcEndpoint(context.paths.stateDir), { op: 'cancel', name }, context.options.killGraceMs + 15_000);
  if (!reply?.ok) throw new Error('no daemon answered: is it running?');
  process.stdout.write(reply['canceled'] ? `canceled ${name}\n` : `${name} has no active run\n`);
  return 0;
}

// Runs an operator command; returns the process exit code.
export async function runOperatorCommand(args: OperatorArgs, explicit: string | undefined, env: NodeJS.ProcessEnv): Promise<number> {
  const path = explicit ?? env['RUNCOMMAND_HANDLER_ENVIRONMENT'] ?? (await ensureLocalLayout(process.cwd())).handlerEnvironmentPath;
  const context = await loadHandlerContext(path, env);
  const name = args.positional[0];
  switch (args.command) {
    case 'submit':
      return runSubmit(context, name, args.flags);
    case 'status':
      return runStatus(context, name, { json: args.flags.has('json'), watch: args.flags.has('watch') });
    case 'logs':
      return runLogs(context, name, { follow: args.flags.has('follow'), stream: args.flags.has('stderr') ? 'stderr' : 'stdout' });
    default:
      return cancel(context, name);
  }
}
