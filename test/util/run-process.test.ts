import { describe, expect, it } from 'vitest';
import { runProcess } from '../../src/util/run-process.js';

describe('runProcess', () => {
  it('returns stdout byte for byte, a final newline included (binary DER can end in 0x0a)', async () => {
    const result = await runProcess('/bin/sh', ['-c', 'cat; printf "\\n"'], { input: Buffer.from([0x30, 0x0a]), timeoutMs: 10_000 });
    expect(result.exitCode).toBe(0);
    expect([...result.stdout]).toEqual([0x30, 0x0a, 0x0a]);
  });

  it('reports a program that cannot start, and kills one that outlives the time bound', async () => {
    const missing = await runProcess('/nonexistent/program', [], { input: Buffer.alloc(0), timeoutMs: 10_000 });
    expect(missing.error?.message).toContain('ENOENT');
    const slow = await runProcess('/bin/sleep', ['30'], { input: Buffer.alloc(0), timeoutMs: 200 });
    expect(slow).toMatchObject({ timedOut: true, exitCode: null });
  });
});
