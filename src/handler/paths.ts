// Every folder the handler uses, derived once from HandlerEnvironment.json and the options.
// State lives outside the versioned install dir (run-command.md §8), under the agent's lib dir.
import { chmod, mkdir } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { HandlerEnvironment } from '../config/handler-environment.js';
import type { Options } from '../config/options.js';

export interface HandlerPaths {
  readonly handlerEnvironmentPath: string;
  readonly configFolder: string;
  readonly statusFolder: string;
  readonly logFolder: string;
  readonly eventsFolder?: string;
  // The agent's lib dir (`configFolder/../..`), where certificates live.
  readonly libDir: string;
  readonly certDir: string;
  readonly stateDir: string;
  readonly runsDir: string;
  readonly recordsDir: string;
}

type PathApi = Pick<typeof posix, 'dirname' | 'join' | 'resolve'>;

// Derives the handler's paths with one platform's path rules (posix here, win32 for Windows).
export function makeHandlerPathsWith(path: PathApi) {
  return (handlerEnvironmentPath: string, environment: HandlerEnvironment, options: Options): HandlerPaths => {
    const configFolder = path.resolve(environment.configFolder);
    // Linux `<lib>/<Publisher.Type>-<version>/config`, Windows `<Publisher.Type>\<version>\RuntimeSettings`.
    const libDir = path.dirname(path.dirname(configFolder));
    const stateDir = path.resolve(options.stateDir ?? path.join(libDir, 'runcommand-handler'));
    return {
      handlerEnvironmentPath: path.resolve(handlerEnvironmentPath),
      configFolder,
      statusFolder: path.resolve(environment.statusFolder),
      logFolder: path.resolve(environment.logFolder),
      ...(environment.eventsFolder ? { eventsFolder: path.resolve(environment.eventsFolder) } : {}),
      libDir,
      certDir: path.resolve(options.certDir ?? libDir),
      stateDir,
      runsDir: path.join(stateDir, 'runs'),
      recordsDir: path.join(stateDir, 'records'),
    };
  };
}

// Derives the handler's paths from its environment file and options (Linux).
export const makeHandlerPaths = makeHandlerPathsWith(posix);

// Creates the handler's state folders, root-only (0700, also when they existed with another
// mode: run directories hold scripts and output, and RunAs users must not reach them); idempotent.
export async function ensureStateDirs(paths: HandlerPaths): Promise<void> {
  for (const dir of [paths.stateDir, paths.runsDir, paths.recordsDir]) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
  }
  await mkdir(paths.logFolder, { recursive: true, mode: 0o755 });
}

let runCounter = 0;

// A new run's id: name, sequence number and a time-based suffix, unique within this daemon.
export function makeRunId(name: string, seq: number, nowMs: number): string {
  runCounter = (runCounter + 1) % 1296;
  return `${name}.${seq}.${nowMs.toString(36)}${runCounter.toString(36).padStart(2, '0')}`;
}

// A run's own directory.
export function toRunDir(paths: HandlerPaths, runId: string): string {
  return join(paths.runsDir, runId);
}
