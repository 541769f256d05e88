// Settings file → validated, decrypted, frozen RunCommand (protocol.md §5, §6). Every failure is
// a typed error whose message names the field and the rule and never holds a protected value.
import { stat } from 'node:fs/promises';
import type { RunCommand } from '../config/run-command.js';
import { parseRunCommand, type HandlerSettings } from '../config/settings.js';
import { parseSettingsFileWithRetry } from '../config/settings-file.js';
import { SettingsError } from '../errors.js';
import { platform } from '../platform.js';
import { sleep } from '../util/time.js';

export interface IntakeOptions {
  readonly certDir: string;
  readonly settleMs: number;
}

interface ReadSettings {
  readonly handlerSettings: HandlerSettings;
  readonly protectedSettings: unknown;
  readonly mtimeMs: number;
}

async function readAndDecrypt(path: string, options: IntakeOptions): Promise<ReadSettings> {
  const { settings: handlerSettings, mtimeMs } = await parseSettingsFileWithRetry(path, { settleMs: options.settleMs });
  const protectedSettings =
    handlerSettings.protectedSettings === undefined
      ? undefined
      : await platform.decryptProtectedSettings(handlerSettings.protectedSettings, handlerSettings.thumbprint, options.certDir);
  return { handlerSettings, protectedSettings, mtimeMs };
}

// Reads and decrypts; protected settings of a file still being written (the agent writes in place)
// that fail to decrypt are read once more before the failure counts (protocol.md §5).
async function readSettled(path: string, options: IntakeOptions): Promise<ReadSettings> {
  try {
    return await readAndDecrypt(path, options);
  } catch (error) {
    const young = Date.now() - (await stat(path).then((s) => s.mtimeMs, () => 0)) < options.settleMs;
    if (!(error instanceof SettingsError) || error.field !== 'protectedSettings' || !young) throw error;
    await sleep(Math.min(250, options.settleMs));
    return readAndDecrypt(path, options);
  }
}

// Reads, parses and decrypts one settings file into a RunCommand.
export async function loadRunCommand(path: string, name: string, seq: number, options: IntakeOptions): Promise<RunCommand> {
  const { handlerSettings, protectedSettings } = await readSettled(path, options);
  const { runCommand } = parseRunCommand({
    name,
    seq,
    publicSettings: handlerSettings.publicSettings,
    ...(protectedSettings === undefined ? {} : { protectedSettings }),
  });
  return runCommand;
}
