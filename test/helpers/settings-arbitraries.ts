// fast-check arbitraries for the settings parser's property tests: random JSON trees (keys the
// parser knows in any case, prototype-like keys, deep nests), valid settings, and mutations.
import fc from 'fast-check';
import { isHttpUrl } from '../../src/config/settings-schema.js';

export interface WireSettings {
  readonly publicSettings: unknown;
  readonly protectedSettings?: unknown;
}

export interface ValidSettings {
  readonly name: string;
  readonly seq: number;
  readonly wire: WireSettings;
}

const knownKeys = [
  'runtimeSettings', 'handlerSettings', 'publicSettings', 'protectedSettings', 'protectedSettingsCertThumbprint', 'source', 'script',
  'scriptUri', 'commandId', 'parameters', 'name', 'value', 'runAsUser', 'runAsPassword', 'outputBlobUri', 'errorBlobUri',
  'timeoutInSeconds', 'asyncExecution', 'treatFailureAsDeploymentFailure', 'artifacts', 'id', 'uri', 'fileName', 'dependsOn',
  'protectedParameters', 'sourceSASToken', 'outputBlobSASToken', 'errorBlobSASToken', 'sourceManagedIdentity',
  'outputBlobManagedIdentity', 'errorBlobManagedIdentity', 'clientId', 'objectId', 'sasToken', 'artifactManagedIdentity',
];
const trickyKeys = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', ''];

const key = fc.oneof(
  fc.constantFrom(...knownKeys).chain((k) => fc.constantFrom(k, k.toUpperCase(), k.toLowerCase())),
  fc.constantFrom(...trickyKeys),
  fc.string({ unit: 'binary', maxLength: 8 }),
);
const leaf = fc.oneof(
  fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom(-1, 0, 2 ** 31, 2 ** 53, 'https://a.example/s.sh?sig=x', 'file:///etc/passwd', 'RunShellScript', '../../etc/passwd', '{"source":{}}'),
);

function nest(depth: number, asArray: boolean): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i += 1) value = asArray ? [value] : { source: value };
  return value;
}

// Any JSON value, biased towards the shapes and keys of settings.
export const arbitraryJsonTree: fc.Arbitrary<unknown> = fc.letrec<{ tree: unknown; array: unknown[]; object: Record<string, unknown> }>((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    tie('array'),
    tie('object'),
    fc.tuple(fc.integer({ min: 1, max: 80 }), fc.boolean()).map(([depth, asArray]) => nest(depth, asArray)),
  ),
  array: fc.array(tie('tree'), { maxLength: 5 }),
  object: fc.dictionary(key, tie('tree'), { maxKeys: 6 }),
})).tree;

const text = fc.string({ unit: 'binary', minLength: 1, maxLength: 24 });
const printable = fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 24 }).filter((value) => !/[\x00-\x1f\x7f]/.test(value));
const runName = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,15}$/);
const httpUrl = fc.webUrl({ withQueryParameters: true, withFragments: true }).filter((url) => url.length <= 8192 && isHttpUrl(url));
const identity = fc.oneof(fc.constant({}), fc.record({ clientId: printable }), fc.record({ objectId: printable }));
const maybe = <T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(arbitrary, { nil: undefined });

const sources = fc.oneof(
  fc.string({ unit: 'binary', minLength: 1, maxLength: 60 }).map((script) => ({ pub: { script }, prot: {} })),
  fc.record({ uri: httpUrl, sas: maybe(text), mi: maybe(identity) }).map(({ uri, sas, mi }) => ({
    pub: { scriptUri: uri },
    prot: defined({ sourceSASToken: sas, sourceManagedIdentity: mi }),
  })),
  fc.record({ commandId: fc.constantFrom('RunShellScript', 'runpowershellscript', 'ifconfig', 'IPConfig'), script: maybe(text) }).map(({ commandId, script }) => ({
    pub: /^run(shell|powershell)script$/i.test(commandId) ? defined({ commandId, script }) : { commandId },
    prot: {},
  })),
);

const parameters = fc.uniqueArray(
  fc.record({ name: maybe(fc.oneof(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,11}$/), fc.string({ minLength: 1, maxLength: 12 }).filter((n) => !n.includes('=') && !n.includes('\0')))), value: fc.oneof(text.filter((v) => !v.includes('\0')), fc.constant('')) }),
  { maxLength: 6, selector: (parameter) => parameter.name ?? Symbol('unnamed') },
).map((list) => list.map((parameter) => defined(parameter)));

const blob = maybe(fc.record({ uri: httpUrl, sas: maybe(text), mi: maybe(identity) }));

const artifacts = fc.uniqueArray(
  fc.record({
    id: fc.oneof(runName, fc.nat({ max: 1000 })),
    uri: httpUrl,
    fileName: maybe(fc.stringMatching(/^[A-Za-z0-9_-][A-Za-z0-9._ -]{0,20}$/)),
    sas: maybe(text),
    mi: maybe(identity),
  }),
  { maxLength: 3, selector: (artifact) => String(artifact.id) },
);

// Valid settings of one run command, keys in random case, with null-valued and unknown keys.
export const arbitraryValidSettings: fc.Arbitrary<ValidSettings> = fc
  .record({
    name: runName, seq: fc.nat(), source: sources, parameters, split: fc.nat(), runAsUser: maybe(printable), runAsPassword: maybe(text),
    output: blob, error: blob, timeout: maybe(fc.integer({ min: 0, max: 2 ** 31 - 1 })), flags: fc.tuple(maybe(fc.boolean()), maybe(fc.boolean())),
    artifacts, dependsOn: fc.uniqueArray(runName, { maxLength: 3, selector: (name) => name.toLowerCase() }), caseSeed: fc.nat(), extras: fc.boolean(),
  })
  .map((v) => {
    const split = v.split % (v.parameters.length + 1);
    const pub = defined({
      source: v.source.pub, parameters: v.parameters.slice(0, split), runAsUser: v.runAsUser, outputBlobUri: v.output?.uri, errorBlobUri: v.error?.uri,
      timeoutInSeconds: v.timeout, asyncExecution: v.flags[0], treatFailureAsDeploymentFailure: v.flags[1],
      artifacts: v.artifacts.map((a) => defined({ id: a.id, uri: a.uri, fileName: a.fileName })),
      dependsOn: v.dependsOn.filter((name) => name.toLowerCase() !== v.name.toLowerCase()),
      ...(v.extras ? { surpriseKey: { nested: true }, runAsUser: v.runAsUser ?? null } : {}),
    });
    const prot = defined({
      ...v.source.prot, protectedParameters: v.parameters.slice(split), runAsPassword: v.runAsPassword,
      outputBlobSASToken: v.output?.sas, outputBlobManagedIdentity: v.output?.mi, errorBlobSASToken: v.error?.sas, errorBlobManagedIdentity: v.error?.mi,
      artifacts: v.artifacts.map((a) => defined({ id: a.id, sasToken: a.sas, artifactManagedIdentity: a.mi })),
    });
    return { name: v.name, seq: v.seq, wire: { publicSettings: recase(pub, v.caseSeed), protectedSettings: recase(prot, v.caseSeed + 1) } };
  });

// Changes trees in place of values picked by index: replaced, removed, nulled, turned into a JSON
// string, shadowed by a key equal ignoring case, or wrapped in an array.
export function mutateTree(wire: WireSettings, mutations: ReadonlyArray<readonly [number, number, unknown]>): WireSettings {
  const root = JSON.parse(JSON.stringify({ publicSettings: wire.publicSettings, protectedSettings: wire.protectedSettings ?? null })) as Record<string, unknown>;
  for (const [where, kind, tree] of mutations) {
    const slots = listSlots(root);
    const [parent, slot] = slots[where % slots.length] ?? [root, 'publicSettings'];
    const value = parent[slot];
    const actions = [
      () => (parent[slot] = tree),
      () => delete parent[slot],
      () => (parent[slot] = null),
      () => (parent[slot] = JSON.stringify(value) ?? 'null'),
      () => (parent[slot.toUpperCase() === slot ? slot.toLowerCase() : slot.toUpperCase()] = tree),
      () => (parent[slot] = [value]),
    ];
    actions[kind % actions.length]?.();
  }
  return { publicSettings: root['publicSettings'], protectedSettings: root['protectedSettings'] };
}

function listSlots(node: unknown, slots: Array<[Record<string, unknown>, string]> = []): Array<[Record<string, unknown>, string]> {
  if (node === null || typeof node !== 'object') return slots;
  for (const [slot, child] of Object.entries(node)) {
    slots.push([node as Record<string, unknown>, slot]);
    listSlots(child, slots);
  }
  return slots;
}

// Edits text at positions: truncated, a character deleted, text inserted, a character replaced.
export function mutateText(text: string, edits: ReadonlyArray<readonly [number, number, string]>): string {
  let result = text;
  for (const [position, kind, insert] of edits) {
    const at = result.length === 0 ? 0 : position % result.length;
    const actions = [
      () => result.slice(0, at),
      () => result.slice(0, at) + result.slice(at + 1),
      () => result.slice(0, at) + insert + result.slice(at),
      () => result.slice(0, at) + insert + result.slice(at + 1),
    ];
    result = actions[kind % actions.length]?.() ?? result;
  }
  return result;
}

// A settings file as the agent writes it (protected settings as opaque base64, not decrypted here).
export function toSettingsFileText(wire: WireSettings, options: { publicAsString?: boolean; bom?: boolean } = {}): string {
  const hasProtected = wire.protectedSettings !== undefined;
  const handlerSettings = {
    publicSettings: options.publicAsString ? JSON.stringify(wire.publicSettings) : wire.publicSettings,
    protectedSettings: hasProtected ? 'TUlJQg==' : null,
    protectedSettingsCertThumbprint: hasProtected ? 'AB'.repeat(20) : null,
  };
  return `${options.bom ? '\uFEFF' : ''}${JSON.stringify({ runtimeSettings: [{ handlerSettings }] })}`;
}

// Flips the case of some keys (the parser matches keys ignoring case), driven by `seed`.
function recase(value: unknown, seed: number): unknown {
  let state = seed >>> 0;
  const next = (): number => (state = (state * 1103515245 + 12345) >>> 0) % 3;
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (node === null || typeof node !== 'object') return node;
    return Object.fromEntries(Object.entries(node).map(([k, child]) => [[k, k.toLowerCase(), k.toUpperCase()][next()] ?? k, walk(child)]));
  };
  return walk(value);
}

function defined<T extends Record<string, unknown>>(record: T): Partial<T> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as Partial<T>;
}
