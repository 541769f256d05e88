// The last bytes of an output file, cut on a UTF-8 character boundary (run-command.md §6).
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

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

// Reads the tail of the file at `path` ('' when it does not exist), and the file's size. With
// synchronous calls: four small ones (open, fstat, read, close; ≈ 0.03 ms together on 2 CPUs) cost
// less than one trip through libuv's thread pool each (≈ 0.1–0.2 ms of CPU apiece here, issue 16),
// and a read needs no journal commit, so it cannot stall behind the file system's metadata work as
// a create or rename can. The daemon reads two tails per status write.
export async function readOutputTail(path: string, limit = tailBytes): Promise<{ text: string; size: number }> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { text: '', size: 0 };
    throw error;
  }
  try {
    const { size } = fstatSync(fd);
    const length = Math.min(size, limit);
    const buffer = Buffer.alloc(length);
    let read = 0;
    while (read < length) {
      const n = readSync(fd, buffer, read, length - read, size - length + read);
      if (n === 0) break; // truncated meanwhile
      read += n;
    }
    return { text: toUtf8Tail(buffer.subarray(0, read), limit, size > limit), size };
  } finally {
    closeSync(fd);
  }
}
