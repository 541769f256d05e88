// Everything a command needs to know about where it runs: the HandlerEnvironment.json it found,
// the options, the platform, the derived paths, the run store and the daemon's client. Found
// once, the same way for every command.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findHandlerEnvironment, readHandlerEnvironment } from '../../config/handler-environment.js';
import type { HandlerPaths } from '../../config/handler-paths.js';
import { parseOptions, type Options } from '../../config/options.js';
import { packageRoot } from '../../util/package-root.js';
import type { Platform } from '../../platform/platform.js';
import { selectPlatform } from '../../platform/select.js';
import { RunStore } from '../state/run-store.js';
import { DaemonClient } from './daemon-client.js';
import type { IpcAddress } from './ipc.js';

export interface HandlerContext {
  readonly paths: HandlerPaths;
  readonly options: Options;
  readonly version: string;
  readonly platform: Platform;
  readonly store: RunStore;
  // Where the daemon of this install listens.
  readonly daemonAddress: IpcAddress;
  readonly daemon: DaemonClient;
}

// Builds a context from its parts (tests build one on a temp layout).
export function makeHandlerContext(parts: { paths: HandlerPaths; options: Options; version: string; platform: Platform }): HandlerContext {
  const store = new RunStore(parts.paths.stateDir);
  const daemonAddress = { endpoint: parts.platform.toDaemonEndpoint(parts.paths.stateDir), tokenPath: store.toStateFile('ipc-token'), lockPath: store.toStateFile('daemon.lock') };
  return { ...parts, store, daemonAddress, daemon: new DaemonClient(daemonAddress, parts.options.killGraceMs) };
}

// The package root, where the shim, the manifest and package.json live.
export { packageRoot };

// The CLI entry (tsc output or the bundle), for starting the daemon.
export const cliPath = join(packageRoot, 'dist', 'cli.js');

// The handler's version from its package.json.
export function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

// Where HandlerEnvironment.json may be: an explicit path, the environment, next to the
// executable (bin/) or one directory up — the base dir (protocol.md §3).
export function toHandlerEnvironmentCandidates(explicit: string | undefined, env: NodeJS.ProcessEnv): string[] {
  const fromEnv = env['RUNCOMMAND_HANDLER_ENVIRONMENT'];
  if (explicit) return [explicit];
  if (fromEnv) return [fromEnv];
  return [join(packageRoot, 'bin'), packageRoot];
}

// Finds and reads the handler's environment; throws with a clear message when there is none.
export async function loadHandlerContext(explicit: string | undefined, env: NodeJS.ProcessEnv, platform: Platform = selectPlatform()): Promise<HandlerContext> {
  const candidates = toHandlerEnvironmentCandidates(explicit, env);
  const path = await findHandlerEnvironment(candidates);
  if (path === undefined) throw new Error(`HandlerEnvironment.json not found (looked in ${candidates.join(', ')})`);
  const environment = await readHandlerEnvironment(path);
  const options = parseOptions(env);
  return makeHandlerContext({ paths: platform.makeHandlerPaths(path, environment, options), options, version: readVersion(), platform });
}
