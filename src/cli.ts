#!/usr/bin/env node
// The single entry point: the agent's lifecycle commands, the daemon, and the operator's CLI.
// Modules are loaded per command so that `enable` (run on every goal state) starts fast.
import { toErrorMessage } from './errors.js';

interface ParsedArgs {
  readonly command: string;
  readonly positional: readonly string[];
  readonly flags: ReadonlyMap<string, readonly string[]>;
}

const booleanFlags = new Set(['local', 'json', 'follow', 'watch', 'help', 'async', 'treat-failure-as-deployment-failure']);

// Splits argv into a command, positional words and `--flag value` pairs (repeatable).
export function parseArgs(argv: readonly string[]): ParsedArgs {
  const [command = 'help', ...rest] = argv;
  const positional: string[] = [];
  const flags = new Map<string, string[]>();
  for (let index = 0; index < rest.length; index += 1) {
    const word = rest[index] ?? '';
    if (!word.startsWith('--')) {
      positional.push(word);
      continue;
    }
    const [key = '', inline] = word.slice(2).split(/=(.*)/s, 2);
    const value = inline ?? (booleanFlags.has(key) ? 'true' : rest[(index += 1)]);
    if (value === undefined) throw new Error(`--${key} needs a value`);
    flags.set(key, [...(flags.get(key) ?? []), value]);
  }
  return { command, positional, flags };
}

const usage = `usage: runcommand-handler <command>
  agent lifecycle: install | enable | disable | uninstall | update   [--handler-environment PATH]
  daemon [--local | --handler-environment PATH]     run the daemon in the foreground
  submit NAME (--script TEXT | --script-file PATH) [--param N=V]... [--protected-param N=V]... [--timeout S]
  status [NAME] [--json]      logs NAME [--follow] [--stderr]      cancel NAME
  (operator commands use ./.runcommand unless --handler-environment is given)`;

async function dispatch(args: ParsedArgs): Promise<number> {
  const explicit = args.flags.get('handler-environment')?.at(-1);
  const lifecycle = ['install', 'enable', 'disable', 'uninstall', 'update'];
  if (lifecycle.includes(args.command)) {
    const { runLifecycleCommand } = await import('./handler/commands/lifecycle.js');
    return runLifecycleCommand(args.command, explicit, process.env);
  }
  if (args.command === 'daemon') {
    const { runDaemonCommand } = await import('./handler/cli/daemon-command.js');
    return runDaemonCommand(explicit, args.flags.has('local'), process.env);
  }
  if (['submit', 'status', 'logs', 'cancel'].includes(args.command)) {
    const { runOperatorCommand } = await import('./handler/cli/operator.js');
    return runOperatorCommand(args, explicit, process.env);
  }
  process.stdout.write(`${usage}\n`);
  return args.command === 'help' ? 0 : 2;
}

try {
  process.exitCode = await dispatch(parseArgs(process.argv.slice(2)));
} catch (error) {
  process.stderr.write(`runcommand-handler: ${toErrorMessage(error)}\n`);
  process.exitCode = 1;
}
