// Parsing of settings files (protocol.md §5) and of a run command's decrypted settings into the
// frozen RunCommand every other module works on (run-command.md §1). Throws only SettingsError,
// whose message names fields by path and never quotes a value.

import { SettingsError } from '../errors.js';
import { isRunKey, type RunCommand } from './run-command.js';
import { toArtifacts, toBlobTarget, toDependsOn, toParameters, toSource, nonEmpty, optional } from './settings-build.js';
import { normalizeKeys, validateDepth, type KeyShape } from './settings-keys.js';
import {
  parseWithSchema,
  protectedKeyShape,
  protectedSettingsSchema,
  publicKeyShape,
  publicSettingsSchema,
  settingsLimits,
  type ProtectedSettings,
  type PublicSettings,
} from './settings-schema.js';
import { collectSecrets } from './settings-secrets.js';

export { settingsLimits } from './settings-schema.js';

// What one settings file holds, before decryption and validation.
export interface HandlerSettings {
  readonly publicSettings: unknown;
  readonly protectedSettings?: string;
  readonly thumbprint?: string;
}

const handlerPath = 'runtimeSettings[0].handlerSettings';
const fileShape: KeyShape = {
  runtimeSettings: [{ handlerSettings: { publicSettings: null, protectedSettings: null, protectedSettingsCertThumbprint: null } }],
};
// The file wraps publicSettings in 4 levels (object, array, object, object).
const fileDepth = settingsLimits.jsonDepth + 4;

// Parses the text of a `<name>.<seq>.settings` file: exactly one runtimeSettings entry, keys
// matched ignoring case, nulls as absent, publicSettings as an object or a JSON string of one.
export function parseHandlerSettings(text: string): HandlerSettings {
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  if (body.trim() === '') throw new SettingsError('', 'the settings file holds no settings (it is empty)');
  const document = parseJson(body, '', 'the settings file is not valid JSON');
  validateDepth(document, fileDepth, '');
  if (document === null || typeof document !== 'object' || Array.isArray(document)) {
    throw new SettingsError('', 'the settings file must hold a JSON object');
  }
  const normalized = normalizeKeys(document, fileShape, '', []) as { runtimeSettings?: unknown };
  const entries = normalized.runtimeSettings;
  if (!Array.isArray(entries)) throw new SettingsError('runtimeSettings', 'must be an array with exactly one entry');
  if (entries.length !== 1) throw new SettingsError('runtimeSettings', `must have exactly one entry, found ${entries.length}`);
  return toHandlerSettings(entries[0]);
}

function toHandlerSettings(entry: unknown): HandlerSettings {
  const handler = toRecord(toRecord(entry, 'runtimeSettings[0]')['handlerSettings'], handlerPath);
  const publicSettings = toPublicSettings(handler['publicSettings']);
  const protectedSettings = toOptionalString(handler['protectedSettings'], `${handlerPath}.protectedSettings`);
  const thumbprint = toOptionalString(handler['protectedSettingsCertThumbprint'], `${handlerPath}.protectedSettingsCertThumbprint`);
  return { publicSettings, ...optional('protectedSettings', protectedSettings), ...optional('thumbprint', thumbprint) };
}

function toPublicSettings(value: unknown): unknown {
  const field = `${handlerPath}.publicSettings`;
  const parsed = typeof value === 'string' ? parseJson(value, field, 'is a string that is not JSON') : value;
  validateDepth(parsed, settingsLimits.jsonDepth, field);
  if (parsed === undefined || parsed === null) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new SettingsError(field, 'must be an object or a JSON string of one');
  return parsed;
}

function toOptionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new SettingsError(field, 'must be a string');
  return nonEmpty(value.trim());
}

function toRecord(value: unknown, field: string): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new SettingsError(field, 'must be an object');
  return value as Record<string, unknown>;
}

// JSON.parse without quoting the input: V8's message shows a slice of it, so keep the position only.
function parseJson(text: string, field: string, rule: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const position = /position (\d+)/.exec(error instanceof Error ? error.message : '')?.[1];
    throw new SettingsError(field, position === undefined ? rule : `${rule} (error at position ${position})`);
  }
}

// Validates a run command's public and decrypted protected settings into a deep-frozen RunCommand.
export function parseRunCommand(input: {
  name: string;
  seq: number;
  publicSettings: unknown;
  protectedSettings?: unknown;
}): { runCommand: RunCommand } {
  if (!isRunKey(input.name)) throw new SettingsError('name', 'must be a valid run command name');
  if (!Number.isSafeInteger(input.seq) || input.seq < 0) throw new SettingsError('seq', 'must be a non-negative integer');
  const unknownKeys: string[] = [];
  const pub: PublicSettings = parseSection(input.publicSettings, '', publicKeyShape, unknownKeys, (value) =>
    parseWithSchema(publicSettingsSchema, value, ''),
  );
  const prot: ProtectedSettings = parseSection(input.protectedSettings, 'protectedSettings', protectedKeyShape, unknownKeys, (value) =>
    parseWithSchema(protectedSettingsSchema, value, 'protectedSettings'),
  );
  const { parameters, protectedCount, warnings } = toParameters(pub, prot);
  if (pub.timeoutInSeconds < 0) warnings.push(`timeoutInSeconds ${pub.timeoutInSeconds} is negative: no time limit (as Microsoft's Linux handler)`);
  const source = toSource(pub, prot);
  if (pub.installAsService && source.kind !== 'none') warnings.push('installAsService is ignored: the immediate run-command service is not provided by this handler; the script runs as usual');
  const command: Omit<RunCommand, 'secrets'> = {
    name: input.name,
    seq: input.seq,
    source,
    parameters,
    protectedParameterCount: protectedCount,
    ...optional('runAsUser', nonEmpty(pub.runAsUser)),
    ...optional('runAsPassword', nonEmpty(prot.runAsPassword)),
    ...optional('outputBlob', toBlobTarget(pub.outputBlobUri, prot.outputBlobSASToken, prot.outputBlobManagedIdentity)),
    ...optional('errorBlob', toBlobTarget(pub.errorBlobUri, prot.errorBlobSASToken, prot.errorBlobManagedIdentity)),
    timeoutInSeconds: Math.max(0, pub.timeoutInSeconds),
    asyncExecution: pub.asyncExecution,
    treatFailureAsDeploymentFailure: pub.treatFailureAsDeploymentFailure,
    installAsService: pub.installAsService,
    artifacts: toArtifacts(pub, prot),
    dependsOn: toDependsOn(pub, input.name),
    unknownKeys,
    warnings,
  };
  return { runCommand: deepFreeze({ ...command, secrets: collectSecrets(command, prot) }) };
}

// Depth first (nothing recursive runs on an unbounded value), then key spelling, then the schema.
function parseSection<T>(value: unknown, label: string, shape: KeyShape, unknownKeys: string[], parse: (value: unknown) => T): T {
  const field = label === '' ? 'publicSettings' : label;
  validateDepth(value, settingsLimits.jsonDepth, field);
  const parsed = typeof value === 'string' ? parseJson(value, field, 'must be a JSON object') : value;
  validateDepth(parsed, settingsLimits.jsonDepth, field);
  const object = toRecord(parsed, field);
  return parse(normalizeKeys(object, shape, label, unknownKeys));
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
