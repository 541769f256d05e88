// Hardening #5 with the real wrapper: a launch's claim (rch-launch-<nonce>) decides between the
// wrapper and a restarted daemon's fence, and a fenced launch starts nothing and writes nothing.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { fenceLaunch, newLaunchNonce, readClaimHolder, type FencedLaunch } from '../../src/runner/launch-fence.js';
import { isSameProcess, launchScript } from '../../src/runner/process.linux.js';
import type { ScriptLaunch } from '../../src/runner/process-contract.js';
import { toLaunchClaimPath } from '../../src/runner/run-directory.js';
import { makeGate } from '../helpers/gate.js';
import { waitUntil } from '../helpers/scan.js';
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

  // A wrapper starved (here: stopped) right after its claim, before it reports the script, for
  // longer than the bounded wait: its script may yet start, so it is followed while it lives.
  it('follows a claimed launch whose wrapper is stopped past the bounded wait, until it reports the script', async () => {
    const gate = await makeGate();
    const nonce = newLaunchNonce();
    const wrapper = await startHeldWrapper(nonce, `${gate.wait}; exit 3`);
    process.kill(wrapper.pid!, 'SIGSTOP');
    await unlink(join(dir(), '.process.json.tmp'));
    try {
      const found = await fenceLaunch(dir(), nonce, { waitMs: 300, isAlive: isSameProcess });
      expect(found).toMatchObject({ kind: 'claimed', wrapperPid: wrapper.pid });
      let outcome: FencedLaunch | undefined;
      void (found.kind === 'claimed' && found.reported.then((value) => (outcome = value)));
      // Well past the bounded wait, the stopped wrapper is still waited for (it is not "unknown").
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(outcome).toBeUndefined();
      process.kill(wrapper.pid!, 'SIGCONT');
      await waitUntil(async () => outcome !== undefined, 20_000, 'the stopped wrapper to report its script');
      expect(outcome).toMatchObject({ kind: 'started', identity: { wrapperPid: wrapper.pid } });
    } finally {
      process.kill(wrapper.pid!, 'SIGCONT');
    }
    await gate.open();
    expect(await exitOf(wrapper)).toBe(0);
    expect(JSON.parse(readFileSync(join(dir(), 'exit-status.json'), 'utf8'))).toEqual({ exitCode: 3 });
  });

  it('ends a claimed launch as unknown as soon as its wrapper is gone without reporting', async () => {
    const gate = await makeGate();
    const nonce = newLaunchNonce();
    const wrapper = await startHeldWrapper(nonce, gate.wait);
    const found = fenceLaunch(dir(), nonce, { waitMs: 20_000, isAlive: isSameProcess });
    process.kill(wrapper.pid!, 'SIGKILL');
    const unknown = await found;
    expect(unknown).toMatchObject({ kind: 'unknown' });
    expect(unknown.kind === 'unknown' && unknown.reason).toContain(`its wrapper (pid ${wrapper.pid}) claimed the launch but ended before it reported the script process`);
  });

  // The launcher dies after it forked a launch's wrapper and before its reply (a launcher stand-in
  // passes the request to a real launcher, then exits once the wrapper it forked runs the script):
  // the daemon's direct-spawn fallback reuses the nonce, its own wrapper is fenced, and the run
  // follows the wrapper that holds the claim instead of failing while that one's script runs.
  it('a launcher that dies between fork and reply: the fallback follows the wrapper it forked, which runs the script once', async () => {
    const gate = await makeGate();
    const marker = join(dir(), 'ran');
    const nonce = newLaunchNonce();
    const handle = await launchScript({ ...launchOf(`echo ran >> ${marker}; ${gate.wait}; exit 3`, nonce), wrapperPath: writeDyingLauncher() });
    expect(JSON.parse(readFileSync(join(dir(), 'process.json'), 'utf8'))).toEqual(handle.identity);
    await gate.open();
    expect(await handle.exited).toMatchObject({ kind: 'exited', exitCode: 3 });
    expect(readFileSync(marker, 'utf8')).toBe('ran\n');
  });
});

// A wrapper (run directly) held after its claim, before it reports: process.json's temporary name
// is a FIFO, whose open(2) blocks until someone reads it (or, once the FIFO is gone, until a stop and
// continue restart the open, which then creates a plain file).
async function startHeldWrapper(nonce: string, script: string): Promise<ChildProcess> {
  await promisify(execFile)('mkfifo', [join(dir(), '.process.json.tmp')]);
  const wrapper = spawn(wrapperPath, ['--launch-nonce', nonce, '--grace-ms', '0', dir(), '/bin/sh', '-c', script], { cwd: dir(), stdio: 'ignore', detached: true });
  let holder: Awaited<ReturnType<typeof readClaimHolder>>;
  await waitUntil(async () => (holder = await readClaimHolder(dir(), nonce)) !== undefined, 20_000, 'the wrapper to claim its launch');
  expect(holder).toEqual({ wrapperPid: wrapper.pid, wrapperStartTime: expect.stringMatching(/^\d+$/) });
  expect(existsSync(join(dir(), 'process.json'))).toBe(false);
  return wrapper;
}

function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

// A stand-in for `rch-exec --launcher` that passes requests to the real launcher and exits, without
// a reply, once the wrapper that launcher forked reports its script; run any other way, the wrapper.
function writeDyingLauncher(): string {
  const relay = join(dir(), 'dying-launcher.cjs');
  writeFileSync(relay, `const real = require('node:child_process').spawn(${JSON.stringify(wrapperPath)}, ['--launcher'], { stdio: ['pipe', 'pipe', 'inherit'] });
process.stdin.on('data', (chunk) => real.stdin.write(chunk));
let text = '';
real.stdout.on('data', (chunk) => { text += chunk; if (/^[{]/m.test(text)) process.exit(1); });
`);
  const shim = join(dir(), 'rch-exec-shim');
  writeFileSync(shim, `#!/bin/sh\n[ "$1" = --launcher ] && exec ${JSON.stringify(process.execPath)} ${JSON.stringify(relay)}\nexec ${JSON.stringify(wrapperPath)} "$@"\n`);
  chmodSync(shim, 0o755);
  return shim;
}
