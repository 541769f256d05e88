// Runs the script as `runAsUser` (run-command.md §4): the platform's mechanism, chosen in one place.
import type { RunCommand } from '../config/run-command.js';
import { errorCodes, HandlerError } from '../errors.js';
import type { ScriptLaunch } from './process.js';

// Rewrites a launch so the script runs as the run command's user (unchanged without runAsUser).
export async function applyRunAs(launch: ScriptLaunch, command: RunCommand): Promise<ScriptLaunch> {
  if (command.runAsUser === undefined) return launch;
  throw new HandlerError(errorCodes.general, 'runAsUser is not supported yet by this handler version', { blame: 'user' });
}
