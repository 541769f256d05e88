// Windows: scripts under the rch-exec.exe wrapper (a Job Object per run), Secondary Logon for RunAs,
// Windows PowerShell 5.1 for inline scripts (UTF-8 through the bootstrap), the certificate store for
// protected settings, a named pipe for the daemon; paths with Windows rules.
import { win32 } from 'node:path';
import { makeHandlerPathsWith } from '../config/handler-paths.js';
import { windowsProcessLayer } from '../runner/process.windows.js';
import * as windowsRunAs from '../runner/run-as.windows.js';
import { windowsPowerShell } from '../runner/sources/powershell.js';
import { toInstallHash, type Platform } from './platform.js';

// The daemon's named pipe. Pipe names are one global namespace that any user may create names in,
// so a plain `\\.\pipe\<name>` could be created first by an unprivileged process (squatting): the
// daemon (libuv binds with FILE_FLAG_FIRST_PIPE_INSTANCE) could then not start, and the SYSTEM
// `enable` would talk to — and could be impersonated by — that process. Under the
// `ProtectedPrefix\Administrators\` prefix only a process with the Administrators group (SYSTEM
// included) can create a pipe. Whoever connects is bounded by the default DACL node gives the pipe
// (full control: SYSTEM, Administrators, the creator; read-only: Everyone — a read-only client can
// send no request) and by the token in the state folder that every request must carry (ipc.ts).
export function toWindowsDaemonEndpoint(stateDir: string): string {
  return `\\\\.\\pipe\\ProtectedPrefix\\Administrators\\runcommand-handler-${toInstallHash(stateDir)}`;
}

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
  toDaemonEndpoint: toWindowsDaemonEndpoint,
};
