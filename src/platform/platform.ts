// The platform the handler runs on, as one value chosen once at start (select.ts) and passed in:
// the runner's part (process layer, RunAs, script traits) plus what the handler's edges need —
// how paths are derived from HandlerEnvironment.json, how protected settings are decrypted and
// where the daemon's control endpoint is. Code asks it for a named trait, never which platform it is.
import { createHash } from 'node:crypto';
import type { HandlerEnvironment } from '../config/handler-environment.js';
import type { HandlerPaths } from '../config/handler-paths.js';
import type { Options } from '../config/options.js';
import type { RunnerPlatform } from '../runner/platform-contract.js';

export interface Platform extends RunnerPlatform {
  makeHandlerPaths(handlerEnvironmentPath: string, environment: HandlerEnvironment, options: Options): HandlerPaths;
  // Decrypts base64 protected settings with the certificate `thumbprint` and parses the JSON
  // (loaded on first use: `enable` never needs it).
  decryptProtectedSettings(base64: string, thumbprint: string | undefined, certDir: string): Promise<unknown>;
  // How protected settings are decrypted here, for the daemon's start-up log.
  describeDecryptionPath(): Promise<string>;
  // The daemon's control endpoint for the install whose state is in `stateDir`.
  toDaemonEndpoint(stateDir: string): string;
}

// A short stable name for an install, from its state folder.
export function toInstallHash(stateDir: string): string {
  return createHash('sha256').update(stateDir).digest('hex').slice(0, 24);
}
