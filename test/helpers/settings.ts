// Shared helpers of the settings tests: a run command parsed from plain objects, and the
// SettingsError an action throws.

import { expect } from 'vitest';
import { SettingsError } from '../../src/errors.js';
import type { RunCommand } from '../../src/config/run-command.js';
import { parseRunCommand } from '../../src/config/settings.js';

// A value that must never appear in any message or log.
export const canary = 'CANARY-s3cr3t';

// Parses public/protected settings as run command `name` (default rc1), sequence number 3.
export function parseSettings(publicSettings: unknown, protectedSettings?: unknown, name = 'rc1'): RunCommand {
  return parseRunCommand({ name, seq: 3, publicSettings, protectedSettings }).runCommand;
}

// The SettingsError `action` throws (fails the test if it throws nothing or something else).
export function settingsErrorOf(action: () => unknown): SettingsError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(SettingsError);
    return error as SettingsError;
  }
  throw new Error('expected a SettingsError');
}

// { a: { a: … 1 } } nested `depth` levels.
export function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i += 1) value = { a: value };
  return value;
}
