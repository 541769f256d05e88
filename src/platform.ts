// The platform's implementations, chosen here and nowhere else (conventions: platform files named
// for the platform, chosen in one place). Linux is the product; the Windows files are the same
// contracts with Windows mechanisms (taskkill, the certificate store, Secondary Logon, PowerShell).
import type { decryptProtectedSettings as DecryptProtectedSettings } from './config/protected-settings.js';
import { makeHandlerPaths as makeLinuxPaths } from './handler/paths.js';
import { makeHandlerPaths as makeWindowsPaths } from './handler/paths.windows.js';
import * as linuxProcess from './runner/process.linux.js';
import * as windowsProcess from './runner/process.windows.js';
import * as linuxRunAs from './runner/run-as.linux.js';
import * as windowsRunAs from './runner/run-as.windows.js';
import type { RunCommand } from './config/run-command.js';
import type { ScriptLaunch } from './runner/process.linux.js';

export type PlatformName = 'linux' | 'windows';

// RunAs as the runner uses it (method syntax: each platform has its own context type).
export interface RunAsModule {
  prepareRunAs(command: RunCommand, options: { runId: string; workRoot: string; warn: (message: string) => void }): Promise<{ readonly workDir: string } | undefined>;
  applyRunAs(launch: ScriptLaunch, runAs: { readonly workDir: string } | undefined, parameters: Readonly<Record<string, string>>): Promise<ScriptLaunch>;
  removeWorkDir(workRoot: string, runId: string): Promise<void>;
}

// Starts, follows and tree-kills scripts; identifies the boot.
export type ProcessLayer = Pick<
  typeof linuxProcess,
  'launchScript' | 'attachScript' | 'requestTermination' | 'killRunNow' | 'readExitRecord' | 'readProcessIdentity' | 'readBootId'
>;

export interface Platform {
  readonly name: PlatformName;
  readonly processLayer: ProcessLayer;
  readonly makeHandlerPaths: typeof makeLinuxPaths;
  // Loaded on first use: `enable` never needs it.
  readonly decryptProtectedSettings: typeof DecryptProtectedSettings;
  // How protected settings are decrypted, for the daemon's start-up log.
  readonly describeDecryptionPath: () => Promise<string>;
  readonly runAs: RunAsModule;
}

// Linux: the rch-exec wrapper, openssl, setpriv.
export const linuxPlatform: Platform = {
  name: 'linux',
  processLayer: linuxProcess,
  makeHandlerPaths: makeLinuxPaths,
  decryptProtectedSettings: async (...args) => (await import('./config/protected-settings.js')).decryptProtectedSettings(...args),
  describeDecryptionPath: async () => (await import('./config/protected-settings.js')).describeDecryptionPath(),
  runAs: linuxRunAs,
};

// Windows: taskkill, the certificate store, Secondary Logon.
export const windowsPlatform: Platform = {
  name: 'windows',
  processLayer: windowsProcess,
  makeHandlerPaths: makeWindowsPaths,
  decryptProtectedSettings: async (...args) => (await import('./config/protected-settings.windows.js')).decryptProtectedSettings(...args),
  describeDecryptionPath: () => Promise.resolve('PowerShell EnvelopedCms (certificate store)'),
  runAs: windowsRunAs,
};

// The platform this handler runs on.
export const platform: Platform = process.platform === 'win32' ? windowsPlatform : linuxPlatform;
