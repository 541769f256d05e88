// The per-run plug-ins the daemon attaches to a run (run-command.md §6: append blobs).
import type { RunCommand } from '../config/run-command.js';
import { errorCodes, HandlerError } from '../errors.js';
import type { RunExtension } from '../runner/run.js';

// Builds the extensions a run command needs; throws for settings this version cannot honour.
export function makeRunExtensions(command: RunCommand): RunExtension[] {
  const fields = [command.outputBlob ? 'outputBlobUri' : undefined, command.errorBlob ? 'errorBlobUri' : undefined].filter(Boolean);
  if (fields.length > 0) throw new HandlerError(errorCodes.general, `${fields.join(', ')} ${fields.length > 1 ? 'are' : 'is'} not supported yet by this handler version`, { blame: 'user' });
  return [];
}
