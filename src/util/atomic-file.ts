// Durable file writes: temp file in the same directory, fsync, rename (conventions: durable files).
import { readFileSync } from 'node:fs';
import { link, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type * as z from './schema.js';
import { sleep, systemClock } from './time.js';

let tempCounter = 0;

// A temp name no other writer uses: this process's id, the monotonic clock and a counter (the file
// is created exclusively, 'wx', all the same). Not node:crypto: loading it costs `enable`, which
// writes a status file on every goal state, more than all its own work.
function tempPathFor(path: string): string {
  tempCounter = (tempCounter + 1) % 0x10000;
  return join(dirname(path), `.${basename(path)}.${process.pid.toString(36)}${process.hrtime.bigint().toString(36)}${tempCounter.toString(36)}.tmp`);
}

export interface WriteOptions {
  // File mode of a new file (default 0600).
  readonly mode?: number;
  // fsync before the rename (default true); status files, rewritten every few seconds, skip it.
  readonly sync?: boolean;
}

async function writeTemp(path: string, data: string | Uint8Array, options: WriteOptions): Promise<string> {
  const temp = tempPathFor(path);
  const handle = await open(temp, 'wx', options.mode ?? 0o600);
  try {
    await handle.writeFile(data);
    if (options.sync !== false) await handle.sync();
  } catch (error) {
    await handle.close();
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await handle.close();
  return temp;
}

// How long a replace is retried while another process holds the target open (renameOver).
const replaceRetryMs = 5000;

// Windows refuses to replace a file that another process has open — the agent reading a status
// file, a command reading the daemon's token, a virus scanner — with EPERM, EACCES or EBUSY until
// that handle closes (MoveFileEx; Wine does the same), and such readers hold it for milliseconds:
// the rename is retried, backing off, for a few seconds (as graceful-fs does). A daemon that
// died of it at start left its runs unserved (seen in the Windows lane: the token). On Linux,
// rename(2) never fails for an open file; these codes mean a lasting refusal and cost only the wait.
async function renameOver(from: string, to: string): Promise<void> {
  let deadline: number | undefined; // from the first refusal
  for (let delayMs = 5; ; delayMs = Math.min(delayMs * 2, 250)) {
    try {
      await rename(from, to);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      deadline ??= systemClock.monotonicMs() + replaceRetryMs;
      if ((code !== 'EPERM' && code !== 'EACCES' && code !== 'EBUSY') || systemClock.monotonicMs() >= deadline) throw error;
    }
    await sleep(delayMs);
  }
}

// Replaces `path` with `data` atomically: readers see the old or the new content, never a mix.
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: WriteOptions = {}): Promise<void> {
  const temp = await writeTemp(path, data, options);
  try {
    await renameOver(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}

// Creates `path` with `data` only if it does not exist yet; false when it already existed.
export async function createFileAtomic(path: string, data: string | Uint8Array, options: WriteOptions = {}): Promise<boolean> {
  const temp = await writeTemp(path, data, options);
  try {
    await link(temp, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

// A small file's text, read with synchronous calls: open, fstat, read and close take less time
// together than one of them costs in CPU as a trip through libuv's thread pool (≈ 0.1–0.2 ms each
// on 2 CPUs, issue 16), and a read needs no journal commit, so it cannot stall behind the file
// system's metadata work as a create or a rename can. For the handler's own records (a few
// hundred bytes), read on every run's way; throws as readFile does.
export function readSmallFile(path: string): string {
  return readFileSync(path, 'utf8');
}

// Reads and parses a JSON file; undefined when it does not exist.
export async function readJsonFile(path: string): Promise<unknown> {
  try {
    return JSON.parse(readSmallFile(path)) as unknown;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

// What reading a durable file found: absent and corrupt are different answers (a corrupt
// exactly-once record must never be taken for "never ran").
export type Read<T> = { readonly kind: 'absent' } | { readonly kind: 'present'; readonly value: T } | { readonly kind: 'corrupt'; readonly reason: string };

// Reads a JSON file and validates it with `schema`.
export async function readDurableJson<T>(path: string, schema: z.ZodMiniType<T>): Promise<Read<T>> {
  let text: string;
  try {
    text = readSmallFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? { kind: 'absent' } : { kind: 'corrupt', reason: `cannot be read (${code ?? 'error'})` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'corrupt', reason: 'is not valid JSON' };
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) return { kind: 'corrupt', reason: `does not have the expected shape (${parsed.error.issues[0]?.path.join('.') || 'root'})` };
  return { kind: 'present', value: parsed.data };
}
