// RunAs on Windows (run-command.md §4): the script is started with the user's credentials through
// the Secondary Logon service (Process.Start with UserName/Password = CreateProcessWithLogonW) by a
// small PowerShell launcher. The password reaches the launcher in its environment, which it clears
// before starting the script: it is never on a command line, in a file or in a message. The
// launcher grants the user its working directory, copies the script's output to the run's files
// and exits with its exit code. It runs under rch-exec.exe like any script; whether the process that
// Secondary Logon creates joins the wrapper's Job Object is not verified (no seclogon under Wine).
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunCommand } from '../config/run-command.js';
import { errorCodes, HandlerError } from '../errors.js';
import type { ScriptLaunch } from './process-contract.js';
import { toWindowsPowerShellPath } from '../util/windows-powershell.js';
import { powerShellFlags } from './sources/powershell.js';

// A run that runs as runAsUser.
export interface RunAsContext {
  readonly userName: string;
  readonly password: string;
  readonly workDir: string;
}

export interface PrepareRunAsOptions {
  readonly runId: string;
  readonly workRoot: string;
  readonly warn: (message: string) => void;
}

// The launcher's name in the run directory.
export const launcherFileName = 'rch-runas.ps1';
// The launcher's environment variable that carries the password.
export const passwordVariable = 'RCH_RUNAS_PASSWORD';

// The launcher's text (Windows PowerShell 5.1).
export const launcherScript = `# Written by runcommand-handler: starts a run's script as another user (Secondary Logon).
param([string] $UserName, [string] $WorkDir, [string] $Program, [string] $Arguments)
$ErrorActionPreference = 'Stop'
$secure = New-Object System.Security.SecureString
foreach ($character in $env:RCH_RUNAS_PASSWORD.ToCharArray()) { $secure.AppendChar($character) }
$secure.MakeReadOnly()
Remove-Item -Path Env:RCH_RUNAS_PASSWORD
$domain = $null
$user = $UserName
if ($UserName.Contains('\\')) { $domain, $user = $UserName.Split([char[]] '\\', 2) }
& icacls.exe $WorkDir /grant "\${UserName}:(OI)(CI)M" /Q | Out-Null
if ($LASTEXITCODE -ne 0) { throw "icacls could not grant $UserName access to $WorkDir" }
$info = New-Object System.Diagnostics.ProcessStartInfo
$info.FileName = $Program
$info.Arguments = $Arguments
$info.WorkingDirectory = $WorkDir
$info.UseShellExecute = $false
$info.UserName = $user
if ($domain) { $info.Domain = $domain }
$info.Password = $secure
$info.LoadUserProfile = $true
$info.RedirectStandardOutput = $true
$info.RedirectStandardError = $true
$info.EnvironmentVariables['USERNAME'] = $user
$process = [System.Diagnostics.Process]::Start($info)
$copies = @(
  $process.StandardOutput.BaseStream.CopyToAsync([Console]::OpenStandardOutput()),
  $process.StandardError.BaseStream.CopyToAsync([Console]::OpenStandardError())
)
$process.WaitForExit()
[System.Threading.Tasks.Task]::WaitAll($copies)
exit $process.ExitCode
`;

// One argument quoted for a Windows command line (the rules CommandLineToArgvW and the C runtime
// use to split it again): quotes escaped, backslashes doubled only before a quote.
export function quoteWindowsArgument(argument: string): string {
  if (argument !== '' && !/[\s"]/.test(argument)) return argument;
  let quoted = '"';
  let backslashes = 0;
  for (const character of argument) {
    if (character === '\\') {
      backslashes += 1;
      continue;
    }
    quoted += character === '"' ? `${'\\'.repeat(backslashes * 2 + 1)}"` : `${'\\'.repeat(backslashes)}${character}`;
    backslashes = 0;
  }
  return `${quoted}${'\\'.repeat(backslashes * 2)}"`;
}

// The command line of `args` for Process.Start's Arguments (Windows PowerShell has no ArgumentList).
export function toWindowsCommandLine(args: readonly string[]): string {
  return args.map(quoteWindowsArgument).join(' ');
}

// Checks that the run can run as runAsUser (a password is needed on Windows) and makes its
// working directory; undefined without runAsUser.
export async function prepareRunAs(command: RunCommand, options: PrepareRunAsOptions): Promise<RunAsContext | undefined> {
  if (command.runAsUser === undefined) return undefined;
  if (command.runAsPassword === undefined) {
    throw new HandlerError(errorCodes.runAsLookup, `runAsPassword is required to run as '${command.runAsUser}' on Windows`, { blame: 'user' });
  }
  const workDir = join(options.workRoot, options.runId);
  await mkdir(workDir, { recursive: true });
  return { userName: command.runAsUser, password: command.runAsPassword, workDir };
}

// The PowerShell that runs the launcher (Windows PowerShell, always present).
export function toLauncherHost(env: Readonly<Record<string, string>>): string {
  return toWindowsPowerShellPath(env);
}

// Rewrites a launch so the launcher starts it as the user: argv names the user, directory and
// command line; the password is in the launcher's environment only.
export async function applyRunAs(launch: ScriptLaunch, runAs: RunAsContext | undefined, parameters: Readonly<Record<string, string>>): Promise<ScriptLaunch> {
  if (runAs === undefined) return launch;
  const launcherPath = join(launch.runDir, launcherFileName);
  await writeFile(launcherPath, `\uFEFF${launcherScript}`, { mode: 0o600 });
  return {
    ...launch,
    program: toLauncherHost(launch.env),
    args: [...powerShellFlags, '-File', launcherPath, '-UserName', runAs.userName, '-WorkDir', runAs.workDir, '-Program', launch.program, '-Arguments', toWindowsCommandLine(launch.args)],
    env: { ...launch.env, ...parameters, [passwordVariable]: runAs.password },
    cwd: runAs.workDir,
  };
}

// Removes a RunAs run's working directory (after the run).
export async function removeWorkDir(workRoot: string, runId: string): Promise<void> {
  await rm(join(workRoot, runId), { recursive: true, force: true });
}
