// Every folder the handler uses, derived once from HandlerEnvironment.json and the options with
// one platform's path rules (the Platform value passes posix or win32). State lives outside the
// versioned install dir (run-command.md §8), under the agent's lib dir; the run store owns it.
import type { posix } from 'node:path';
import type { HandlerEnvironment } from './handler-environment.js';
import type { Options } from './options.js';

export interface HandlerPaths {
  readonly handlerEnvironmentPath: string;
  readonly configFolder: string;
  readonly statusFolder: string;
  readonly logFolder: string;
  readonly eventsFolder?: string;
  // The agent's lib dir (`configFolder/../..`), where certificates live.
  readonly libDir: string;
  readonly certDir: string;
  // The handler's own state (the run store's folder).
  readonly stateDir: string;
}

type PathApi = Pick<typeof posix, 'dirname' | 'join' | 'resolve'>;

// Derives the handler's paths with one platform's path rules (posix on Linux, win32 on Windows).
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
    };
  };
}
