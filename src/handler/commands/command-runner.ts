// How every lifecycle command runs (protocol.md §4): its context, its log, and what a failure
// means for the agent. Kept apart from the command table so that `enable` (enable-main.ts) can be
// loaded with nothing of the other commands.
import { toErrorMessage } from '../../errors.js';
import { loadHandlerContext, type HandlerContext } from '../infra/context.js';
import { makeCommandLog, type Log } from '../infra/logger.js';

export type LifecycleCommand = 'install' | 'enable' | 'disable' | 'uninstall' | 'update';

export interface CommandRow {
  run(context: HandlerContext, env: NodeJS.ProcessEnv, log: Log): Promise<number>;
  // A failure that would block the agent (removal, update) still exits 0.
  readonly neverFails: boolean;
}

// Runs `command` by its row; returns its exit code. Console output stays short: details go to the log.
export async function runCommandRow(command: LifecycleCommand, row: CommandRow, explicit: string | undefined, env: NodeJS.ProcessEnv): Promise<number> {
  const context = await loadHandlerContext(explicit, env);
  const log = makeCommandLog(context.paths.logFolder, command);
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
