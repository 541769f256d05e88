// Hardening #5 with the real wrapper: a launch's claim (rch-launch-<nonce>) decides between the
// wrapper and a restarted daemon's fence, and a fenced launch starts nothing and writes nothing.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { fenceLaunch, newLaunchNonce } from '../../src/runner/launch-fence.js';
import { launchScript } from '../../src/runner/process.linux.js';
import type { ScriptLaunch } from '../../src/runner/process-contract.js';
import { toLaunchClaimPath } from '../../src/runner/run-directory.js';
import { makeGate } from '../helpers/gate.js';
import { useTempDir } from '../helpers/temp-dir.js';

const wrapperPath = fileURLToPath(new URL('../../dist/native/rch-exec', import.meta.url));
const dir = useTempDir('launch-fence');

function launchOf(script: string, launchNonce: string): ScriptLaunch {
  return {
    runDir: dir(), program: '/bin/sh', args: ['-c', script], env: { PATH: '/usr/bin:/bin' },
    stdoutPath: join(dir(), 'stdout'), stderrPath: join(dir(), 'stderr'), graceMs: 1000, wrapperPath, maxOutputBytes: 1 << 20, launchNonce,
  };
}

// Runs the wrapper binary directly (the daemon's fallback when its launcher fails).
async function runWrapper(args: string[]): Promise<number> {
  try {
    await promisify(execFile)(wrapperPath, args, { cwd: dir() });
    return 0;
  } catch (error) {
    return (error as { code?: number }).code ?? -1;
  }
}

describe('launch claims', () => {
  it('the wrapper claims its launch before the script runs; a later fence finds that script, not a free name', async () => {
    const gate = await makeGate();
    const nonce = newLaunchNonce();
    const handle = await launchScript(launchOf(`${gate.wait}; echo done`, nonce));
    expect(existsSync(toLaunchClaimPath(dir(), nonce))).toBe(true);
    expect(await fenceLaunch(dir(), nonce, { waitMs: 5000 })).toEqual({ kind: 'started', identity: handle.identity });
    await gate.open();
    expect(await handle.exited).toMatchObject({ kind: 'exited', exitCode: 0 });
  });

  it('a fenced launch starts nothing and writes nothing, through the launcher and run directly', async () => {
    const marker = join(dir(), 'ran');
    const nonce = newLaunchNonce();
    expect(await fenceLaunch(dir(), nonce)).toEqual({ kind: 'fenced' });
    await expect(launchScript(launchOf(`echo ran >> ${marker}`, nonce))).rejects.toThrow(/did not report the script process/);
    expect(await runWrapper(['--launch-nonce', nonce, '--grace-ms', '0', dir(), '/bin/sh', '-c', `echo ran >> ${marker}`])).toBe(75);
    expect(existsSync(marker)).toBe(false);
    expect(readdirSync(dir()).filter((name) => !['stdout', 'stderr'].includes(name))).toEqual([`rch-launch-${nonce}`]);
    expect(readFileSync(join(dir(), 'stderr'), 'utf8')).toBe('');
  });

  it('a second fence of the same launch (a daemon killed again before it relaunched) still reads "never started"', async () => {
    const nonce = newLaunchNonce();
    expect(await fenceLaunch(dir(), nonce)).toEqual({ kind: 'fenced' });
    expect(await fenceLaunch(dir(), nonce)).toEqual({ kind: 'fenced' });
  });

  it('waits a bounded time for a claimed launch to report its script, then says it is unknown', async () => {
    const nonce = newLaunchNonce();
    writeFileSync(toLaunchClaimPath(dir(), nonce), '');
    const unknown = await fenceLaunch(dir(), nonce, { waitMs: 300 });
    expect(unknown).toMatchObject({ kind: 'unknown' });
    expect(unknown.kind === 'unknown' && unknown.reason).toContain('did not report the script process within 0.3 s');
    const identity = { wrapperPid: 10, pid: 11, pgid: 11, startTime: '5', wrapperStartTime: '4' };
    const waiting = fenceLaunch(dir(), nonce, { waitMs: 20_000 });
    writeFileSync(join(dir(), 'process.json'), JSON.stringify(identity));
    expect(await waiting).toEqual({ kind: 'started', identity });
  });

  it('the wrapper refuses a nonce that is not hex (it names a file), and starts nothing', async () => {
    const marker = join(dir(), 'ran');
    expect(await runWrapper(['--launch-nonce', '../x', '--grace-ms', '0', dir(), '/bin/sh', '-c', `echo ran >> ${marker}`])).toBe(2);
    expect(existsSync(marker)).toBe(false);
  });
});
