// Runs one of the agent's lifecycle commands with its context and log (protocol.md §4).
import { toErrorMessage } from '../../errors.js';
import { loadHandlerContext } from '../context.js';
import { makeCommandLog } from '../logger.js';
import { runDisable } from './disable.js';
import { runEnable } from './enable.js';
import { runInstall } from './install.js';
import { runUninstall } from './uninstall.js';
import { runUpdate } from './update.js';

// Commands whose failure would block the agent (removal, update) always exit 0.
const neverFail = new Set(['disable', 'uninstall']);

// Runs `command`; returns its exit code. Console output stays short: details go to the log.
export async function runLifecycleCommand(command: string, explicit: string | undefined, env: NodeJS.ProcessEnv): Promise<number> {
  const context = await loadHandlerContext(explicit, env);
  const log = makeCommandLog(context.paths.logFolder, command);
  try {
    switch (command) {
      case 'install':
        return await runInstall(context, log);
      case 'enable':
        return await runEnable(context, env, log);
      case 'disable':
        return await runDisable(context, env, log);
      case 'uninstall':
        return await runUninstall(context, env, log);
      default:
        return await runUpdate(context, env, log);
    }
  } catch (error) {
    log.error(`${command} failed`, { error: toErrorMessage(error) });
    process.stderr.write(`${command} failed: ${toErrorMessage(error)}\n`);
    return neverFail.has(command) ? 0 : 1;
  } finally {
    await log.flush();
  }
}
