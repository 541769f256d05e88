#!/usr/bin/env node
// The single entry point: the agent's lifecycle commands, the daemon, and the operator's CLI.
// Modules are loaded per command so that `enable` (run on every goal state) starts fast.
import { toErrorMessage } from './errors.js';
import { parseArgs, type ParsedArgs } from './handler/cli/args.js';

const usage = `usage: runcommand-handler <command>
  agent lifecycle: install | enable | disable | uninstall | update   [--handler-environment PATH]
  daemon [--local | --handler-environment PATH]     run the daemon in the foreground
  submit NAME (--script TEXT | --script-file PATH) [--param N=V]... [--protected-param N=V]... [--timeout S]
  status [NAME] [--json] [--watch]      logs NAME [--follow] [--stderr]      cancel NAME
  (operator commands use ./.runcommand unless --handler-environment is given)`;

type Entry = (args: ParsedArgs, explicit: string | undefined) => Promise<number>;

const lifecycle: Entry = async (args, explicit) => {
  const { runLifecycleCommand } = await import('./handler/commands/lifecycle.js');
  return runLifecycleCommand(args.command as 'install', explicit, process.env);
};
const operator: Entry = async (args, explicit) => {
  const { runOperatorCommand } = await import('./handler/cli/operator.js');
  return runOperatorCommand(args, explicit, process.env);
};
// `enable` runs on every goal state: its own entry (a file of its own in the package).
const enable: Entry = async (_args, explicit) => {
  const { runEnableCommand } = await import('./handler/commands/enable-main.js');
  return runEnableCommand(explicit, process.env);
};
const help: Entry = async (args) => {
  process.stdout.write(`${usage}\n`);
  return args.command === 'help' ? 0 : 2;
};

// Every command, one row each; modules load per command, so `enable` starts fast.
const commands: Readonly<Record<string, Entry>> = {
  install: lifecycle,
  enable,
  disable: lifecycle,
  uninstall: lifecycle,
  update: lifecycle,
  daemon: async (args, explicit) => {
    // Node's source maps stay off (they cost the idle daemon ≈ 7 MB): the stack the daemon logs goes
    // through the package's source maps when it is logged (util/source-mapped-stack.ts).
    const { runDaemonCommand } = await import('./handler/cli/daemon-command.js');
    return runDaemonCommand(explicit, args.flags.has('local'), process.env);
  },
  submit: operator,
  status: operator,
  logs: operator,
  cancel: operator,
  help,
};

function dispatch(args: ParsedArgs): Promise<number> {
  const entry = Object.hasOwn(commands, args.command) ? commands[args.command] : undefined;
  return (entry ?? help)(args, args.flags.get('handler-environment')?.at(-1));
}

// Nothing the handler creates (logs, status, state) may be group- or world-writable, whatever
// umask the agent starts it with; the daemon and the scripts inherit this.
process.umask(process.umask() | 0o022);

try {
  process.exitCode = await dispatch(parseArgs(process.argv.slice(2)));
} catch (error) {
  process.stderr.write(`runcommand-handler: ${toErrorMessage(error)}\n`);
  process.exitCode = 1;
}
