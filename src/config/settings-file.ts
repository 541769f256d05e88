// Settings files in the agent's configFolder (protocol.md §5): their names (`<name>.<seq>.settings`,
// and `<seq>.settings` for the single configuration of an agent without multi-config), a bounded UTF-8 read,
// and a parse that gives a file the agent may still be writing a few seconds to settle.

import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { SettingsError } from '../errors.js';
import { isValidName, maxNameLength, singleConfigName } from './run-command.js';
import { parseHandlerSettings, type HandlerSettings } from './settings.js';

// Settings files larger than this are refused unread.
export const maxSettingsFileBytes = 4 * 1024 * 1024;
// A file younger than this that fails to parse may be half-written: read it again.
export const defaultSettleMs = 3000;

const suffix = '.settings';
const shownNameChars = 32;
const chunkBytes = 64 * 1024;

export type SettingsFileName =
  | { readonly kind: 'settings'; readonly name: string; readonly seq: number }
  | { readonly kind: 'refused'; readonly reason: string }
  | { readonly kind: 'other' };

export interface SettingsFileContent {
  readonly text: string;
  readonly bytes: number;
  readonly mtimeMs: number;
}

export interface ReadSettingsOptions {
  readonly maxBytes?: number;
  // Checks the text (e.g. parseHandlerSettings); its SettingsError on a young file means "retry".
  readonly parse?: (text: string) => unknown;
  readonly settleMs?: number;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

// The name of the settings file of (name, seq) in configFolder: `<name>.<seq>.settings`, or
// `<seq>.settings` for the single configuration.
export function toSettingsFileName(name: string, seq: number): string {
  return name === singleConfigName ? `${seq}${suffix}` : `${name}.${seq}${suffix}`;
}

// Classifies a configFolder entry: a multi-config `<name>.<seq>.settings` file, a single-config
// `<seq>.settings` file (named singleConfigName), a settings file that must not be used (bad name
// or seq), or something else.
export function parseSettingsFileName(fileName: string): SettingsFileName {
  if (!fileName.endsWith(suffix)) return { kind: 'other' };
  const stem = fileName.slice(0, -suffix.length);
  const dot = stem.lastIndexOf('.');
  const name = dot < 0 ? singleConfigName : stem.slice(0, dot);
  const seqText = stem.slice(dot + 1);
  if (!/^(0|[1-9]\d*)$/.test(seqText) || !Number.isSafeInteger(Number(seqText))) {
    const shown = `${toShownName(stem)}${suffix}`;
    return { kind: 'refused', reason: `settings file "${shown}" has no valid sequence number (<name>.<seq>.settings, or <seq>.settings)` };
  }
  if (dot >= 0 && !isValidName(name)) {
    const length = name.length > maxNameLength ? ` (${name.length} characters, at most ${maxNameLength})` : '';
    return { kind: 'refused', reason: `invalid run command name "${toShownName(name)}"${length}` };
  }
  return { kind: 'settings', name, seq: Number(seqText) };
}

// A name as it may appear in a log line: safe characters only, truncated.
function toShownName(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9._-]/g, '?');
  return safe.length > shownNameChars ? `${safe.slice(0, shownNameChars)}…` : safe;
}

// Reads a settings file as UTF-8 text (BOM removed), refusing one over maxBytes without reading it
// whole, and checks it with `options.parse` when given. While the file is younger than settleMs a
// SettingsError is taken for a half-written file (protocol.md §5) and the file is read again after
// a short backoff. File-system errors (ENOENT…) propagate unchanged.
export async function readSettingsFile(path: string, options: ReadSettingsOptions = {}): Promise<SettingsFileContent> {
  const settleMs = options.settleMs ?? defaultSettleMs;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => delay(ms));
  const startedAt = now();
  let rereads = 0;
  for (let backoffMs = Math.min(50, settleMs); ; backoffMs = Math.min(backoffMs * 2, 500)) {
    const opened: Observed = {};
    try {
      const file = readOnce(path, options.maxBytes ?? maxSettingsFileBytes, opened);
      options.parse?.(file.text);
      return file;
    } catch (error) {
      if (!(error instanceof SettingsError)) throw error;
      // What was read is not what the file holds now (the agent was still writing it, in however
      // many writes): read it again, whatever the time — a change event may come before the last write.
      if ((await hasChanged(path, opened)) && (rereads += 1) <= maxRereads) continue;
      const current = now();
      const ageMs = current - (await readMtimeMs(path, current));
      // A clock that puts mtime in the future must not retry forever: also bound by our own start.
      // Whole milliseconds left of the settle time, by the file's age and by our own start alike.
      const remainingMs = Math.floor(Math.min(settleMs - ageMs, settleMs - (current - startedAt)));
      if (remainingMs < 1) throw error;
      await sleep(Math.min(backoffMs, remainingMs));
    }
  }
}

// Reads a settings file and parses it with parseHandlerSettings, giving a young file time to settle.
export async function parseSettingsFileWithRetry(
  path: string,
  options: Omit<ReadSettingsOptions, 'parse'> = {},
): Promise<{ settings: HandlerSettings; bytes: number; mtimeMs: number }> {
  let settings: HandlerSettings | undefined;
  const file = await readSettingsFile(path, { ...options, parse: (text) => (settings = parseHandlerSettings(text)) });
  return { settings: settings ?? parseHandlerSettings(file.text), bytes: file.bytes, mtimeMs: file.mtimeMs };
}

// The size and modification time of a file when it was opened for a read.
interface Observed {
  size?: number;
  mtimeMs?: number;
}

// Re-reads of a file that changed under a failed read, at most (a writer that never stops).
const maxRereads = 100;

async function hasChanged(path: string, opened: Observed): Promise<boolean> {
  if (opened.size === undefined) return false;
  const now = await stat(path).catch(() => undefined);
  return now !== undefined && (now.size !== opened.size || now.mtimeMs !== opened.mtimeMs);
}

// With synchronous calls: a settings file is at most 4 MiB and usually a few KiB; four small system
// calls block the event loop for less than one trip through libuv's thread pool costs in CPU
// (≈ 0.1–0.2 ms apiece on 2 CPUs), and the read is on every run's dispatch path (issue 16).
function readOnce(path: string, maxBytes: number, opened: Observed): SettingsFileContent {
  // O_NONBLOCK: a FIFO named like a settings file must not block the daemon (its open returns at
  // once, and fstat then tells it is no regular file).
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stats = fstatSync(fd);
    Object.assign(opened, { size: stats.size, mtimeMs: stats.mtimeMs });
    if (!stats.isFile()) throw new SettingsError('', 'the settings file is not a regular file');
    if (stats.size > maxBytes) throw tooLarge(maxBytes);
    const chunks: Buffer[] = [];
    let bytes = 0;
    for (;;) {
      const buffer = Buffer.alloc(Math.min(Math.max(stats.size + 1 - bytes, 4096), chunkBytes, maxBytes + 1 - bytes));
      const bytesRead = readSync(fd, buffer, 0, buffer.length, bytes);
      if (bytesRead === 0) break;
      chunks.push(buffer.subarray(0, bytesRead));
      bytes += bytesRead;
      if (bytes > maxBytes) throw tooLarge(maxBytes);
    }
    return { text: decodeUtf8(Buffer.concat(chunks)), bytes, mtimeMs: stats.mtimeMs };
  } finally {
    closeSync(fd);
  }
}

function tooLarge(maxBytes: number): SettingsError {
  return new SettingsError('', `the settings file is larger than ${maxBytes} bytes`);
}

function decodeUtf8(buffer: Buffer): string {
  try {
    // Fatal: reject invalid bytes instead of replacing them; the BOM is dropped by default.
    return new TextDecoder('utf-8', { fatal: true }).decode(buffer);
  } catch {
    throw new SettingsError('', 'the settings file is not valid UTF-8');
  }
}

async function readMtimeMs(path: string, fallback: number): Promise<number> {
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    return fallback;
  }
}
