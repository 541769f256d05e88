// Zod schemas of a run command's public and protected settings (run-command.md §1), applied
// after normalizeKeys has fixed key spelling and dropped nulls. Types and per-field rules live
// here; rules that span fields (one source, unique names, the artifact join) live in settings.ts.
// zod/mini, as the handler's other schemas (util/schema.ts): the classic API gives every schema
// object its own copy of each method, which the daemon would hold for as long as it runs (issue
// 11.4, idle memory). Checks run in the order they are listed, as the classic chain ran them.

import * as z from '../util/schema.js';
import { SettingsError } from '../errors.js';
import { isValidName } from './run-command.js';
import type { KeyShape } from './settings-keys.js';

// Size bounds of one run command's settings: a clear error instead of a crash or a stall.
export const settingsLimits = Object.freeze({
  scriptBytes: 2 * 1024 * 1024,
  parameterCount: 256,
  parameterValueBytes: 32 * 1024,
  parameterNameChars: 128,
  dependsOnCount: 64,
  artifactCount: 64,
  urlChars: 8 * 1024,
  jsonDepth: 32,
  // Any other string: SAS tokens, passwords, user names, identity ids, command ids.
  stringChars: 8 * 1024,
  fileNameChars: 255,
});

// Names a shell can reference as a variable ($NAME); other names are accepted (Compat) and passed
// as environment variables all the same, with a warning (run-command.md §1).
export const shellNamePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;

// Which keys exist where, in their canonical spelling (null = leaf).
const identityShape = { clientId: null, objectId: null } as const;
const parameterShape = [{ name: null, value: null }] as const;
export const publicKeyShape: KeyShape = {
  source: { script: null, scriptUri: null, commandId: null },
  parameters: parameterShape,
  runAsUser: null,
  outputBlobUri: null,
  errorBlobUri: null,
  timeoutInSeconds: null,
  asyncExecution: null,
  installAsService: null,
  treatFailureAsDeploymentFailure: null,
  artifacts: [{ id: null, uri: null, fileName: null }],
  dependsOn: null,
};
export const protectedKeyShape: KeyShape = {
  protectedParameters: parameterShape,
  runAsPassword: null,
  sourceSASToken: null,
  outputBlobSASToken: null,
  errorBlobSASToken: null,
  sourceManagedIdentity: identityShape,
  outputBlobManagedIdentity: identityShape,
  errorBlobManagedIdentity: identityShape,
  artifacts: [{ id: null, sasToken: null, artifactManagedIdentity: identityShape }],
};

const byteLength = (value: string): number => Buffer.byteLength(value, 'utf8');

// "is required" when missing, else "must be <what>".
function typeError(what: string): { error: (issue: { input?: unknown }) => string } {
  return { error: (issue) => (issue.input === undefined ? 'is required' : `must be ${what}`) };
}

function text(maxChars: number = settingsLimits.stringChars) {
  return z.string(typeError('a string')).check(z.maxLength(maxChars, { error: `must be at most ${maxChars} characters` }));
}

// True for an absolute http(s) URL; '' is accepted here and means "absent".
export function isHttpUrl(value: string): boolean {
  if (!URL.canParse(value)) return false;
  const { protocol } = new URL(value);
  return protocol === 'http:' || protocol === 'https:';
}

// True when a URL carries credentials before its host (`user:pass@`, `user@`, even an empty `@`).
// Looked for in the raw text too: the URL parser drops an empty userinfo without a trace.
export function hasUserInfo(value: string): boolean {
  if (!URL.canParse(value)) return false;
  const parsed = new URL(value);
  if (parsed.username !== '' || parsed.password !== '') return true;
  const authority = /^[A-Za-z][A-Za-z0-9+.-]*:[\\/]*([^/\\?#]*)/.exec(value.trim())?.[1] ?? '';
  return authority.includes('@');
}

// The message names the rule, never the URL (it would carry the credentials into logs and status).
const urlChecks = [
  z.refine<string>((value) => value === '' || isHttpUrl(value), { error: 'must be an http or https URL', abort: true }),
  z.refine<string>((value) => !hasUserInfo(value), {
    error: 'must not carry a user name or password (user:password@host); use a SAS token or a managed identity',
  }),
];
const url = text(settingsLimits.urlChars).check(...urlChecks);

const flag = z._default(z.boolean(typeError('true or false')), false);

const identity = z
  .object({ clientId: z.optional(text()), objectId: z.optional(text()) }, typeError('an object'))
  .check(z.refine((id) => !(id.clientId && id.objectId), { error: 'must have clientId or objectId, not both' }));

// Any name without '=' or NUL (Compat, run-command.md §1): an environment variable name cannot hold them.
const parameterName = text(settingsLimits.parameterNameChars).check(
  z.refine((name) => !name.includes('=') && !name.includes('\0'), {
    error: "must not contain '=' or NUL characters (it becomes an environment variable name)",
  }),
);
// Values become environment variables, which cannot hold NUL.
const parameterValue = z.string(typeError('a string')).check(
  z.refine((value) => byteLength(value) <= settingsLimits.parameterValueBytes, {
    error: `must be at most ${settingsLimits.parameterValueBytes} bytes (UTF-8)`,
  }),
  z.refine((value) => !value.includes('\0'), { error: 'must not contain NUL characters' }),
);
const parameter = z.object({ name: z.optional(parameterName), value: z.optional(parameterValue) }, typeError('an object'));
const parameters = z
  .array(z.nullable(parameter), typeError('an array'))
  .check(z.maxLength(settingsLimits.parameterCount, { error: `must have at most ${settingsLimits.parameterCount} entries` }));

const script = z.string(typeError('a string')).check(
  z.refine((value) => byteLength(value) <= settingsLimits.scriptBytes, {
    error: `must be at most ${settingsLimits.scriptBytes} bytes (UTF-8)`,
  }),
);

// Negative = no limit (Compat, Linux; settings.ts logs it).
const timeout = z._default(
  z.number(typeError('a number')).check(
    z.refine((value) => Number.isSafeInteger(value) && value < 2 ** 31, {
      error: 'must be an integer below 2147483648',
    }),
  ),
  0,
);

// JSON ids may be numbers or strings; both become strings.
const artifactId = z.pipe(
  z.transform((value: unknown) => (typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value)),
  z
    .string(typeError('a string or an integer'))
    .check(z.minLength(1, { error: 'must not be empty' }), z.maxLength(128, { error: 'must be at most 128 characters' })),
);

// A name for a file in the run's directory: never a path.
export function isPlainFileName(name: string): boolean {
  return name === '' || (!/[/\\\x00-\x1f\x7f]/.test(name) && name !== '.' && name !== '..');
}

const fileName = text(settingsLimits.fileNameChars).check(
  z.refine(isPlainFileName, {
    error: "must be a plain file name (no '/', '\\' or control characters, not '.' or '..')",
  }),
);

const publicArtifact = z.object(
  { id: artifactId, uri: text(settingsLimits.urlChars).check(...urlChecks, z.minLength(1, { error: 'is required' })), fileName: z.optional(fileName) },
  typeError('an object'),
);
const publicArtifacts = z
  .array(publicArtifact, typeError('an array'))
  .check(z.maxLength(settingsLimits.artifactCount, { error: `must have at most ${settingsLimits.artifactCount} entries` }));

const protectedArtifact = z.object(
  { id: artifactId, sasToken: z.optional(text()), artifactManagedIdentity: z.optional(identity) },
  typeError('an object'),
);
const protectedArtifacts = z
  .array(protectedArtifact, typeError('an array'))
  .check(z.maxLength(settingsLimits.artifactCount, { error: `must have at most ${settingsLimits.artifactCount} entries` }));

const dependsOn = z
  .array(
    z.string(typeError('a string')).check(
      z.refine(isValidName, {
        error: 'must be a run command name: [A-Za-z0-9][A-Za-z0-9._-]*, at most 128 characters, no ".."',
      }),
    ),
    typeError('an array'),
  )
  .check(z.maxLength(settingsLimits.dependsOnCount, { error: `must have at most ${settingsLimits.dependsOnCount} entries` }));

export const publicSettingsSchema = z.object({
  source: z.optional(
    z.object({ script: z.optional(script), scriptUri: z.optional(url), commandId: z.optional(text(128)) }, typeError('an object')),
  ),
  parameters: z.optional(parameters),
  runAsUser: z.optional(
    text(256).check(z.refine((user) => !/[\x00-\x1f\x7f]/.test(user), { error: 'must not contain control characters' })),
  ),
  outputBlobUri: z.optional(url),
  errorBlobUri: z.optional(url),
  timeoutInSeconds: timeout,
  asyncExecution: flag,
  treatFailureAsDeploymentFailure: flag,
  installAsService: flag,
  artifacts: z.optional(publicArtifacts),
  dependsOn: z.optional(dependsOn),
});

export const protectedSettingsSchema = z.object({
  protectedParameters: z.optional(parameters),
  runAsPassword: z.optional(text()),
  sourceSASToken: z.optional(text()),
  outputBlobSASToken: z.optional(text()),
  errorBlobSASToken: z.optional(text()),
  sourceManagedIdentity: z.optional(identity),
  outputBlobManagedIdentity: z.optional(identity),
  errorBlobManagedIdentity: z.optional(identity),
  artifacts: z.optional(protectedArtifacts),
});

export type PublicSettings = z.output<typeof publicSettingsSchema>;
export type ProtectedSettings = z.output<typeof protectedSettingsSchema>;
export type RawParameter = NonNullable<NonNullable<PublicSettings['parameters']>[number]>;
export type RawIdentity = z.output<typeof identity>;

// Validates `value` against `schema`; the first issue becomes a SettingsError naming the dotted
// path under `prefix`. Issues never carry the input, so no value can leak into the message.
export function parseWithSchema<T extends z.ZodMiniType>(schema: T, value: unknown, prefix: string): z.output<T> {
  const result = schema.safeParse(value, { error: () => 'is invalid' });
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  throw new SettingsError(toFieldPath(prefix, issue?.path ?? []), issue?.message ?? 'is invalid');
}

// ['parameters', 2, 'name'] → `parameters[2].name`.
export function toFieldPath(prefix: string, path: readonly PropertyKey[]): string {
  let field = prefix;
  for (const segment of path) {
    if (typeof segment === 'number') field += `[${segment}]`;
    else field = field === '' ? String(segment) : `${field}.${String(segment)}`;
  }
  return field;
}
