// The agent's lifecycle commands (protocol.md §4), one row each, like Microsoft's command map.
// `enable`, run on every goal state, is also an entry of its own (enable-main.ts), which the CLI
// uses: it loads none of the other commands' code (disable and uninstall reach the runner).
import { runCommandRow, type CommandRow, type LifecycleCommand } from './command-runner.js';
import { runDisable } from './disable.js';
import { enableRow } from './enable-main.js';
import { runInstall } from './install.js';
import { runUninstall } from './uninstall.js';
import { runUpdate } from './update.js';

export type { LifecycleCommand };

export const lifecycleCommands: Readonly<Record<LifecycleCommand, CommandRow>> = {
  install: { run: (context, env, log) => runInstall(context, env, log), neverFails: false },
  enable: enableRow,
  disable: { run: runDisable, neverFails: true },
  uninstall: { run: runUninstall, neverFails: true },
  update: { run: runUpdate, neverFails: false },
};

// True for the name of a lifecycle command.
export function isLifecycleCommand(name: string): name is LifecycleCommand {
  return Object.hasOwn(lifecycleCommands, name);
}

// Runs `command`; returns its exit code.
export function runLifecycleCommand(command: LifecycleCommand, explicit: string | undefined, env: NodeJS.ProcessEnv): Promise<number> {
  return runCommandRow(command, lifecycleCommands[command], explicit, env);
}
