// Property-based tests of the settings parser (targets.md, reliability): random JSON trees and
// random mutations of valid settings never throw anything but SettingsError, and every valid
// settings object round-trips (parse → serialise → parse gives an equal RunCommand).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RunCommand } from '../../src/config/run-command.js';
import { parseHandlerSettings, parseRunCommand } from '../../src/config/settings.js';
import { SettingsError } from '../../src/errors.js';
import { arbitraryJsonTree, arbitraryValidSettings, mutateText, mutateTree, toSettingsFileText, type WireSettings } from '../helpers/settings-arbitraries.js';

const runs = { numRuns: 300 };

// Runs `action`; a SettingsError is an accepted outcome, anything else fails the property.
function onlySettingsError(action: () => unknown): void {
  try {
    action();
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    expect(error.message.length).toBeGreaterThan(0);
  }
}

function parse(settings: WireSettings, name = 'rc1', seq = 3): RunCommand {
  return parseRunCommand({ name, seq, publicSettings: settings.publicSettings, protectedSettings: settings.protectedSettings }).runCommand;
}

// What must survive a round trip: everything but the unknown keys (serialisation drops them) and
// the order of secrets (a set, collected in field order).
function toComparable(command: RunCommand): unknown {
  // Warnings name fields by their position on the wire, which the canonical form renumbers.
  return { ...command, secrets: [...command.secrets].sort(), unknownKeys: [], warnings: command.warnings.length > 0 };
}

describe('settings parser properties', () => {
  it('parseHandlerSettings throws only SettingsError for any JSON tree, as a file or in its place', () => {
    fc.assert(
      fc.property(arbitraryJsonTree, fc.constantFrom('file', 'public', 'protected', 'entry'), (tree, where) => {
        const document =
          where === 'file' ? tree
          : where === 'entry' ? { runtimeSettings: [tree] }
          : { runtimeSettings: [{ handlerSettings: { [where === 'public' ? 'publicSettings' : 'protectedSettings']: tree } }] };
        onlySettingsError(() => parseHandlerSettings(JSON.stringify(document) ?? ''));
      }),
      runs,
    );
  });

  it('parseRunCommand throws only SettingsError for any JSON trees as public and protected settings', () => {
    fc.assert(
      fc.property(arbitraryJsonTree, arbitraryJsonTree, fc.boolean(), (pub, prot, asText) => {
        const [publicSettings, protectedSettings] = [pub, prot].map((tree) => (asText ? JSON.stringify(tree) : JSON.parse(JSON.stringify(tree) ?? 'null')));
        onlySettingsError(() => parseRunCommand({ name: 'rc1', seq: 1, publicSettings, protectedSettings }));
      }),
      runs,
    );
  });

  it('parseRunCommand throws only SettingsError for random mutations of valid settings', () => {
    fc.assert(
      fc.property(arbitraryValidSettings, fc.array(fc.tuple(fc.nat(), fc.nat(), arbitraryJsonTree), { minLength: 1, maxLength: 4 }), (valid, mutations) => {
        const mutated = mutateTree(valid.wire, mutations);
        onlySettingsError(() => parse(mutated));
      }),
      runs,
    );
  });

  it('parseHandlerSettings throws only SettingsError for random edits of a valid settings file', () => {
    fc.assert(
      fc.property(arbitraryValidSettings, fc.array(fc.tuple(fc.nat(), fc.nat(), fc.string({ unit: 'binary', maxLength: 3 })), { minLength: 1, maxLength: 4 }), (valid, edits) => {
        onlySettingsError(() => parseHandlerSettings(mutateText(toSettingsFileText(valid.wire), edits)));
      }),
      runs,
    );
  });

  // run-command.md §1 (12-01, Compat): a parameter name is accepted exactly when it is non-empty and
  // holds no '=' and no NUL; otherwise −202 naming the field and the rule.
  it('accepts any parameter name without = or NUL, and refuses one with either, naming the field and the rule', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }), fc.boolean(), (name, asProtected) => {
        const entry = [{ name, value: 'v' }];
        const settings: WireSettings = asProtected
          ? { publicSettings: { source: { script: 'ls' } }, protectedSettings: { protectedParameters: entry } }
          : { publicSettings: { source: { script: 'ls' }, parameters: entry } };
        if (name.includes('=') || name.includes('\0')) {
          let caught: unknown;
          try {
            parse(settings);
          } catch (error) {
            caught = error;
          }
          expect(caught).toBeInstanceOf(SettingsError);
          expect(caught).toMatchObject({
            field: asProtected ? 'protectedSettings.protectedParameters[0].name' : 'parameters[0].name',
            rule: "must not contain '=' or NUL characters (it becomes an environment variable name)",
          });
        } else {
          expect(parse(settings).parameters).toEqual([{ name, value: 'v' }]);
        }
      }),
      runs,
    );
  });

  it('round-trips every valid settings object: parse, serialise the same logical settings, parse again', () => {
    fc.assert(
      fc.property(arbitraryValidSettings, (valid) => {
        const first = parse(valid.wire, valid.name, valid.seq);
        const again = parse(toWireSettingsOf(first), first.name, first.seq);
        expect(toComparable(again)).toEqual(toComparable(first));
      }),
      runs,
    );
  });

  it('round-trips through the settings file too (publicSettings as an object or a JSON string, BOM or not)', () => {
    fc.assert(
      fc.property(arbitraryValidSettings, fc.boolean(), fc.boolean(), (valid, publicAsString, bom) => {
        const text = toSettingsFileText(valid.wire, { publicAsString, bom });
        const file = parseHandlerSettings(text);
        const first = parse({ publicSettings: file.publicSettings, protectedSettings: valid.wire.protectedSettings }, valid.name, valid.seq);
        expect(toComparable(first)).toEqual(toComparable(parse(valid.wire, valid.name, valid.seq)));
      }),
      runs,
    );
  });
});

// The canonical wire settings of a RunCommand (the inverse of parseRunCommand).
function toWireSettingsOf(command: RunCommand): WireSettings {
  const pub: Record<string, unknown> = {};
  const prot: Record<string, unknown> = {};
  const { source } = command;
  if (source.kind === 'script') pub['source'] = { script: source.script };
  else if (source.kind === 'commandId') pub['source'] = { commandId: source.commandId, ...(source.script === undefined ? {} : { script: source.script }) };
  else if (source.kind === 'none') pub['source'] = {};
  else {
    pub['source'] = { scriptUri: source.scriptUri };
    Object.assign(prot, defined({ sourceSASToken: source.sasToken, sourceManagedIdentity: source.managedIdentity }));
  }
  const firstProtected = command.parameters.length - command.protectedParameterCount;
  pub['parameters'] = command.parameters.slice(0, firstProtected);
  prot['protectedParameters'] = command.parameters.slice(firstProtected);
  Object.assign(pub, defined({ runAsUser: command.runAsUser, outputBlobUri: command.outputBlob?.uri, errorBlobUri: command.errorBlob?.uri }));
  Object.assign(prot, defined({
    runAsPassword: command.runAsPassword,
    outputBlobSASToken: command.outputBlob?.sasToken, outputBlobManagedIdentity: command.outputBlob?.managedIdentity,
    errorBlobSASToken: command.errorBlob?.sasToken, errorBlobManagedIdentity: command.errorBlob?.managedIdentity,
  }));
  Object.assign(pub, { timeoutInSeconds: command.timeoutInSeconds, asyncExecution: command.asyncExecution, treatFailureAsDeploymentFailure: command.treatFailureAsDeploymentFailure, installAsService: command.installAsService });
  pub['artifacts'] = command.artifacts.map((a) => defined({ id: a.id, uri: a.uri, fileName: a.fileName }));
  prot['artifacts'] = command.artifacts.map((a) => defined({ id: a.id, sasToken: a.sasToken, artifactManagedIdentity: a.managedIdentity }));
  pub['dependsOn'] = [...command.dependsOn];
  return { publicSettings: pub, protectedSettings: prot };
}

function defined(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined));
}
