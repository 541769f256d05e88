// File names that come from outside (a URL's last path segment, an artifact's fileName, a run
// command name) and the paths built from them: they never leave their directory — no `..`, no
// absolute path, no separator, NUL or control character (run-command.md §1, §3; targets.md security).
import { isAbsolute, relative, resolve } from 'node:path';
import { errorCodes, HandlerError } from '../errors.js';

// Linux NAME_MAX, in bytes.
export const maxFileNameBytes = 255;

// Separators, C0/C1 control characters (NUL included), DEL and invisible format characters
// (bidirectional overrides could disguise a name in a listing).
const unsafeCharacters = /[/\\\p{Cc}\p{Cf}]/u;
const unsafeCharactersGlobal = /[/\\\p{Cc}\p{Cf}]/gu;
const longestKeptExtension = 16;

// True when `name` can be used as one entry of a directory as it is.
export function isSafeFileName(name: string): boolean {
  return (
    name !== '' &&
    name !== '.' &&
    name !== '..' &&
    !unsafeCharacters.test(name) &&
    Buffer.byteLength(name, 'utf8') <= maxFileNameBytes
  );
}

// A usable file name made from an untrusted one: unsafe characters become '_', a name of dots
// only (or nothing) becomes `fallback`, and a long name is cut to 255 bytes keeping its extension.
export function toSafeFileName(candidate: string, fallback = 'download'): string {
  const replaced = candidate.replace(unsafeCharactersGlobal, '_');
  if (/^\.*$/.test(replaced)) return fallback;
  return truncateFileName(replaced);
}

// The file name a download from `url` gets (run-command.md §3: "File name = last path segment"),
// percent-decoded, then made safe; `fallback` when the URL has no last segment.
export function toFileNameFromUrl(url: string, fallback = 'download'): string {
  let pathname: string;
  try {
    pathname = new URL(url).pathname;
  } catch {
    return fallback;
  }
  const segment = pathname.slice(pathname.lastIndexOf('/') + 1);
  return toSafeFileName(safeDecode(segment), fallback);
}

// The absolute path of `name` inside `dir`; throws a HandlerError (invalid settings) when `name`
// is not a plain file name, so nothing can be written outside `dir`.
export function toContainedPath(dir: string, name: string): string {
  const base = resolve(dir);
  const path = resolve(base, name);
  const rel = relative(base, path);
  if (!isSafeFileName(name) || rel !== name || rel.startsWith('..') || isAbsolute(rel)) {
    throw new HandlerError(errorCodes.invalidSettings, `file name "${toShownName(name)}" cannot be used: it must be a plain file name inside the run's directory`, { blame: 'user' });
  }
  return path;
}

// A name as it may appear in a message: printable, bounded.
function toShownName(name: string): string {
  const shown = name.replace(/[^\x20-\x7e]/g, '?');
  return shown.length > 64 ? `${shown.slice(0, 64)}…` : shown;
}

function truncateFileName(name: string): string {
  if (Buffer.byteLength(name, 'utf8') <= maxFileNameBytes) return name;
  const dot = name.lastIndexOf('.');
  const extension = dot > 0 && name.length - dot <= longestKeptExtension ? name.slice(dot) : '';
  const budget = maxFileNameBytes - Buffer.byteLength(extension, 'utf8');
  let stem = '';
  let bytes = 0;
  // By code point, so a multi-byte character is never cut in half.
  for (const character of name.slice(0, name.length - extension.length)) {
    const size = Buffer.byteLength(character, 'utf8');
    if (bytes + size > budget) break;
    stem += character;
    bytes += size;
  }
  return `${stem}${extension}`;
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
