import { describe, expect, it } from 'vitest';
import { toLaunchRequest } from '../../src/runner/launcher.linux.js';

describe('launch requests', () => {
  it('encode a length and NUL-terminated fields in the order the launcher reads them', () => {
    const request = toLaunchRequest('7', {
      runDir: '/runs/r', program: '/bin/bash', args: ['script.sh', 'a b'], env: { A: '1', B: 'x=y' },
      stdoutPath: '/runs/r/stdout', stderrPath: '/runs/r/stderr', graceMs: 1500.4, cwd: '/work/r', maxOutputBytes: 1 << 20, launchNonce: '0f1e',
    });
    const payload = request.subarray(4);
    expect(request.readUInt32LE(0)).toBe(payload.length);
    expect(payload.toString('utf8').split('\0')).toEqual([
      '7', '1500', '1048576', '/runs/r', '/work/r', '/runs/r/stdout', '/runs/r/stderr', '3', '/bin/bash', 'script.sh', 'a b', '2', 'A=1', 'B=x=y', '0f1e', '',
    ]);
  });

  it('defaults the working directory to the run directory, and sends max-output 0 (no relay) without a cap and an empty nonce without one', () => {
    const request = toLaunchRequest('1', { runDir: '/r', program: 'p', args: [], env: {}, stdoutPath: 'o', stderrPath: 'e', graceMs: 0 });
    expect(request.subarray(4).toString('utf8').split('\0').slice(0, 5)).toEqual(['1', '0', '0', '/r', '/r']);
    expect(request.subarray(4).toString('utf8').split('\0').slice(-3)).toEqual(['0', '', '']);
  });
});
