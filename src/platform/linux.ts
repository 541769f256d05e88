// Linux: the rch-exec wrapper, setpriv for RunAs, bash for inline scripts, libcrypto (rch-crypto,
// `openssl cms` as the fallback) for protected settings, a Unix socket in the root-only state folder
// for the daemon (never an abstract one: any user could bind its name; ipc.ts).
import { posix } from 'node:path';
import { makeHandlerPathsWith } from '../config/handler-paths.js';
import { linuxProcessLayer } from '../runner/process.linux.js';
import * as linuxRunAs from '../runner/run-as.linux.js';
import { linuxPowerShell } from '../runner/sources/powershell.js';
import type { Platform } from './platform.js';

// Loaded on first use (runs without protected settings never need it), then kept: an import() per
// run costs the module loader's resolution every time (≈ 0.1 ms on 2 busy CPUs; issue 16).
let protectedSettings: Promise<typeof import('../config/protected-settings.js')> | undefined;
const loadProtectedSettings = (): Promise<typeof import('../config/protected-settings.js')> => (protectedSettings ??= import('../config/protected-settings.js'));

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
  decryptProtectedSettings: async (...args) => (await loadProtectedSettings()).decryptProtectedSettings(...args),
  describeDecryptionPath: async () => (await loadProtectedSettings()).describeDecryptionPath(),
  // The run store's `daemon.sock` (run-store.ts StateFile).
  toDaemonEndpoint: (stateDir) => posix.join(stateDir, 'daemon.sock'),
};
