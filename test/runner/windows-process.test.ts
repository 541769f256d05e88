// The Windows process layer: the taskkill command lines it builds, and its launch/exit bookkeeping
// (which uses only Node's spawn, so it runs here with a POSIX shell standing in for the script).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  attachScript, killRunNow, launchScript, readBootId, requestTermination, toTaskkillArgs,
} from '../../src/runner/process.windows.js';
import { readExitRecord, readProcessIdentity } from '../../src/runner/process-contract.js';
import { waitUntil } from '../helpers/scan.js';
import { useTempDir } from '../helpers/temp-dir.js';

const dir = useTempDir('win-process');

function launch(program: string, args: string[], spawnProcess?: (p: string, a: readonly string[], o: SpawnOptions) => ChildProcess) {
  const runDir = dir();
  return launchScript(
    { runDir, program, args, env: { PATH: process.env['PATH'] ?? '' }, stdoutPath: join(runDir, 'stdout'), stderrPath: join(runDir, 'stderr'), graceMs: 50 },
    spawnProcess,
  );
}

describe('taskkill command lines', () => {
  it('closes the tree politely, then forces it', () => {
    expect(toTaskkillArgs(4242, false)).toEqual(['/PID', '4242', '/T']);
    expect(toTaskkillArgs(4242, true)).toEqual(['/PID', '4242', '/T', '/F']);
  });

  it('requestTermination runs taskkill /T, then /T /F after the grace period; killRunNow forces at once', async () => {
    const calls: string[][] = [];
    const handle = await launch('sleep', ['30']);
    expect(requestTermination(handle.identity, (args) => calls.push([...args]))).toBe(true);
    expect(calls).toEqual([['/PID', String(handle.identity.pid), '/T']]);
    await waitUntil(async () => calls.length >= 2, 10_000, 'the forced taskkill after the grace period');
    expect(calls[1]).toEqual(['/PID', String(handle.identity.pid), '/T', '/F']);
    killRunNow(handle.identity, (args) => calls.push([...args]));
    expect(calls[2]).toEqual(['/PID', String(handle.identity.pid), '/T', '/F']);
    process.kill(handle.identity.pid, 'SIGKILL');
    expect(await handle.exited).toEqual({ kind: 'signaled', signal: 9 });
    expect(requestTermination(handle.identity, () => calls.push(['late']))).toBe(false);
  });
});

describe('Windows launch bookkeeping', () => {
  it('starts the script hidden and detached with its output in the run files', async () => {
    let options: SpawnOptions | undefined;
    const handle = await launch('sh', ['-c', 'echo out; echo err >&2; exit 7'], (program, args, spawnOptions) => {
      options = spawnOptions;
      return spawn(program, args, spawnOptions);
    });
    expect(options).toMatchObject({ detached: true, windowsHide: true, cwd: dir() });
    expect(await handle.exited).toEqual({ kind: 'exited', exitCode: 7 });
    expect(await readFile(join(dir(), 'stdout'), 'utf8')).toBe('out\n');
    expect(await readFile(join(dir(), 'stderr'), 'utf8')).toBe('err\n');
    expect(await readExitRecord(dir())).toEqual({ kind: 'present', value: { kind: 'exited', exitCode: 7 } });
    expect(await readProcessIdentity(dir())).toEqual(handle.identity);
  });

  it('reports a program that cannot start as a −204 HandlerError', async () => {
    await expect(launch('/nonexistent/powershell.exe', [])).rejects.toThrow('could not start /nonexistent/powershell.exe');
  });

  it('re-attaches to a recorded script: its recorded exit, or killed when it vanished without one', async () => {
    const handle = await launch('sh', ['-c', 'exit 4']);
    await handle.exited;
    expect(await attachScript(dir(), handle.identity, { pollMs: 20 }).exited).toEqual({ kind: 'exited', exitCode: 4 });
    const gone = { ...handle.identity, pid: 2 ** 22 + 1 };
    expect(await attachScript(join(dir(), 'elsewhere'), gone, { pollMs: 20 }).exited).toEqual({ kind: 'signaled', signal: 9 });
  });

  it('identifies the boot by its start time', () => {
    expect(readBootId(1_000_000_000, 3600)).toBe(readBootId(1_000_000_000 + 5000, 3605));
    expect(readBootId(1_000_000_000, 3600)).not.toBe(readBootId(1_000_000_000, 60));
  });
});
