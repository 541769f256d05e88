// Every folder the handler uses, derived once from HandlerEnvironment.json and the options.
// State lives outside the versioned install dir (run-command.md §8), under the agent's lib dir.
import { chmod, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
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

// Derives the handler's paths from its environment file and options.
export function makeHandlerPaths(handlerEnvironmentPath: string, environment: HandlerEnvironment, options: Options): HandlerPaths {
  const configFolder = resolve(environment.configFolder);
  const libDir = dirname(dirname(configFolder));
  const stateDir = resolve(options.stateDir ?? join(libDir, 'runcommand-handler'));
  return {
    handlerEnvironmentPath: resolve(handlerEnvironmentPath),
    configFolder,
    statusFolder: resolve(environment.statusFolder),
    logFolder: resolve(environment.logFolder),
    ...(environment.eventsFolder ? { eventsFolder: resolve(environment.eventsFolder) } : {}),
    libDir,
    certDir: resolve(options.certDir ?? libDir),
    stateDir,
    runsDir: join(stateDir, 'runs'),
    recordsDir: join(stateDir, 'records'),
  };
}

// Creates the handler's state folders, root-only (0700, also when they existed with another
// mode: run directories hold scripts and output, and RunAs users must not reach them); idempotent.
export async function ensureStateDirs(paths: HandlerPaths): Promise<void> {
  for (const dir of [paths.stateDir, paths.runsDir, paths.recordsDir]) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
  }
  await mkdir(paths.logFolder, { recursive: true, mode: 0o755 });
}

// A run's own directory.
export function toRunDir(paths: HandlerPaths, runId: string): string {
  return join(paths.runsDir, runId);
}
