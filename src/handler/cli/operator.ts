// The operator's commands on a local (or given) layout: submit, status, logs, cancel.
import { loadHandlerContext, type HandlerContext } from '../infra/context.js';
import { ensureLocalLayout } from './local-layout.js';
import { runLogs } from './logs.js';
import { runStatus } from './status.js';
import { runSubmit } from './submit.js';

// `daemon --local` gets the local layout from here: this module is loaded on its own already, and
// the daemon's command stays light until its endpoint is up (daemon-command.ts).
export { ensureLocalLayout };

interface OperatorArgs {
  readonly command: string;
  readonly positional: readonly string[];
  readonly flags: ReadonlyMap<string, readonly string[]>;
}

async function cancel(context: HandlerContext, name: string | undefined): Promise<number> {
  if (name === undefined) throw new Error('cancel needs a NAME');
  const reply = await context.daemon.cancel(name);
  if (reply === undefined) throw new Error('no daemon answered: is it running?');
  process.stdout.write(reply.canceled ? `canceled ${name}\n` : `${name} has no active run\n`);
  return 0;
}

// Runs an operator command; returns the process exit code.
export async function runOperatorCommand(args: OperatorArgs, explicit: string | undefined, env: NodeJS.ProcessEnv): Promise<number> {
  const path = explicit ?? env['RUNCOMMAND_HANDLER_ENVIRONMENT'] ?? (await ensureLocalLayout(process.cwd())).handlerEnvironmentPath;
  const context = await loadHandlerContext(path, env);
  return operatorCommands[args.command as OperatorCommand](context, args.positional[0], args.flags);
}

type OperatorCommand = 'submit' | 'status' | 'logs' | 'cancel';
type Flags = OperatorArgs['flags'];

// The operator's commands, one row each.
const operatorCommands: Readonly<Record<OperatorCommand, (context: HandlerContext, name: string | undefined, flags: Flags) => Promise<number>>> = {
  submit: (context, name, flags) => runSubmit(context, name, flags),
  status: (context, name, flags) => runStatus(context, name, { json: flags.has('json'), watch: flags.has('watch') }),
  logs: (context, name, flags) => runLogs(context, name, { follow: flags.has('follow'), stream: flags.has('stderr') ? 'stderr' : 'stdout' }),
  cancel,
};
