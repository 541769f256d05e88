// Settings file → validated, decrypted, frozen RunCommand (protocol.md §5, §6). Every failure is
// a typed error whose message names the field and the rule and never holds a protected value.
import type { RunCommand } from '../../config/run-command.js';
import { parseRunCommand } from '../../config/settings.js';
import { parseSettingsFileWithRetry } from '../../config/settings-file.js';
import type { Platform } from '../../platform/platform.js';
import { markStep } from '../../util/dispatch-profile.js';

export interface IntakeOptions {
  readonly certDir: string;
  readonly settleMs: number;
  readonly decrypt: Platform['decryptProtectedSettings'];
}

// Reads, parses and decrypts one settings file into a RunCommand.
export async function loadRunCommand(path: string, name: string, seq: number, options: IntakeOptions): Promise<RunCommand> {
  const { settings: handlerSettings } = await parseSettingsFileWithRetry(path, { settleMs: options.settleMs });
  markStep(`${name}.${seq}`, 'read');
  const protectedSettings =
    handlerSettings.protectedSettings === undefined
      ? undefined
      : await options.decrypt(handlerSettings.protectedSettings, handlerSettings.thumbprint, options.certDir);
  markStep(`${name}.${seq}`, 'decrypted');
  const { runCommand } = parseRunCommand({
    name,
    seq,
    publicSettings: handlerSettings.publicSettings,
    ...(protectedSettings === undefined ? {} : { protectedSettings }),
  });
  markStep(`${name}.${seq}`, 'parsed');
  return runCommand;
}

// Best effort, for settings that were refused: whether their public settings ask for
// treatFailureAsDeploymentFailure (key matched ignoring case, only the JSON value true), so that
// the refusal's top-level status is `error` as the caller asked (run-command.md §6). False when
// the file cannot even be read.
export async function readDeploymentFailureFlag(path: string): Promise<boolean> {
  try {
    const { settings } = await parseSettingsFileWithRetry(path, { settleMs: 0 });
    const { publicSettings } = settings;
    if (publicSettings === null || typeof publicSettings !== 'object' || Array.isArray(publicSettings)) return false;
    return Object.entries(publicSettings).some(([key, value]) => key.toLowerCase() === 'treatfailureasdeploymentfailure' && value === true);
  } catch {
    return false;
  }
}
