// Turns a run command's source into a script on disk, its artifacts next to it, and the argument
// vector and environment that run it (run-command.md §3, §4): bash (or the script's `#!` line)
// with named parameters in the environment, or PowerShell with `-Name value` arguments.
import { open } from 'node:fs/promises';
import type { RunCommand } from '../config/run-command.js';
import type { ScriptTraits } from './platform-contract.js';
import { toParameterInjection } from './parameters.js';
import { toLaunchCommand } from './script-file.js';
import { downloadArtifacts, TakenNames, type DownloadDeps } from './sources/downloads.js';
import { placeScript, type PlacedScript } from './sources/place-script.js';
import { findPowerShell, toPowerShellInvocation } from './sources/powershell.js';
import { writeBootstrap } from './sources/powershell-bootstrap.js';

export interface PreparedScript {
  readonly scriptPath: string;
  readonly program: string;
  readonly args: readonly string[];
  // Added to the script's environment: the named parameters (bash) or PowerShell's own settings.
  readonly env: Readonly<Record<string, string>>;
}

// How sources are fetched and run on this host (run-deps.ts builds it; tests point it at loopback).
export interface ScriptSourceDeps {
  // How scripts are placed and started on this platform.
  readonly scripts: ScriptTraits;
  // Downloads: managed-identity tokens, bounds.
  readonly download?: Omit<DownloadDeps, 'warn' | 'ps1Bom'>;
  // An explicit PowerShell executable (RUNCOMMAND_HANDLER_PWSH).
  readonly powerShell?: string;
  // The environment PowerShell is looked for in (PATH, HOME, SystemRoot).
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly catalogueDir?: string;
}

export interface PrepareScriptOptions {
  // Called with what the operator should know (never a secret).
  readonly warn: (message: string) => void;
  readonly sources: ScriptSourceDeps;
  // Aborted when the run is canceled or times out while its files are still downloading.
  readonly signal?: AbortSignal;
}

// Writes or downloads the script and its artifacts into `dir` and builds its command line.
export async function prepareScript(command: RunCommand, dir: string, options: PrepareScriptOptions): Promise<PreparedScript> {
  const { sources } = options;
  const download: DownloadDeps = { ...sources.download, warn: options.warn, ps1Bom: sources.scripts.powerShellNeedsUtf8Help, ...(options.signal ? { signal: options.signal } : {}) };
  const taken = new TakenNames();
  const script = await placeScript(command, dir, taken, { scripts: sources.scripts, download, ...(sources.catalogueDir ? { catalogueDir: sources.catalogueDir } : {}) });
  await downloadArtifacts(command.artifacts, dir, taken, download);
  return script.shell === 'powershell' ? toPowerShellScript(command, script, dir, sources) : toShellScript(command, script, options.warn);
}

async function toShellScript(command: RunCommand, script: PlacedScript, warn: (message: string) => void): Promise<PreparedScript> {
  const injection = toParameterInjection(command.parameters, command.protectedParameterCount);
  for (const position of injection.exposedProtectedPositions) {
    warn(`unnamed protected parameter at position ${position} is passed as an argument and is visible in the process table; give it a name to pass it as an environment variable`);
  }
  const launch = await toLaunchCommand(script.path, script.head ?? (await readHead(script.path)), injection.args);
  return { scriptPath: script.path, ...launch, env: injection.env };
}

// PowerShell: protected parameters (and, on Windows, UTF-8 output) go through the bootstrap.
async function toPowerShellScript(command: RunCommand, script: PlacedScript, dir: string, sources: ScriptSourceDeps): Promise<PreparedScript> {
  const host = await findPowerShell({ flavour: sources.scripts.powerShell, env: sources.env ?? process.env, ...(sources.powerShell ? { configured: sources.powerShell } : {}) });
  const needsBootstrap = sources.scripts.powerShellNeedsUtf8Help || command.protectedParameterCount > 0;
  const invocation = toPowerShellInvocation({
    host,
    scriptPath: script.path,
    parameters: command.parameters,
    protectedCount: command.protectedParameterCount,
    ...(needsBootstrap ? { bootstrapPath: await writeBootstrap(dir) } : {}),
  });
  return { scriptPath: script.path, ...invocation };
}

// The first bytes of a file, enough to see a `#!` line.
async function readHead(path: string): Promise<string> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(2);
    const { bytesRead } = await handle.read(buffer, 0, 2, 0);
    return buffer.subarray(0, bytesRead).toString('latin1');
  } finally {
    await handle.close();
  }
}
