// The handler's folders on Windows (protocol.md §1, §3), derived from HandlerEnvironment.json as the
// Windows agent writes it: configFolder `C:\Packages\Plugins\<Publisher.Type>\<version>\RuntimeSettings`,
// statusFolder `…\<version>\Status`, logFolder `C:\WindowsAzure\Logs\Plugins\<Publisher.Type>\<version>`.
// State lives outside the versioned folder, in `C:\Packages\Plugins\<Publisher.Type>\runcommand-handler`,
// so an update keeps it. Certificates are in the LocalMachine\My store: certDir is unused.
import { win32 } from 'node:path';
import { makeHandlerPathsWith } from './paths.js';

// Derives the handler's paths with Windows path rules (whatever the host, so tests run anywhere).
export const makeHandlerPaths = makeHandlerPathsWith(win32);
