// Case-insensitive key matching for settings JSON and the nesting bound checked before any
// recursive walk. Microsoft's handler matches keys regardless of case (`Name`/`Value` work) and
// the agent writes `null` rather than leaving keys out (protocol.md §5).

import { SettingsError } from '../errors.js';

// Known keys of a JSON value: null = a leaf (any value), [shape] = an array of shape,
// an object = these keys (canonical spelling), anything else unknown.
export type KeyShape = null | readonly [KeyShape] | { readonly [key: string]: KeyShape };

// Unknown keys beyond this many are not listed (they are only logged).
const maxUnknownKeys = 100;
const maxKeyChars = 64;

// Throws a SettingsError when `value` nests objects/arrays deeper than `maxDepth`; iterative, so
// a hostile 10,000-deep value cannot overflow the stack.
export function validateDepth(value: unknown, maxDepth: number, field: string): void {
  const stack: Array<{ node: unknown; depth: number }> = [{ node: value, depth: 1 }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const { node, depth } = item;
    if (node === null || typeof node !== 'object') continue;
    if (depth > maxDepth) {
      throw new SettingsError(field, `JSON nesting must not be deeper than ${maxDepth} levels`);
    }
    for (const child of Object.values(node)) stack.push({ node: child, depth: depth + 1 });
  }
}

// Returns a copy of `value` whose known keys are spelled as in `shape`, without null-valued
// (= absent) keys and without unknown keys, whose dotted paths are appended to `unknownKeys`.
export function normalizeKeys(value: unknown, shape: KeyShape, path: string, unknownKeys: string[]): unknown {
  if (shape === null || value === null || typeof value !== 'object') return value;
  if (isArrayShape(shape)) {
    if (!Array.isArray(value)) return value;
    const element = shape[0];
    return value.map((item: unknown, index) => normalizeKeys(item, element, `${path}[${index}]`, unknownKeys));
  }
  if (Array.isArray(value)) return value;
  return normalizeObject(value as Record<string, unknown>, shape, path, unknownKeys);
}

function normalizeObject(
  value: Record<string, unknown>,
  shape: { readonly [key: string]: KeyShape },
  path: string,
  unknownKeys: string[],
): Record<string, unknown> {
  const canonical = new Map(Object.keys(shape).map((key) => [key.toLowerCase(), key]));
  const seen = new Map<string, string>();
  const result: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    const lower = key.toLowerCase();
    const previous = seen.get(lower);
    if (previous !== undefined) {
      const rule = `duplicate key: "${sanitizeKey(previous)}" and "${sanitizeKey(key)}" are equal ignoring case`;
      throw new SettingsError(joinPath(path, sanitizeKey(key)), rule);
    }
    seen.set(lower, key);
    const known = canonical.get(lower);
    if (known === undefined) {
      if (unknownKeys.length < maxUnknownKeys) unknownKeys.push(joinPath(path, sanitizeKey(key)));
      continue;
    }
    if (child === null || child === undefined) continue;
    result[known] = normalizeKeys(child, shape[known] ?? null, joinPath(path, known), unknownKeys);
  }
  return result;
}

function isArrayShape(shape: NonNullable<KeyShape>): shape is readonly [KeyShape] {
  return Array.isArray(shape);
}

// `a` + `b` → `a.b`; '' + `b` → `b`.
export function joinPath(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

// A key as it may appear in a message or log: printable ASCII, bounded length.
export function sanitizeKey(key: string): string {
  const printable = key.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > maxKeyChars ? `${printable.slice(0, maxKeyChars)}…` : printable;
}
