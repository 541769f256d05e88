// Turns a run command's source into a script on disk and the argument vector that runs it
// (run-command.md §3, §4). Positional parameters are already in `args`.
import type { RunCommand } from '../config/run-command.js';
import { errorCodes, HandlerError } from '../errors.js';
import { toLaunchCommand, writeInlineScript } from './script-file.js';

export interface PreparedScript {
  readonly scriptPath: string;
  readonly program: string;
  readonly args: readonly string[];
}

export interface PrepareScriptOptions {
  // Called with what the operator should know (never a secret).
  readonly warn: (message: string) => void;
}

// Writes (or, later, downloads) the script into the run directory and builds its command line.
export async function prepareScript(
  command: RunCommand,
  runDir: string,
  positional: readonly string[],
  _options: PrepareScriptOptions,
): Promise<PreparedScript> {
  const { source } = command;
  if (source.kind !== 'script' || command.artifacts.length > 0) {
    const field = command.artifacts.length > 0 && source.kind === 'script' ? 'artifacts' : `source.${source.kind}`;
    throw new HandlerError(errorCodes.general, `${field} is not supported yet by this handler version`, { blame: 'user' });
  }
  const scriptPath = await writeInlineScript(runDir, source.script);
  const launch = await toLaunchCommand(scriptPath, source.script, positional);
  return { scriptPath, ...launch };
}
