// Linux: the rch-exec wrapper, setpriv for RunAs, bash for inline scripts, libcrypto (rch-crypto,
// `openssl cms` as the fallback) for protected settings, a Unix socket in the root-only state folder
// for the daemon (never an abstract one: any user could bind its name; ipc.ts).
import { posix } from 'node:path';
import { makeHandlerPathsWith } from '../config/handler-paths.js';
import { linuxProcessLayer } from '../runner/process.linux.js';
import * as linuxRunAs from '../runner/run-as.linux.js';
import { linuxPowerShell } from '../runner/sources/powershell.js';
import type { Platform } from './platform.js';

export const linuxPlatform: Platform = {
  name: 'linux',
  processLayer: linuxProcessLayer,
  runAs: linuxRunAs,
  scripts: {
    catalogue: 'linux',
    inlineShell: 'bash',
    uriScriptsMustBePowerShell: false,
    powerShellNeedsUtf8Help: false,
    powerShell: linuxPowerShell,
  },
  makeHandlerPaths: makeHandlerPathsWith(posix),
  decryptProtectedSettings: async (...args) => (await import('../config/protected-settings.js')).decryptProtectedSettings(...args),
  describeDecryptionPath: async () => (await import('../config/protected-settings.js')).describeDecryptionPath(),
  // The run store's `daemon.sock` (run-store.ts StateFile).
  toDaemonEndpoint: (stateDir) => posix.join(stateDir, 'daemon.sock'),
};
