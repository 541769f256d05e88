// Windows: scripts under the rch-exec.exe wrapper (a Job Object per run), Secondary Logon for RunAs,
// Windows PowerShell 5.1 for inline scripts (UTF-8 through the bootstrap), the certificate store for
// protected settings, a named pipe for the daemon; paths with Windows rules.
import { win32 } from 'node:path';
import { makeHandlerPathsWith } from '../config/handler-paths.js';
import { windowsProcessLayer } from '../runner/process.windows.js';
import * as windowsRunAs from '../runner/run-as.windows.js';
import { windowsPowerShell } from '../runner/sources/powershell.js';
import { toInstallHash, type Platform } from './platform.js';

export const windowsPlatform: Platform = {
  name: 'windows',
  processLayer: windowsProcessLayer,
  runAs: windowsRunAs,
  scripts: {
    catalogue: 'windows',
    inlineShell: 'powershell',
    uriScriptsMustBePowerShell: true,
    powerShellNeedsUtf8Help: true,
    powerShell: windowsPowerShell,
  },
  makeHandlerPaths: makeHandlerPathsWith(win32),
  decryptProtectedSettings: async (...args) => (await import('../config/protected-settings.windows.js')).decryptProtectedSettings(...args),
  describeDecryptionPath: () => Promise.resolve('PowerShell EnvelopedCms (certificate store)'),
  toDaemonEndpoint: (stateDir) => `\\\\.\\pipe\\runcommand-handler-${toInstallHash(stateDir)}`,
};
