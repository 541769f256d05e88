// The run's script on disk and the command line that runs it (run-command.md §3, §4).
import { access, chmod, writeFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';
import { errorCodes, HandlerError, toErrorMessage } from '../errors.js';

export interface LaunchCommand {
  readonly program: string;
  readonly args: readonly string[];
}

// Writes an inline script into the run directory, readable and executable by its owner only.
export async function writeInlineScript(runDir: string, script: string): Promise<string> {
  const path = join(runDir, 'script.sh');
  try {
    await writeFile(path, script, { mode: 0o700 });
    await chmod(path, 0o700);
    return path;
  } catch (error) {
    throw new HandlerError(errorCodes.saveScript, `could not save the script: ${toErrorMessage(error)}`, { cause: error });
  }
}

async function isExecutable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

// The shell for scripts without a `#!` line: /bin/bash, or /bin/sh where bash is absent.
export async function findDefaultShell(candidates: readonly string[] = ['/bin/bash', '/bin/sh']): Promise<string> {
  for (const candidate of candidates) {
    if (await isExecutable(candidate)) return candidate;
  }
  throw new HandlerError(errorCodes.startExecution, `no shell found (tried ${candidates.join(', ')})`);
}

// The argument vector that runs `scriptPath`: a `#!` line selects its own interpreter.
export async function toLaunchCommand(scriptPath: string, scriptText: string, args: readonly string[]): Promise<LaunchCommand> {
  if (scriptText.startsWith('#!')) return { program: scriptPath, args };
  return { program: await findDefaultShell(), args: [scriptPath, ...args] };
}
