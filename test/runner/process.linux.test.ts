import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import ts from 'typescript';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  attachScript,
  isSameProcess,
  killRunNow,
  launchScript,
  readBootId,
  readProcessStartTime,
  requestTermination,
} from '../../src/runner/process.linux.js';
import { readProcessIdentity, toRecordedExit, type ProcessIdentity, type ScriptLaunch } from '../../src/runner/process-contract.js';
import * as contract from '../../src/runner/process-contract.js';

// The wrapper's exit record, undefined while there is none.
const readExitRecord = async (dir: string) => toRecordedExit(await contract.readExitRecord(dir));
import { makeGate } from '../helpers/gate.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const wrapperPath = join(root, 'dist/native/rch-exec');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let runDir = '';
let moduleDir = '';
let sleepers: ChildProcess[] = [];

// A plain `sleep` child of the test, killed in afterEach even when the test fails.
function spawnSleeper(program = 'sleep'): ChildProcess {
  const sleeper = spawn(program, ['300'], { stdio: 'ignore' });
  sleepers.push(sleeper);
  return sleeper;
}

// Processes whose command line carries the marker (proves nothing of a run outlived it); with
// asArgv0, only those whose argv[0] starts with it (the `exec -a` target has really started).
function findMarked(marker: string, asArgv0 = false): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name) && Number(name) !== process.pid)
    .filter((name) => {
      try {
        const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8');
        return asArgv0 ? cmdline.startsWith(marker) : cmdline.includes(marker);
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function waitFor(condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}

function bash(script: string, overrides: Partial<ScriptLaunch> = {}, ...args: string[]): ScriptLaunch {
  return {
    runDir,
    program: '/bin/bash',
    args: ['-c', script, 'rch-test', ...args],
    env: { PATH: '/usr/bin:/bin' },
    stdoutPath: join(runDir, 'stdout'),
    stderrPath: join(runDir, 'stderr'),
    graceMs: 2000,
    wrapperPath,
    // As the daemon launches: output relayed through the wrapper under a cap (issue #6).
    maxOutputBytes: 1 << 30,
    ...overrides,
  };
}

async function runToEnd(launch: ScriptLaunch) {
  const handle = await launchScript(launch);
  return handle.exited;
}

beforeAll(() => {
  execFileSync(process.execPath, [join(root, 'scripts/build-native.mjs')], { stdio: 'inherit' });
  // A plain-node copy of the module under test, for a launcher process that is not vitest.
  moduleDir = mkdtempSync(join(tmpdir(), 'rch-module-'));
  mkdirSync(join(moduleDir, 'runner'));
  mkdirSync(join(moduleDir, 'util'));
  const modules = [
    ['src/runner/process.linux.ts', 'runner/process.linux.js'],
    ['src/runner/launcher.linux.ts', 'runner/launcher.linux.js'],
    ['src/runner/launch-fence.ts', 'runner/launch-fence.js'],
    ['src/runner/process-contract.ts', 'runner/process-contract.js'],
    ['src/runner/run-directory.ts', 'runner/run-directory.js'],
    ['src/errors.ts', 'errors.js'],
    ['src/util/package-root.ts', 'util/package-root.js'],
    ['src/util/dispatch-profile.ts', 'util/dispatch-profile.js'],
    ['src/util/schema.ts', 'util/schema.js'],
    ['src/util/random.ts', 'util/random.js'],
    ['src/util/atomic-file.ts', 'util/atomic-file.js'],
    ['src/util/time.ts', 'util/time.js'],
  ] as const;
  for (const [source, target] of modules) {
    const compilerOptions = { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 };
    writeFileSync(join(moduleDir, target), ts.transpileModule(readFileSync(join(root, source), 'utf8'), { compilerOptions }).outputText);
  }
  writeFileSync(join(moduleDir, 'package.json'), '{"type":"module"}');
  symlinkSync(join(root, 'node_modules'), join(moduleDir, 'node_modules'));
});

afterAll(() => rmSync(moduleDir, { recursive: true, force: true }));

describe('process.linux', { timeout: 20_000 }, () => {
  beforeEach(() => {
    runDir = mkdtempSync(join(tmpdir(), 'rch-run-'));
  });
  afterEach(async () => {
    const identity = await readProcessIdentity(runDir);
    if (identity !== undefined) killRunNow(identity);
    for (const sleeper of sleepers) sleeper.kill('SIGKILL');
    sleepers = [];
    rmSync(runDir, { recursive: true, force: true });
  });

  it('reports exit codes 0 and 3 without waiting for the grace period', async () => {
    const started = Date.now();
    expect(await runToEnd(bash('exit 0', { graceMs: 10_000 }))).toEqual({ kind: 'exited', exitCode: 0 });
    expect(await runToEnd(bash('exit 3', { graceMs: 10_000 }))).toEqual({ kind: 'exited', exitCode: 3 });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(await readExitRecord(runDir)).toEqual({ kind: 'exited', exitCode: 3 });
  });

  it('records the identity of the script in process.json and on the pipe alike', async () => {
    const gate = await makeGate();
    const handle = await launchScript(bash(gate.wait));
    expect(await readProcessIdentity(runDir)).toEqual(handle.identity);
    expect(handle.identity.pgid).toBe(handle.identity.pid);
    expect(isSameProcess(handle.identity.wrapperPid, handle.identity.wrapperStartTime)).toBe(true);
    expect(isSameProcess(handle.identity.pid, handle.identity.startTime)).toBe(true);
    await gate.open();
    await handle.exited;
  });

  it('rejects with a start-execution error when the wrapper cannot be started', async () => {
    await expect(launchScript(bash('exit 0', { wrapperPath: join(runDir, 'no-wrapper') }))).rejects.toMatchObject({ code: -204 });
  });

  it('gives the script only stdin, stdout and stderr, whatever high descriptors the daemon inherited', async () => {
    // The wrapper is started through a shim that holds descriptors 100 and 1000 (not close-on-exec),
    // as a daemon started by a careless parent would: the launcher, its wrappers and the scripts inherit them.
    const shim = join(moduleDir, 'rch-exec-with-fds');
    writeFileSync(shim, `#!/bin/bash\nexec 100</dev/null 1000</dev/null\nexec '${wrapperPath}' "$@"\n`, { mode: 0o755 });
    const listFds = 'ls /proc/$$/fd; true';
    // Through the launcher (the daemon's way).
    expect(await runToEnd(bash(listFds, { wrapperPath: shim }))).toEqual({ kind: 'exited', exitCode: 0 });
    expect(readFileSync(join(runDir, 'stdout'), 'utf8').split('\n').filter(Boolean)).toEqual(['0', '1', '2']);
    // The wrapper started directly (the fallback when the launcher cannot be used).
    const direct = mkdtempSync(join(tmpdir(), 'rch-run-'));
    try {
      const output = execFileSync(shim, ['--grace-ms', '100', direct, '/bin/bash', '-c', listFds], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      expect(output.split('\n').filter(Boolean)).toEqual(['0', '1', '2']);
    } finally {
      rmSync(direct, { recursive: true, force: true });
    }
  });

  it('starts the script leading its own process group, with no signal ignored or blocked', async () => {
    // The wrapper ignores SIGTERM, SIGINT, SIGHUP, SIGQUIT and SIGPIPE and blocks SIGCHLD and
    // SIGUSR1; none of that may reach the script (a script that ignored SIGTERM could not be stopped
    // gracefully). SIGQUIT is left out of the check: bash ignores it itself.
    // Builtins only: bash blocks SIGCHLD around a fork of its own.
    const probe = [
      'while read -r key value; do case $key in SigBlk:|SigIgn:) echo "$key $value";; esac; done < /proc/$$/status',
      'read -r -a stat < /proc/$$/stat; echo "pgid=${stat[4]} pid=$$"',
    ].join('\n');
    expect(await runToEnd(bash(probe))).toEqual({ kind: 'exited', exitCode: 0 });
    const lines = readFileSync(join(runDir, 'stdout'), 'utf8').split('\n').filter(Boolean);
    expect(lines[0]).toBe('SigBlk: 0000000000000000');
    const ignored = BigInt(`0x${lines[1]?.replace('SigIgn: ', '') ?? ''}`);
    const wrapperIgnores = [1, 2, 13, 15].reduce((mask, signal) => mask | (1n << BigInt(signal - 1)), 0n); // HUP INT PIPE TERM
    expect(ignored & wrapperIgnores).toBe(0n);
    const [, pgid, pid] = /^pgid=(\d+) pid=(\d+)$/.exec(lines[2] ?? '') ?? [];
    expect(pgid).toBe(pid);
  });

  it('reports a script that killed itself with SIGKILL as signaled 9, exit code -1', async () => {
    const record = await runToEnd(bash('kill -9 $$'));
    expect(record).toEqual({ kind: 'signaled', signal: 9 });
  });

  it('tells a program that cannot be executed apart from a script that exits 127', async () => {
    const failed = await runToEnd(bash('', { program: join(runDir, 'no-such-program'), args: [] }));
    expect(failed).toEqual({ kind: 'exec-failed', errno: 2 });
    expect(await runToEnd(bash('exit 127'))).toEqual({ kind: 'exited', exitCode: 127 });
  });

  it('writes stdout and stderr to their files, appending, and gives the script an empty stdin', async () => {
    writeFileSync(join(runDir, 'stdout'), 'before\n');
    await runToEnd(bash('echo out; echo err >&2; echo "stdin bytes: $(wc -c)"'));
    expect(readFileSync(join(runDir, 'stdout'), 'utf8')).toBe('before\nout\nstdin bytes: 0\n');
    expect(readFileSync(join(runDir, 'stderr'), 'utf8')).toBe('err\n');
  });

  it('gives the script exactly the given environment, and odd values intact as variables and arguments', async () => {
    process.env['RCH_DAEMON_ONLY'] = 'leak';
    const odd = `a b "q" 'x' $(x) \`y\` ; * ü 日本`;
    const env = { PATH: '/usr/bin:/bin', ODD: odd, EMPTY: '' };
    try {
      await runToEnd(bash('', { program: '/usr/bin/env', args: ['-0'], env }));
    } finally {
      delete process.env['RCH_DAEMON_ONLY'];
    }
    const seen = readFileSync(join(runDir, 'stdout'), 'utf8').split('\0').filter(Boolean);
    expect(seen.sort()).toEqual(Object.entries(env).map(([key, value]) => `${key}=${value}`).sort());
    rmSync(join(runDir, 'stdout'));
    await runToEnd(bash('printf "%s|%s" "$1" "$ODD"', { env }, odd));
    expect(readFileSync(join(runDir, 'stdout'), 'utf8')).toBe(`${odd}|${odd}`);
  });

  it('terminates the script, its child and a grandchild that escaped with setsid on request', async () => {
    const marker = `rch-marker-${randomUUID()}`;
    const script = '(exec -a "$0-child" sleep 300) & setsid bash -c \'exec -a "$0" sleep 300\' "$0-escaped" & wait';
    const handle = await launchScript(bash(script, { args: ['-c', script, marker], graceMs: 10_000 }));
    await waitFor(() => findMarked(`${marker}-child`, true).length === 1 && findMarked(`${marker}-escaped`, true).length === 1);
    const asked = Date.now();
    expect(requestTermination(handle.identity)).toBe(true);
    expect(await handle.exited).toEqual({ kind: 'signaled', signal: 15 });
    expect(findMarked(marker)).toEqual([]);
    expect(Date.now() - asked).toBeLessThan(5000); // SIGTERM reached the escapee, no SIGKILL wait
    expect(requestTermination(handle.identity)).toBe(false);
  });

  it('kills the whole run at once, escaped grandchild included, when killRunNow is called', async () => {
    const marker = `rch-marker-${randomUUID()}`;
    const script = '(exec -a "$0-child" sleep 300) & setsid bash -c \'exec -a "$0" sleep 300\' "$0-escaped" & wait';
    const handle = await launchScript(bash(script, { args: ['-c', script, marker] }));
    await waitFor(() => findMarked(`${marker}-child`, true).length === 1 && findMarked(`${marker}-escaped`, true).length === 1);
    killRunNow(handle.identity);
    expect(await handle.exited).toEqual({ kind: 'signaled', signal: 9 });
    expect(findMarked(marker)).toEqual([]);
  });

  it('kills a background grandchild left behind by a script that exited', async () => {
    const marker = `rch-marker-${randomUUID()}`;
    const script = '(exec -a "$0-left" sleep 300) & sleep 0.2; exit 0';
    expect(await runToEnd(bash(script, { args: ['-c', script, marker] }))).toEqual({ kind: 'exited', exitCode: 0 });
    expect(findMarked(marker)).toEqual([]);
  });

  it('SIGKILLs a script that ignores SIGTERM once the grace period is over', async () => {
    const handle = await launchScript(bash('trap "" TERM; echo ready; while :; do sleep 0.05; done', { graceMs: 500 }));
    await waitFor(() => readFileSync(join(runDir, 'stdout'), 'utf8').includes('ready'));
    const asked = Date.now();
    requestTermination(handle.identity);
    expect(await handle.exited).toEqual({ kind: 'signaled', signal: 9 });
    expect(Date.now() - asked).toBeGreaterThanOrEqual(450);
  });

  it('sends SIGTERM only once to a script that traps it, then SIGKILLs it after the grace period', async () => {
    const handle = await launchScript(bash('trap "echo term" TERM; echo ready; while :; do sleep 0.05; done', { graceMs: 500 }));
    await waitFor(() => readFileSync(join(runDir, 'stdout'), 'utf8').includes('ready'));
    requestTermination(handle.identity);
    expect(await handle.exited).toEqual({ kind: 'signaled', signal: 9 });
    expect(readFileSync(join(runDir, 'stdout'), 'utf8')).toBe('ready\nterm\n');
  });

  it('forks every wrapper from one long-lived launcher, not from the calling process', async () => {
    const gate = await makeGate();
    const first = await launchScript(bash(gate.wait));
    const second = await launchScript(bash(gate.wait));
    const parentOf = (pid: number): number => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[1]);
    const launcher = parentOf(first.identity.wrapperPid);
    expect(parentOf(second.identity.wrapperPid)).toBe(launcher);
    expect(launcher).not.toBe(process.pid);
    expect(readFileSync(`/proc/${launcher}/cmdline`, 'utf8').split('\0')).toContain('--launcher');
    await gate.open();
    expect(await first.exited).toEqual({ kind: 'exited', exitCode: 0 });
    expect(await second.exited).toEqual({ kind: 'exited', exitCode: 0 });
  });

  it('keeps the script running after its launcher exits, and a later attach gets its real exit code', async () => {
    const launcher = join(runDir, 'launcher.mjs');
    const gate = await makeGate();
    const launch = bash(`${gate.wait}; exit 7`);
    writeFileSync(launcher, [
      `import { launchScript } from ${JSON.stringify(join(moduleDir, 'runner/process.linux.js'))};`,
      `const handle = await launchScript(${JSON.stringify(launch)});`,
      'process.stdout.write(JSON.stringify(handle.identity), () => process.exit(0));',
    ].join('\n'));
    const { stdout } = await promisify(execFile)(process.execPath, [launcher]);
    const identity = JSON.parse(stdout) as ProcessIdentity;
    expect(isSameProcess(identity.pid, identity.startTime)).toBe(true);
    expect(await readExitRecord(runDir)).toBeUndefined();
    await gate.open();
    expect(await attachScript(runDir, identity, { pollMs: 200 }).exited).toEqual({ kind: 'exited', exitCode: 7 });
  });

  // Issue #6: a wrapper gone without a record (OOM killer, an operator's kill, a disk too full for
  // the record) says nothing of how the script ended: unknown, never a guessed "killed by signal 9".
  it('reports an attached run whose wrapper vanished without a record as unreadable, not as a kill', async () => {
    const sleeper = spawnSleeper();
    const pid = sleeper.pid ?? 0;
    const startTime = readProcessStartTime(pid) ?? '';
    const identity = { wrapperPid: pid, pid, pgid: pid, startTime, wrapperStartTime: startTime };
    const handle = attachScript(runDir, identity, { pollMs: 50 });
    sleeper.kill('SIGKILL');
    const exited = await handle.exited;
    expect(exited).toMatchObject({ kind: 'unreadable' });
    expect(exited.kind === 'unreadable' ? exited.reason : '').toContain('without recording how the script ended');
  });

  it('still reports signaled 9 for an attached run the daemon killed itself (killRunNow)', async () => {
    const sleeper = spawnSleeper();
    const pid = sleeper.pid ?? 0;
    const startTime = readProcessStartTime(pid) ?? '';
    const identity = { wrapperPid: pid, pid, pgid: pid, startTime, wrapperStartTime: startTime };
    const handle = attachScript(runDir, identity, { pollMs: 50 });
    killRunNow(identity);
    expect(await handle.exited).toEqual({ kind: 'signaled', signal: 9 });
  });

  it('reads start times past a command name with spaces and parentheses, and rejects unknown or recycled pids', async () => {
    const oddName = join(runDir, 'a) b (c');
    copyFileSync('/bin/sleep', oddName);
    chmodSync(oddName, 0o755);
    const sleeper = spawnSleeper(oddName);
    const pid = sleeper.pid ?? 0;
    await waitFor(() => readFileSync(`/proc/${pid}/stat`, 'utf8').includes('(a) b (c)'));
    const startTime = readProcessStartTime(pid) ?? '';
    expect(startTime).toBe(readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ').at(-31));
    expect(startTime).toMatch(/^\d+$/);
    expect(isSameProcess(pid, startTime)).toBe(true);
    expect(isSameProcess(pid, String(Number(startTime) - 1))).toBe(false);
    expect(isSameProcess(4_194_304 + 1, startTime)).toBe(false);
    sleeper.kill('SIGKILL');
    await new Promise((resolve) => sleeper.once('exit', resolve));
    expect(isSameProcess(pid, startTime)).toBe(false);
  });

  it('reads the boot id as a UUID', () => {
    expect(readBootId()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });
});
