// The run's script on disk and the command line that runs it (run-command.md §3, §4).
import { access, chmod, writeFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';
import { errorCodes, HandlerError, toErrorMessage } from '../errors.js';

export interface LaunchCommand {
  readonly program: string;
  readonly args: readonly string[];
}

// Writes script text as `name` in `dir`, readable and executable by its owner only (also when the
// file existed with another mode); with `bom`, a UTF-8 BOM first (Windows PowerShell 5.1 reads a
// BOM-less script as ANSI). Returns its path; −203 when it cannot be saved.
export async function writeScriptFile(dir: string, name: string, text: string, bom = false): Promise<string> {
  const path = join(dir, name);
  const data = bom ? `\uFEFF${text}` : text;
  try {
    // A new file gets its mode as it is created (the daemon's umask takes nothing from 0700); one
    // left by an earlier launch attempt is rewritten and given the mode again.
    const created = await writeFile(path, data, { mode: 0o700, flag: 'wx' }).then(
      () => true,
      (error: unknown) => {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw error;
      },
    );
    if (!created) {
      await writeFile(path, data, { mode: 0o700 });
      await chmod(path, 0o700);
    }
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

const defaultShells = ['/bin/bash', '/bin/sh'];
// The default shell once found: the system's shells do not come and go between runs (one that went
// makes the script's exec fail, which its run reports).
let foundDefaultShell: string | undefined;

// The shell for scripts without a `#!` line: /bin/bash, or /bin/sh where bash is absent.
export async function findDefaultShell(candidates: readonly string[] = defaultShells): Promise<string> {
  if (candidates === defaultShells && foundDefaultShell !== undefined) return foundDefaultShell;
  for (const candidate of candidates) {
    if (!(await isExecutable(candidate))) continue;
    if (candidates === defaultShells) foundDefaultShell = candidate;
    return candidate;
  }
  throw new HandlerError(errorCodes.startExecution, `no shell found (tried ${candidates.join(', ')})`);
}

// The argument vector that runs `scriptPath`: a `#!` line selects its own interpreter.
export async function toLaunchCommand(scriptPath: string, scriptText: string, args: readonly string[]): Promise<LaunchCommand> {
  if (scriptText.startsWith('#!')) return { program: scriptPath, args };
  return { program: await findDefaultShell(), args: [scriptPath, ...args] };
}
