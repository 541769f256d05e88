// @module-tag faults
// Issue #6: a full disk must not corrupt other runs' results. Real wrappers, real files, on a small
// tmpfs mounted as the run directories' root (needs root; skipped with a message otherwise).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchScript } from '../../src/runner/process.linux.js';
import type { ScriptLaunch } from '../../src/runner/process-contract.js';
import { makeGate } from '../helpers/gate.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const wrapperPath = join(root, 'dist/native/rch-exec');
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('full-disk.linux.test.ts: skipped, mounting a tmpfs needs root');
let mountPoint = '';

function launchIn(runDir: string, script: string, overrides: Partial<ScriptLaunch> = {}): ScriptLaunch {
  mkdirSync(runDir, { recursive: true });
  return {
    runDir,
    program: '/bin/bash',
    args: ['-c', script],
    env: { PATH: '/usr/bin:/bin' },
    stdoutPath: join(runDir, 'stdout'),
    stderrPath: join(runDir, 'stderr'),
    graceMs: 2000,
    wrapperPath,
    ...overrides,
  };
}

const freeBytes = (path: string): number => {
  const stats = statfsSync(path);
  return stats.bavail * stats.bsize;
};

describe.skipIf(!isRoot)('a full disk', { timeout: 60_000 }, () => {
  beforeAll(() => {
    execFileSync(process.execPath, [join(root, 'scripts/build-native.mjs')], { stdio: 'inherit' });
    mountPoint = mkdtempSync(join(tmpdir(), 'rch-tmpfs-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mountPoint]);
  });

  afterAll(() => {
    if (mountPoint === '') return;
    execFileSync('umount', ['-l', mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  });

  it('leaves every other run its true exit code when the disk fills up while they run', async () => {
    const gate = await makeGate();
    const zero = await launchScript(launchIn(join(mountPoint, 'zero'), `${gate.wait}; echo done; exit 0`));
    const seven = await launchScript(launchIn(join(mountPoint, 'seven'), `${gate.wait}; echo done; exit 7`));
    // Something else fills the file system to the last block while both runs are still going.
    const filler = join(mountPoint, 'filler');
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k'], { stdio: 'ignore' });
    } catch {
      // dd stops with ENOSPC: that is the point.
    }
    expect(freeBytes(mountPoint)).toBe(0);
    await gate.open();
    expect(await zero.exited).toEqual({ kind: 'exited', exitCode: 0 });
    expect(await seven.exited).toEqual({ kind: 'exited', exitCode: 7 });
    expect(JSON.parse(readFileSync(join(mountPoint, 'seven', 'exit-status.json'), 'utf8'))).toEqual({ exitCode: 7 });
    rmSync(filler);
  });

  it('keeps the exit codes of runs next to one that writes unbounded output, which stops above the reserve', async () => {
    const gate = await makeGate();
    const zero = await launchScript(launchIn(join(mountPoint, 'zero2'), `${gate.wait}; exit 0`, { maxOutputBytes: 1 << 30 }));
    const seven = await launchScript(launchIn(join(mountPoint, 'seven2'), `${gate.wait}; exit 7`, { maxOutputBytes: 1 << 30 }));
    // 64 MiB into an 8 MiB file system, under the default 1 GiB cap: only the reserve stops it.
    const flood = await launchScript(launchIn(join(mountPoint, 'flood'), 'echo first-line; head -c 64M /dev/zero; echo; echo last-line; exit 3', { maxOutputBytes: 1 << 30 }));
    const flooded = await flood.exited;
    expect(flooded).toMatchObject({ kind: 'exited', exitCode: 3, output: { lowSpace: true } });
    const dropped = flooded.kind === 'exited' ? (flooded.output?.stdoutDropped ?? 0) : 0;
    const kept = statfsSync(mountPoint) && readFileSync(join(mountPoint, 'flood', 'stdout'));
    expect(kept.length + dropped).toBe(64 * 1024 * 1024 + 'first-line\n\nlast-line\n'.length);
    expect(kept.subarray(0, 11).toString()).toBe('first-line\n');
    expect(kept.subarray(-10).toString()).toBe('last-line\n');
    // The reserve (1 % of 8 MiB here) is still free for everyone else.
    expect(freeBytes(mountPoint)).toBeGreaterThan(8 * 1024 * 1024 * 0.009);
    await gate.open();
    expect(await zero.exited).toEqual({ kind: 'exited', exitCode: 0 });
    expect(await seven.exited).toEqual({ kind: 'exited', exitCode: 7 });
    rmSync(join(mountPoint, 'flood'), { recursive: true });
  });

  it('caps each stream at maxOutputBytes, keeping its head and its tail and counting what was dropped', async () => {
    const dir = join(mountPoint, 'capped');
    const script = 'echo HEAD-MARK; head -c 3000000 /dev/urandom | base64 -w 0; echo; echo TAIL-MARK; echo to-stderr >&2; exit 0';
    const handle = await launchScript(launchIn(dir, script, { maxOutputBytes: 1 << 20 }));
    const exited = await handle.exited;
    expect(exited).toMatchObject({ kind: 'exited', exitCode: 0, output: { stderrDropped: 0, lowSpace: false } });
    const stdout = readFileSync(join(dir, 'stdout'), 'utf8');
    expect(stdout.length).toBe(1 << 20);
    expect(stdout.startsWith('HEAD-MARK\n')).toBe(true);
    expect(stdout.endsWith('\nTAIL-MARK\n')).toBe(true);
    const total = 'HEAD-MARK\n'.length + 4_000_000 + 1 + 'TAIL-MARK\n'.length;
    expect(exited.kind === 'exited' ? exited.output?.stdoutDropped : undefined).toBe(total - (1 << 20));
    expect(readFileSync(join(dir, 'stderr'), 'utf8')).toBe('to-stderr\n');
    rmSync(dir, { recursive: true });
  });

  it('leaves output under the cap exactly as the script wrote it, and says nothing of truncation', async () => {
    const dir = join(mountPoint, 'small');
    const handle = await launchScript(launchIn(dir, 'printf "a\\nb"; printf err >&2; exit 4', { maxOutputBytes: 1 << 20 }));
    expect(await handle.exited).toEqual({ kind: 'exited', exitCode: 4 });
    expect(readFileSync(join(dir, 'stdout'), 'utf8')).toBe('a\nb');
    expect(readFileSync(join(dir, 'stderr'), 'utf8')).toBe('err');
    rmSync(dir, { recursive: true });
  });
});
