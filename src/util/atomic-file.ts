// Durable file writes: temp file in the same directory, fsync, rename (conventions: durable files).
import { closeSync, fsync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { link, open, readFile, unlink } from 'node:fs/promises';
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

// Up to this size the temp file is created and written with synchronous calls: a small write to the
// page cache costs less than the thread-pool round trips of its async form (≈ 0.45 against 0.9 ms
// for a whole non-durable replace on a 2-CPU VM; issue 16: journal and status writes are on the
// way to every launch). The fsync, which waits for the disk, stays on the thread pool.
const syncWriteMaxBytes = 64 * 1024;

function writeTempSync(temp: string, data: string | Uint8Array, options: WriteOptions): Promise<void> | undefined {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  if (bytes.byteLength > syncWriteMaxBytes) return undefined;
  const fd = openSync(temp, 'wx', options.mode ?? 0o600);
  const closeAndRemove = (error: unknown): never => {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  };
  try {
    for (let at = 0; at < bytes.byteLength; ) at += writeSync(fd, bytes, at, bytes.byteLength - at);
  } catch (error) {
    closeAndRemove(error);
  }
  if (options.sync === false) {
    closeSync(fd);
    return Promise.resolve();
  }
  return new Promise<void>((resolve, reject) => fsync(fd, (error) => (error ? reject(error) : resolve()))).then(
    () => closeSync(fd),
    closeAndRemove,
  );
}

async function writeTemp(path: string, data: string | Uint8Array, options: WriteOptions): Promise<string> {
  const temp = tempPathFor(path);
  const written = writeTempSync(temp, data, options);
  if (written !== undefined) {
    await written;
    return temp;
  }
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
      // Synchronous, as the small writes before it (writeTempSync): one metadata call.
      renameSync(from, to);
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

// Reads and parses a JSON file; undefined when it does not exist.
export async function readJsonFile(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as unknown;
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
    text = await readFile(path, 'utf8');
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
