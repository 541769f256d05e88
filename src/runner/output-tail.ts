// The last bytes of an output file, cut on a UTF-8 character boundary (run-command.md §6).
import { open } from 'node:fs/promises';

export const tailBytes = 4096;

// Index of the first byte of `buffer` that starts a UTF-8 character (skips continuation bytes).
function firstCharacterStart(buffer: Buffer): number {
  let index = 0;
  while (index < buffer.length && index < 4 && ((buffer[index] ?? 0) & 0xc0) === 0x80) index += 1;
  return index;
}

// Decodes the last `limit` bytes of `buffer` without starting inside a multi-byte character;
// `cut` says the bytes are already the end of something longer.
export function toUtf8Tail(buffer: Buffer, limit = tailBytes, cut = false): string {
  const slice = buffer.length > limit ? buffer.subarray(buffer.length - limit) : buffer;
  const start = cut || buffer.length > limit ? firstCharacterStart(slice) : 0;
  return slice.subarray(start).toString('utf8');
}

// Reads the tail of the file at `path` ('' when it does not exist), and the file's size.
export async function readOutputTail(path: string, limit = tailBytes): Promise<{ text: string; size: number }> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { text: '', size: 0 };
    throw error;
  }
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, limit);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    return { text: toUtf8Tail(buffer, limit, size > limit), size };
  } finally {
    await handle.close();
  }
}
