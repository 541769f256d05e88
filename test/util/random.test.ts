// Random bytes for the daemon's token and launch nonces without node:crypto (util/random.ts).
import { describe, expect, it } from 'vitest';
import { constantTimeEqual, randomBytesOf } from '../../src/util/random.js';

describe('randomBytesOf', () => {
  it('gives as many bytes as asked, different each time, spread over every value', () => {
    const samples = Array.from({ length: 64 }, () => randomBytesOf(32));
    expect(samples.every((bytes) => bytes.length === 32)).toBe(true);
    expect(new Set(samples.map((bytes) => bytes.toString('hex'))).size).toBe(64);
    // 2048 bytes: each of the 256 values is expected 8 times; a source stuck on a few would miss most.
    expect(new Set(samples.flatMap((bytes) => [...bytes])).size).toBeGreaterThan(200);
  });
});

describe('constantTimeEqual', () => {
  it('is true for equal bytes only', () => {
    expect(constantTimeEqual(Buffer.from('abc'), Buffer.from('abc'))).toBe(true);
    expect(constantTimeEqual(Buffer.from('abc'), Buffer.from('abd'))).toBe(false);
    expect(constantTimeEqual(Buffer.from('abc'), Buffer.from('ab'))).toBe(false);
    expect(constantTimeEqual(Buffer.from(''), Buffer.from(''))).toBe(true);
  });
});
