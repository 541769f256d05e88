import { describe, expect, it } from 'vitest';
import { eagerBytes, maxBlockBytes, shouldAppend, toNextBlock } from '../../src/blob/block-plan.js';

describe('toNextBlock', () => {
  it('returns nothing when the blob already holds the whole file', () => {
    expect(toNextBlock(10, 10)).toBeUndefined();
    expect(toNextBlock(0, 0)).toBeUndefined();
  });

  it('covers the pending bytes from the current offset', () => {
    expect(toNextBlock(100, 250)).toEqual({ offset: 100, length: 150 });
  });

  it('never plans a block over 4 MiB, however much output waits', () => {
    expect(toNextBlock(5, 5 + 3 * maxBlockBytes + 7)).toEqual({ offset: 5, length: maxBlockBytes });
    expect(maxBlockBytes).toBe(4 * 1024 * 1024);
  });
});

describe('shouldAppend', () => {
  const base = { pending: 10, sinceLastMs: 0, intervalMs: 5000, finishing: false };

  it('waits for the cadence while little output is pending', () => {
    expect(shouldAppend(base)).toBe(false);
    expect(shouldAppend({ ...base, sinceLastMs: 4999 })).toBe(false);
    expect(shouldAppend({ ...base, sinceLastMs: 5000 })).toBe(true);
  });

  it('appends at once when 1 MiB is waiting', () => {
    expect(shouldAppend({ ...base, pending: eagerBytes - 1 })).toBe(false);
    expect(shouldAppend({ ...base, pending: eagerBytes })).toBe(true);
  });

  it('appends everything pending when the run is finishing', () => {
    expect(shouldAppend({ ...base, finishing: true })).toBe(true);
  });

  it('never appends an empty block', () => {
    expect(shouldAppend({ ...base, pending: 0, sinceLastMs: 60_000, finishing: true })).toBe(false);
  });
});
