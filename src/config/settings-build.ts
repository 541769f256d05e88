// Rules that span fields of a run command's settings (run-command.md §1) and the mapping from
// validated wire settings to the parts of a RunCommand. Messages name fields by path only.

import { SettingsError } from '../errors.js';
import type { Artifact, BlobTarget, ManagedIdentity, Parameter, ScriptSource } from './run-command.js';
import {
  settingsLimits,
  type ProtectedSettings,
  type PublicSettings,
  type RawIdentity,
  type RawParameter,
  shellNamePattern,
} from './settings-schema.js';

const protectedPrefix = 'protectedSettings';
// Command ids whose script comes from source.script (run-command.md §3).
const scriptCommandIds = new Set(['runshellscript', 'runpowershellscript']);

// `{ key: value }` when value is defined, else `{}` (exactOptionalPropertyTypes-friendly).
export function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

// '' and undefined both mean "absent".
export function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

// Maps a validated identity to a ManagedIdentity; `{}` is the system-assigned identity.
export function toManagedIdentity(raw: RawIdentity | undefined): ManagedIdentity | undefined {
  if (raw === undefined) return undefined;
  return { ...optional('clientId', nonEmpty(raw.clientId)), ...optional('objectId', nonEmpty(raw.objectId)) };
}

// Picks the one script source; commandId RunShellScript/RunPowerShellScript may carry source.script.
// installAsService without any source is not an error: nothing runs (kind 'none').
export function toSource(pub: PublicSettings, prot: ProtectedSettings): ScriptSource {
  const script = nonEmpty(pub.source?.script);
  const scriptUri = nonEmpty(pub.source?.scriptUri);
  const commandId = nonEmpty(pub.source?.commandId);
  const found = [script, scriptUri, commandId].filter((value) => value !== undefined).length;
  if (found === 0 && pub.installAsService) return { kind: 'none' };
  const carriesScript = commandId !== undefined && scriptUri === undefined && scriptCommandIds.has(commandId.toLowerCase());
  if (found !== 1 && !(found === 2 && carriesScript)) {
    const hint = commandId !== undefined && script !== undefined && scriptUri === undefined
      ? ' (source.script goes with source.commandId only for RunShellScript or RunPowerShellScript)'
      : '';
    const rule = `exactly one of source.script, source.scriptUri, source.commandId is required, found ${found}`;
    throw new SettingsError('source', `${rule}${hint}`);
  }
  if (commandId !== undefined) return { kind: 'commandId', commandId, ...optional('script', script) };
  if (script !== undefined) return { kind: 'script', script };
  return {
    kind: 'scriptUri',
    scriptUri: scriptUri ?? '',
    ...optional('sasToken', nonEmpty(prot.sourceSASToken)),
    ...optional('managedIdentity', toManagedIdentity(prot.sourceManagedIdentity)),
  };
}

interface KeptParameter {
  readonly parameter: Parameter;
  readonly field: string;
}

// Public then protected parameters, empty values dropped (Compat). A repeated name: the last value
// wins, with a warning; a name a shell cannot reference is kept, with a warning (Compat, §1).
export function toParameters(
  pub: PublicSettings,
  prot: ProtectedSettings,
): { parameters: Parameter[]; protectedCount: number; warnings: string[] } {
  const publicKept = keepParameters(pub.parameters ?? [], 'parameters');
  const protectedKept = keepParameters(prot.protectedParameters ?? [], `${protectedPrefix}.protectedParameters`);
  const kept = [...publicKept, ...protectedKept];
  if (kept.length > settingsLimits.parameterCount) {
    const rule = `must have at most ${settingsLimits.parameterCount} entries (public and protected together), found ${kept.length}`;
    throw new SettingsError('parameters', rule);
  }
  const warnings: string[] = [];
  const lastIndex = new Map<string, number>();
  kept.forEach(({ parameter }, index) => {
    if (parameter.name !== undefined) lastIndex.set(parameter.name, index);
  });
  const survivors = kept.filter(({ parameter, field }, index) => {
    const name = parameter.name;
    if (name === undefined) return true;
    const last = lastIndex.get(name) ?? index;
    if (last !== index) {
      warnings.push(`${field}.name '${name}' is repeated by ${kept[last]?.field ?? '?'}.name: the last value wins`);
      return false;
    }
    if (!shellNamePattern.test(name)) {
      warnings.push(`${field}.name '${name}' is not a name a shell can reference as a variable; it is passed anyway, as an environment variable of the script (PowerShell: -${name})`);
    }
    return true;
  });
  const protectedCount = survivors.filter((entry) => protectedKept.includes(entry)).length;
  return { parameters: survivors.map((entry) => entry.parameter), protectedCount, warnings };
}

function keepParameters(raw: ReadonlyArray<RawParameter | null>, path: string): KeptParameter[] {
  const kept: KeptParameter[] = [];
  raw.forEach((entry, index) => {
    if (entry === null || entry.value === undefined || entry.value === '') return;
    const parameter: Parameter = { ...optional('name', nonEmpty(entry.name)), value: entry.value };
    kept.push({ parameter, field: `${path}[${index}]` });
  });
  return kept;
}

// Blob target from its URI and the protected SAS token / identity; no URI, no target.
export function toBlobTarget(
  uri: string | undefined,
  sasToken: string | undefined,
  identity: RawIdentity | undefined,
): BlobTarget | undefined {
  const target = nonEmpty(uri);
  if (target === undefined) return undefined;
  return { uri: target, ...optional('sasToken', nonEmpty(sasToken)), ...optional('managedIdentity', toManagedIdentity(identity)) };
}

// Public artifacts joined by id to their protected SAS token / identity.
export function toArtifacts(pub: PublicSettings, prot: ProtectedSettings): Artifact[] {
  const byId = new Map<string, { index: number; artifact: Artifact }>();
  (pub.artifacts ?? []).forEach((raw, index) => {
    const first = byId.get(raw.id);
    if (first !== undefined) {
      throw new SettingsError(`artifacts[${index}].id`, `duplicate artifact id (also used by artifacts[${first.index}].id)`);
    }
    const artifact: Artifact = { id: raw.id, uri: raw.uri, ...optional('fileName', nonEmpty(raw.fileName)) };
    byId.set(raw.id, { index, artifact });
  });
  const joined = new Set<string>();
  (prot.artifacts ?? []).forEach((raw, index) => {
    const field = `${protectedPrefix}.artifacts[${index}].id`;
    const entry = byId.get(raw.id);
    if (entry === undefined) throw new SettingsError(field, 'has no public artifact with the same id');
    if (joined.has(raw.id)) throw new SettingsError(field, 'duplicate artifact id');
    joined.add(raw.id);
    entry.artifact = {
      ...entry.artifact,
      ...optional('sasToken', nonEmpty(raw.sasToken)),
      ...optional('managedIdentity', toManagedIdentity(raw.artifactManagedIdentity)),
    };
  });
  return [...byId.values()].map((entry) => entry.artifact);
}

// dependsOn without self-references or duplicates (compared ignoring case, like ARM names).
export function toDependsOn(pub: PublicSettings, name: string): string[] {
  const seen = new Map<string, number>();
  (pub.dependsOn ?? []).forEach((dependency, index) => {
    const lower = dependency.toLowerCase();
    if (lower === name.toLowerCase()) throw new SettingsError(`dependsOn[${index}]`, 'must not name the run command itself');
    const first = seen.get(lower);
    if (first !== undefined) throw new SettingsError(`dependsOn[${index}]`, `duplicate (also dependsOn[${first}])`);
    seen.set(lower, index);
  });
  return [...(pub.dependsOn ?? [])];
}
