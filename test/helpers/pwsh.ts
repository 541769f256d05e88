// PowerShell for tests (issue 7): pwsh from PATH or ~/.dotnet/tools (scripts/install-pwsh.sh).
// PowerShell tests run whenever pwsh is there, and fail — not skip — on a machine with dotnet but
// without pwsh, so CI cannot pass without them.
import { accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findOnPath(name: string, path: string): string | undefined {
  return path.split(':').filter(Boolean).map((dir) => join(dir, name)).find(isExecutable);
}

// `$HOME/.dotnet/tools` first, then the test process's PATH.
export const pwshSearchPath = [join(homedir(), '.dotnet', 'tools'), process.env['PATH'] ?? ''].join(':');
// The pwsh executable, when installed.
export const pwshPath = findOnPath('pwsh', pwshSearchPath);
// True when PowerShell tests must run: pwsh is installed, or dotnet is (then pwsh must be too).
export const pwshTestsRun = pwshPath !== undefined || findOnPath('dotnet', pwshSearchPath) !== undefined;

// The pwsh path for a test; throws (failing the test) when dotnet is installed without pwsh.
export function requirePwsh(): string {
  if (pwshPath === undefined) throw new Error('dotnet is installed but pwsh is not: run `bash scripts/install-pwsh.sh`');
  return pwshPath;
}
