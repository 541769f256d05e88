// What the runner asks of the platform it runs on: its process layer, its RunAs and the traits of
// its scripts. The Platform value (src/platform/) is chosen once at start and reaches the runner
// through RunDeps; runner code asks it for a named trait, never which platform it is on.
import type { RunCommand } from '../config/run-command.js';
import type { ProcessLayer, ScriptLaunch } from './process-contract.js';

// The platforms the built-in command catalogue names (catalogue.json `platforms`).
export type PlatformName = 'linux' | 'windows';

// A run that runs as runAsUser: at least where its script goes.
export interface RunAsPreparation {
  readonly workDir: string;
}

export interface RunAsOptions {
  readonly runId: string;
  readonly workRoot: string;
  // Called with what the operator should know (never a secret).
  readonly warn: (message: string) => void;
}

// Running the script as runAsUser (method syntax: each platform has its own preparation type).
export interface RunAsLayer {
  // Checks the user (−102 when it cannot be used) and makes its working directory; undefined without runAsUser.
  prepareRunAs(command: RunCommand, options: RunAsOptions): Promise<RunAsPreparation | undefined>;
  // Rewrites a launch so the script runs as the user (unchanged without one).
  applyRunAs(launch: ScriptLaunch, runAs: RunAsPreparation | undefined, parameters: Readonly<Record<string, string>>): Promise<ScriptLaunch>;
  // Removes a RunAs run's working directory once the run is over.
  removeWorkDir(workRoot: string, runId: string): Promise<void>;
}

// Which PowerShell runs PowerShell scripts here.
export interface PowerShellFlavour {
  // How messages name it.
  readonly label: string;
  // Where it is looked for, in order, given the daemon's PATH, HOME, SystemRoot and ProgramFiles.
  candidates(env: Readonly<Record<string, string | undefined>>): string[];
}

// How scripts are placed and started here (run-command.md §3, §4).
export interface ScriptTraits {
  // Which built-in commands exist here.
  readonly catalogue: PlatformName;
  // The shell of an inline script (source.script).
  readonly inlineShell: 'bash' | 'powershell';
  // Only PowerShell (.ps1) scripts may come from scriptUri.
  readonly uriScriptsMustBePowerShell: boolean;
  // PowerShell scripts are written with a UTF-8 BOM (Windows PowerShell 5.1 reads others as ANSI)
  // and always run through the bootstrap (which makes their output UTF-8).
  readonly powerShellNeedsUtf8Help: boolean;
  readonly powerShell: PowerShellFlavour;
}

export interface RunnerPlatform {
  readonly name: PlatformName;
  readonly processLayer: ProcessLayer;
  readonly runAs: RunAsLayer;
  readonly scripts: ScriptTraits;
}
