// Settings file → validated, decrypted, frozen RunCommand (protocol.md §5, §6). Every failure is
// a typed error whose message names the field and the rule and never holds a protected value.
import type { RunCommand } from '../../config/run-command.js';
import { parseRunCommand } from '../../config/settings.js';
import { parseSettingsFileWithRetry } from '../../config/settings-file.js';
import type { Platform } from '../../platform/platform.js';

export interface IntakeOptions {
  readonly certDir: string;
  readonly settleMs: number;
  readonly decrypt: Platform['decryptProtectedSettings'];
}

// Reads, parses and decrypts one settings file into a RunCommand.
export async function loadRunCommand(path: string, name: string, seq: number, options: IntakeOptions): Promise<RunCommand> {
  const { settings: handlerSettings } = await parseSettingsFileWithRetry(path, { settleMs: options.settleMs });
  const protectedSettings =
    handlerSettings.protectedSettings === undefined
      ? undefined
      : await options.decrypt(handlerSettings.protectedSettings, handlerSettings.thumbprint, options.certDir);
  const { runCommand } = parseRunCommand({
    name,
    seq,
    publicSettings: handlerSettings.publicSettings,
    ...(protectedSettings === undefined ? {} : { protectedSettings }),
  });
  return runCommand;
}
