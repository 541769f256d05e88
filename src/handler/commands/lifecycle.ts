// Runs one of the agent's lifecycle commands with its context and log (protocol.md §4).
import { toErrorMessage } from '../../errors.js';
import { loadHandlerContext, type HandlerContext } from '../infra/context.js';
import { makeCommandLog, type Log } from '../infra/logger.js';
import { runDisable } from './disable.js';
import { runEnable } from './enable.js';
import { runInstall } from './install.js';
import { runUninstall } from './uninstall.js';
import { runUpdate } from './update.js';

export type LifecycleCommand = 'install' | 'enable' | 'disable' | 'uninstall' | 'update';

interface CommandRow {
  run(context: HandlerContext, env: NodeJS.ProcessEnv, log: Log): Promise<number>;
  // A failure that would block the agent (removal, update) still exits 0.
  readonly neverFails: boolean;
}

// The agent's commands (protocol.md §4), one row each, like Microsoft's command map.
export const lifecycleCommands: Readonly<Record<LifecycleCommand, CommandRow>> = {
  install: { run: (context, _env, log) => runInstall(context, log), neverFails: false },
  enable: { run: runEnable, neverFails: false },
  disable: { run: runDisable, neverFails: true },
  uninstall: { run: runUninstall, neverFails: true },
  update: { run: runUpdate, neverFails: false },
};

// True for the name of a lifecycle command.
export function isLifecycleCommand(name: string): name is LifecycleCommand {
  return Object.hasOwn(lifecycleCommands, name);
}

// Runs `command`; returns its exit code. Console output stays short: details go to the log.
export async function runLifecycleCommand(command: LifecycleCommand, explicit: string | undefined, env: NodeJS.ProcessEnv): Promise<number> {
  const context = await loadHandlerContext(explicit, env);
  const log = makeCommandLog(context.paths.logFolder, command);
  const row = lifecycleCommands[command];
  try {
    return await row.run(context, env, log);
  } catch (error) {
    log.error(`${command} failed`, { error: toErrorMessage(error) });
    process.stderr.write(`${command} failed: ${toErrorMessage(error)}\n`);
    return row.neverFails ? 0 : 1;
  } finally {
    await log.flush();
  }
}
