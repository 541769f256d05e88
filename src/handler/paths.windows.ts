// The handler's folders on Windows (protocol.md §1, §3), derived from HandlerEnvironment.json as the
// Windows agent writes it: configFolder `C:\Packages\Plugins\<Publisher.Type>\<version>\RuntimeSettings`,
// statusFolder `…\<version>\Status`, logFolder `C:\WindowsAzure\Logs\Plugins\<Publisher.Type>\<version>`.
// State lives outside the versioned folder, in `C:\Packages\Plugins\<Publisher.Type>\runcommand-handler`,
// so an update keeps it. Certificates are in the LocalMachine\My store: certDir is unused.
import { win32 } from 'node:path';
import type { HandlerEnvironment } from '../config/handler-environment.js';
import type { Options } from '../config/options.js';
import type { HandlerPaths } from './paths.js';

// Derives the handler's paths with Windows path rules (whatever the host, so tests run anywhere).
export function makeHandlerPaths(handlerEnvironmentPath: string, environment: HandlerEnvironment, options: Options): HandlerPaths {
  const { dirname, join, resolve } = win32;
  const configFolder = resolve(environment.configFolder);
  // `<Publisher.Type>\<version>\RuntimeSettings` → `<Publisher.Type>`
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
