// Random bytes from the kernel without node:crypto where the kernel offers them as a file: the
// daemon needs a few (its control token, launch nonces) before it can answer the `enable` that
// started it, and node:crypto with its dozen modules costs that start milliseconds (issue 11.4).
// Elsewhere (Windows), node:crypto's randomBytes, loaded when first asked.
import { openSync, readSync } from 'node:fs';

let urandom: number | undefined | null;

function fromKernel(count: number): Buffer | undefined {
  if (urandom === undefined) {
    try {
      urandom = process.platform === 'win32' ? null : openSync('/dev/urandom', 'r');
    } catch {
      urandom = null;
    }
  }
  if (urandom === null) return undefined;
  const bytes = Buffer.alloc(count);
  for (let at = 0; at < count; ) {
    const read = readSync(urandom, bytes, at, count - at, null);
    if (read <= 0) return undefined;
    at += read;
  }
  return bytes;
}

// `count` cryptographically random bytes.
export function randomBytesOf(count: number): Buffer {
  return fromKernel(count) ?? process.getBuiltinModule('node:crypto').randomBytes(count);
}

// Whether two buffers are equal, in time that depends on their length only.
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i += 1) difference |= (a[i] as number) ^ (b[i] as number);
  return difference === 0;
}
