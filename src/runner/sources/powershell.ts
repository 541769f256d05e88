// PowerShell scripts (run-command.md §4): which PowerShell runs them, and the argument vector
// `-NoProfile -NonInteractive -ExecutionPolicy Bypass -File <script>` then `-Name value` for named
// and plain values for unnamed parameters — never a command string.
import { access, constants } from 'node:fs/promises';
import type { Parameter } from '../../config/run-command.js';
import { errorCodes, HandlerError } from '../../errors.js';
import { toWindowsPowerShellPath } from '../../util/windows-powershell.js';
import type { PowerShellFlavour } from '../platform-contract.js';

export interface PowerShellHostOptions {
  readonly flavour: PowerShellFlavour;
  // An explicit executable (RUNCOMMAND_HANDLER_PWSH): the only one tried.
  readonly configured?: string;
  // PATH, HOME, SystemRoot, ProgramFiles of the daemon.
  readonly env: Readonly<Record<string, string | undefined>>;
}

export interface PowerShellInvocation {
  readonly program: string;
  readonly args: readonly string[];
  // Added to the script's environment.
  readonly env: Readonly<Record<string, string>>;
}

// What every PowerShell run starts with (run-command.md §4).
export const powerShellFlags = ['-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass'] as const;
// Carries protected parameters to the bootstrap (powershell-bootstrap.ts), which removes it.
export const protectedVariable = 'RCH_PS_PROTECTED';
// Plain-text errors (no ANSI colours in the captured stderr), no telemetry, no update check.
const quietEnvironment = { NO_COLOR: '1', POWERSHELL_TELEMETRY_OPTOUT: '1', POWERSHELL_UPDATECHECK: 'Off' } as const;

function toPathDirectories(env: PowerShellHostOptions['env'], separator: string): string[] {
  return (env['PATH'] ?? env['Path'] ?? '').split(separator).filter((dir) => dir !== '');
}

// Windows: Windows PowerShell 5.1 (as Microsoft's handler runs scripts), then pwsh.
export const windowsPowerShell: PowerShellFlavour = {
  label: 'PowerShell',
  candidates: (env) => {
    const programFiles = env['ProgramFiles'] ?? 'C:\\Program Files';
    return [
      toWindowsPowerShellPath(env),
      ...toPathDirectories(env, ';').map((dir) => `${dir.replace(/\\$/, '')}\\pwsh.exe`),
      `${programFiles}\\PowerShell\\7\\pwsh.exe`,
    ];
  },
};

// Linux: PowerShell 7 wherever its installers put it.
export const linuxPowerShell: PowerShellFlavour = {
  label: 'PowerShell 7 (pwsh)',
  candidates: (env) => {
    const home = env['HOME'];
    return [
      ...toPathDirectories(env, ':').map((dir) => `${dir.replace(/\/$/, '')}/pwsh`),
      '/opt/microsoft/powershell/7/pwsh',
      '/usr/bin/pwsh',
      '/snap/bin/pwsh',
      // `dotnet tool install --global PowerShell` (scripts/install-pwsh.sh).
      ...(home ? [`${home}/.dotnet/tools/pwsh`] : []),
    ];
  },
};

// Where PowerShell is looked for, in order: the configured one only, else the flavour's places.
export function toPowerShellCandidates(options: PowerShellHostOptions): string[] {
  return options.configured !== undefined ? [options.configured] : options.flavour.candidates(options.env);
}

async function isExecutableFile(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

// The PowerShell executable for this platform; a clear error (−204) when there is none.
export async function findPowerShell(options: PowerShellHostOptions, isExecutable = isExecutableFile): Promise<string> {
  const candidates = [...new Set(toPowerShellCandidates(options))];
  for (const candidate of candidates) {
    if (await isExecutable(candidate)) return candidate;
  }
  const what = options.flavour.label;
  const hint = options.configured === undefined ? 'install it or set RUNCOMMAND_HANDLER_PWSH' : 'RUNCOMMAND_HANDLER_PWSH names no executable';
  throw new HandlerError(errorCodes.startExecution, `${what} is needed to run this PowerShell script but was not found (looked for ${candidates.join(', ')}): ${hint}`, {
    blame: 'user',
  });
}

// Each parameter as PowerShell binds it: `-Name`, `value` or a positional `value`.
export function toPowerShellArguments(parameters: readonly Parameter[]): string[] {
  return parameters.flatMap((parameter) => (parameter.name === undefined ? [parameter.value] : [`-${parameter.name}`, parameter.value]));
}

// The protected parameters for the bootstrap: `base64(name):base64(value)` (name empty when
// positional), `;`-joined — names too are encoded, since any name without '=' or NUL is accepted.
export function toProtectedVariable(parameters: readonly Parameter[]): string {
  const encode = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
  return parameters.map((parameter) => `${encode(parameter.name ?? '')}:${encode(parameter.value)}`).join(';');
}

export interface InvocationInput {
  readonly host: string;
  readonly scriptPath: string;
  // Public first, then the last `protectedCount` protected ones.
  readonly parameters: readonly Parameter[];
  readonly protectedCount: number;
  // With a bootstrap, protected parameters travel in the environment, not on the command line.
  readonly bootstrapPath?: string;
}

// The argument vector (and environment additions) that runs a .ps1 script with its parameters.
export function toPowerShellInvocation(input: InvocationInput): PowerShellInvocation {
  const split = input.parameters.length - input.protectedCount;
  const { bootstrapPath } = input;
  if (bootstrapPath === undefined) {
    return { program: input.host, args: [...powerShellFlags, '-File', input.scriptPath, ...toPowerShellArguments(input.parameters)], env: quietEnvironment };
  }
  const secret = input.parameters.slice(split);
  return {
    program: input.host,
    args: [...powerShellFlags, '-File', bootstrapPath, input.scriptPath, ...toPowerShellArguments(input.parameters.slice(0, split))],
    env: secret.length === 0 ? quietEnvironment : { ...quietEnvironment, [protectedVariable]: toProtectedVariable(secret) },
  };
}
