// The Windows run wrapper (src/runner/native/rch-exec-win.c, docs/windows-wrapper.md) under Wine:
// real Windows processes, no mocks. Interpreters: cmd.exe (Wine's), probe.exe (test/windows/
// fixtures/probe.c, built with mingw-w64) and, when scripts/build-pwsh-wine.sh has built it, the
// PowerShell 7 console host pwsh.exe from Microsoft.PowerShell.SDK.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { useTempDir } from '../helpers/temp-dir.js';
import { killLeftovers, listLiveProcesses, readText, startWine, startWrapper, toWindowsPath, waitFor, waitForJson, type WineLane } from './wine.js';

const lane = inject('wineLane');
// STATUS_CONTROL_C_EXIT, what the wrapper reports for a run it terminated (unsigned, as node.exe sees it).
const TERMINATED = 0xc000013a;
// What probe.exe spew writes: byte i of a stream is i % 251 (a period no chunk size lines up with).
const pattern = (from: number, to: number): Buffer => Buffer.from(Array.from({ length: to - from }, (_, k) => (from + k) % 251));
const IDENTITY = /^\{"wrapperPid":(\d+),"pid":(\d+),"pgid":(\d+),"startTime":"(\d+)","wrapperStartTime":"(\d+)"\}\n$/;

describe.skipIf(lane === null)('rch-exec.exe under Wine', () => {
  const wine = lane as WineLane;
  const tempDir = useTempDir('win');
  const paths = () => {
    const dir = tempDir();
    return { dir, run: join(dir, 'run'), token: basename(dir) };
  };
  afterEach(() => killLeftovers(basename(tempDir())));

  async function makeRunDir(): Promise<ReturnType<typeof paths>> {
    const p = paths();
    await mkdir(p.run);
    await mkdir(join(p.dir, 'pids'));
    return p;
  }

  async function expectNoSurvivors(token: string): Promise<void> {
    // Wine reaps a killed process's Linux side a moment after Windows reports it gone.
    await waitFor(async () => listLiveProcesses(token), (alive) => alive.length === 0, 10_000);
  }

  it('appends a .cmd script\'s exact stdout and stderr bytes, records exit code 3 and its identity (cmd.exe)', async () => {
    const { dir, run } = await makeRunDir();
    const script = join(dir, 'script.cmd');
    await writeFile(script, '@echo off\r\necho out-line\r\n>&2 echo err-line\r\nexit /b 3\r\n');
    await writeFile(join(run, 'stdout'), 'before\n');
    const { exited } = startWrapper(wine, dir, run, ['cmd.exe', '/d', '/c', toWindowsPath(script)]);
    const result = await exited;
    expect(result.code, result.stderr).toBe(0);
    expect(await readFile(join(run, 'stdout'), 'latin1')).toBe('before\nout-line\r\n');
    expect(await readFile(join(run, 'stderr'), 'latin1')).toBe('err-line\r\n');
    expect(await readFile(join(run, 'exit-status.json'), 'utf8')).toBe('{"exitCode":3}\n');
    const identity = IDENTITY.exec(await readFile(join(run, 'process.json'), 'utf8'));
    expect(identity).not.toBeNull();
    const [, wrapperPid, pid, pgid, startTime, wrapperStartTime] = identity ?? [];
    expect(pgid).toBe(pid);
    expect(wrapperPid).not.toBe(pid);
    expect(BigInt(startTime ?? 0)).toBeGreaterThanOrEqual(BigInt(wrapperStartTime ?? 0));
    expect((await readdir(run)).sort()).toEqual(['exit-status.json', 'process.json', 'stderr', 'stdout']);
  });

  it('with --max-output keeps the head and the tail of each stream and reports exactly what it dropped (probe.exe spew)', async () => {
    const { dir, run } = await makeRunDir();
    await writeFile(join(run, 'stdout'), 'before\n');
    // Cap 4096: per stream a 2048-byte head written through and a 2048-byte tail kept in memory.
    const result = await startWrapper(wine, dir, run, [toWindowsPath(wine.probe), 'spew', '100000', '10000', '1000'], { maxOutput: 4096 }).exited;
    expect(result.code, result.stderr).toBe(0);
    expect(await readFile(join(run, 'stdout'))).toEqual(Buffer.concat([Buffer.from('before\n'), pattern(0, 2048), pattern(100_000 - 2048, 100_000)]));
    expect(await readFile(join(run, 'stderr'))).toEqual(Buffer.concat([pattern(0, 2048), pattern(10_000 - 2048, 10_000)]));
    expect(await readFile(join(run, 'exit-status.json'), 'utf8')).toBe('{"exitCode":5,"output":{"stdoutDropped":95904,"stderrDropped":5904,"lowSpace":false}}\n');
  });

  it('with --max-output relays output under the cap whole, and the record says nothing of it (probe.exe spew, cmd.exe)', async () => {
    const { dir, run } = await makeRunDir();
    const probe = await startWrapper(wine, dir, run, [toWindowsPath(wine.probe), 'spew', '4096', '100', '700'], { maxOutput: 4096 }).exited;
    expect(probe.code, probe.stderr).toBe(0);
    expect(await readFile(join(run, 'stdout'))).toEqual(pattern(0, 4096));
    expect(await readFile(join(run, 'stderr'))).toEqual(pattern(0, 100));
    expect(await readFile(join(run, 'exit-status.json'), 'utf8')).toBe('{"exitCode":5}\n');
    const cmd = join(dir, 'cmd-run');
    await mkdir(cmd);
    const script = join(dir, 'script.cmd');
    await writeFile(script, '@echo off\r\necho out-line\r\n>&2 echo err-line\r\nexit /b 3\r\n');
    const result = await startWrapper(wine, dir, cmd, ['cmd.exe', '/d', '/c', toWindowsPath(script)], { maxOutput: 1 << 20 }).exited;
    expect(result.code, result.stderr).toBe(0);
    expect(await readFile(join(cmd, 'stdout'), 'latin1')).toBe('out-line\r\n');
    expect(await readFile(join(cmd, 'stderr'), 'latin1')).toBe('err-line\r\n');
    expect(await readFile(join(cmd, 'exit-status.json'), 'utf8')).toBe('{"exitCode":3}\n');
  });

  it('passes arguments with spaces, quotes, backslashes, non-ASCII and empty ones through intact (probe.exe echo)', async () => {
    const { dir, run } = await makeRunDir();
    const args = ['plain', 'two words', '', 'q"uote', '"', '""', 'back\\slash', 'trail\\', 'trail two\\', 'slash-quote\\"x', '\\\\server\\share\\', 'tab\there', 'välue 日本 😀', '*', '%PATH%', '^&|<>'];
    const result = await startWrapper(wine, dir, run, [toWindowsPath(wine.probe), 'echo', ...args]).exited;
    expect(result.code, result.stderr).toBe(0);
    expect(await readFile(join(run, 'stdout'), 'utf8')).toBe(args.map((arg) => `[${arg}]\n`).join(''));
    expect(await readFile(join(run, 'exit-status.json'), 'utf8')).toBe('{"exitCode":0}\n');
  });

  it('joins the arguments unquoted with --verbatim-args, as cmd.exe /s /c "..." needs (cmd.exe)', async () => {
    const { dir, run } = await makeRunDir();
    const result = await startWrapper(wine, dir, run, ['cmd.exe', '/d', '/s', '/c', '"echo x  "y" & exit 300"'], { verbatim: true }).exited;
    expect(result.code, result.stderr).toBe(0);
    expect(await readFile(join(run, 'stdout'), 'latin1')).toBe('x  "y" \r\n');
    expect(await readFile(join(run, 'exit-status.json'), 'utf8')).toBe('{"exitCode":300}\n');
  });

  it('reports {"execError":2} and no identity when the program does not exist', async () => {
    const { dir, run } = await makeRunDir();
    const result = await startWrapper(wine, dir, run, [toWindowsPath(join(dir, 'missing.exe'))]).exited;
    expect(result.code, result.stderr).toBe(0);
    expect(await readFile(join(run, 'exit-status.json'), 'utf8')).toBe('{"execError":2}\n');
    expect(await readText(join(run, 'process.json'))).toBeUndefined();
  });

  it('claims its launch (--launch-nonce) before the script starts, and starts nothing when the name is taken by a fence (hardening #5)', async () => {
    const { dir, run } = await makeRunDir();
    const nonce = '0123abcd';
    const claimed = await startWine(wine, wine.wrapper, ['--launch-nonce', nonce, '--grace-ms', '0', toWindowsPath(run), 'cmd.exe', '/d', '/c', 'exit /b 4'], dir).exited;
    expect(claimed.code, claimed.stderr).toBe(0);
    expect(await readFile(join(run, 'exit-status.json'), 'utf8')).toBe('{"exitCode":4}\n');
    expect((await readdir(run)).sort()).toContain(`rch-launch-${nonce}`);
    const fenced = join(dir, 'fenced');
    await mkdir(join(fenced, 'rch-launch-ffff'), { recursive: true });
    const marker = join(dir, 'ran.txt');
    const result = await startWine(wine, wine.wrapper, ['--launch-nonce', 'ffff', '--grace-ms', '0', toWindowsPath(fenced), 'cmd.exe', '/d', '/c', `echo ran > ${toWindowsPath(marker)}`], dir).exited;
    expect(result.code).toBe(75);
    expect(await readText(marker)).toBeUndefined();
    expect(await readdir(fenced)).toEqual(['rch-launch-ffff']);
  });

  it('reports {"execError":5} when <run-dir>\\stdout cannot be opened (it is a directory)', async () => {
    const { dir, run } = await makeRunDir();
    await mkdir(join(run, 'stdout'));
    const result = await startWrapper(wine, dir, run, ['cmd.exe', '/d', '/c', 'exit 0']).exited;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('rch-exec: cannot start the script: error 5');
    expect(await readFile(join(run, 'exit-status.json'), 'utf8')).toBe('{"execError":5}\n');
  });

  it('on a terminate-request kills the whole tree (script -> child -> grandchild) and writes exit-status.json (cmd.exe, probe.exe tree)', async () => {
    const { dir, run, token } = await makeRunDir();
    const script = join(dir, 'tree.cmd');
    await writeFile(script, `@"${toWindowsPath(wine.probe)}" tree "${toWindowsPath(join(dir, 'pids'))}" 2\r\n`);
    const { exited } = startWrapper(wine, dir, run, ['cmd.exe', '/d', '/c', toWindowsPath(script)], { graceMs: 1000 });
    await waitForJson(join(run, 'process.json'));
    await waitFor(() => readText(join(dir, 'pids', 'pid-0')), (pid) => pid !== undefined);
    // The wrapper, cmd.exe and three probes (the console host's command line does not hold the token).
    expect(listLiveProcesses(token).length).toBeGreaterThanOrEqual(5);
    await writeFile(join(run, 'terminate-request'), '');
    const status = await waitForJson(join(run, 'exit-status.json'));
    expect(status.value).toEqual({ exitCode: TERMINATED });
    expect((await exited).code).toBe(0);
    await expectNoSurvivors(token);
  });

  it('stops descendants left behind by a script that exited by itself, before writing exit-status.json', async () => {
    const { dir, run, token } = await makeRunDir();
    const script = join(dir, 'leave.cmd');
    const probe = toWindowsPath(wine.probe);
    const go = join(dir, 'go');
    await writeFile(script, `@start "" /b "${probe}" tree "${toWindowsPath(join(dir, 'pids'))}" 1\r\n@"${probe}" wait-file "${toWindowsPath(go)}" 4\r\n`);
    const { exited } = startWrapper(wine, dir, run, ['cmd.exe', '/d', '/c', toWindowsPath(script)], { graceMs: 500 });
    await waitFor(() => readText(join(dir, 'pids', 'pid-0')), (pid) => pid !== undefined);
    // A watcher outside the job sees how the leftover ended: TerminateJobObject gives it the wrapper's
    // code, whereas the job handle closing when the wrapper exits would give 0.
    const watcher = startWine(wine, wine.probe, ['watch', toWindowsPath(join(dir, 'pids', 'pid-1'))], dir);
    await waitFor(watcher.readStdout, (text) => text === 'watching\n');
    await writeFile(go, '');
    const result = await exited;
    expect(result.code, result.stderr).toBe(0);
    expect(await readFile(join(run, 'exit-status.json'), 'utf8')).toBe('{"exitCode":4}\n');
    expect((await watcher.exited).stdout).toBe(`watching\nexit ${TERMINATED}\n`);
    await expectNoSurvivors(token);
  });

  it('does not let a child escape with CREATE_BREAKAWAY_FROM_JOB (probe.exe breakaway)', async () => {
    const { dir, run, token } = await makeRunDir();
    const { exited } = startWrapper(wine, dir, run, [toWindowsPath(wine.probe), 'breakaway', toWindowsPath(join(dir, 'pids'))], { graceMs: 500 });
    const line = await waitFor(() => readText(join(run, 'stdout')), (text) => text?.includes('\n') === true);
    // ERROR_ACCESS_DENIED: the job has neither BREAKAWAY_OK nor SILENT_BREAKAWAY_OK.
    expect(line).toBe('breakaway: failed 5\n');
    await writeFile(join(run, 'terminate-request'), '');
    expect((await waitForJson(join(run, 'exit-status.json'))).value).toEqual({ exitCode: TERMINATED });
    expect((await exited).code).toBe(0);
    await expectNoSurvivors(token);
  });

  it('keeps running and still writes exit-status.json when the process that started it is killed (probe.exe launch, as node spawn detached)', async () => {
    const { dir, run, token } = await makeRunDir();
    const go = join(dir, 'go');
    const wrapperArgs = ['--grace-ms', '1000', toWindowsPath(run), toWindowsPath(wine.probe), 'wait-file', toWindowsPath(go), '5'];
    const launcher = startWine(wine, wine.probe, ['launch', toWindowsPath(wine.wrapper), ...wrapperArgs], dir);
    const identity = await waitForJson(join(run, 'process.json'));
    const printed = await waitFor(launcher.readStdout, (text) => text.endsWith('\n'));
    expect(Number(printed.trim())).toBe(identity.value['wrapperPid']);
    launcher.child.kill('SIGKILL');
    expect((await launcher.exited).signal).toBe('SIGKILL');
    const alive = listLiveProcesses(token).map((entry) => entry.args);
    expect(alive.some((args) => args.includes('rch-exec.exe'))).toBe(true);
    expect(alive.some((args) => args.includes('wait-file'))).toBe(true);
    await writeFile(go, '');
    expect((await waitForJson(join(run, 'exit-status.json'))).text).toBe('{"exitCode":5}\n');
    await expectNoSurvivors(token);
  });

  describe.skipIf((lane?.pwsh ?? '') === '')('with PowerShell (pwsh.exe console host from Microsoft.PowerShell.SDK)', () => {
    it.each([
      ['into its output files', undefined],
      ['through the relay\'s pipes (--max-output)', 1 << 20],
    ])('runs a .ps1 with a non-ASCII, quoted parameter %s: exact UTF-8 stdout and stderr, exit code 3 (pwsh.exe)', async (_how, maxOutput) => {
      const { dir, run } = await makeRunDir();
      const script = join(dir, 'script.ps1');
      await writeFile(script, [
        'param([string]$Name)',
        '[Console]::OutputEncoding = [System.Text.UTF8Encoding]::new($false)',
        'Write-Output "hello $Name"',
        '[Console]::Error.WriteLine("err-line")',
        'exit 3',
        '',
      ].join('\r\n'));
      const command = [toWindowsPath(wine.pwsh), '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File', toWindowsPath(script), '-Name', 'välue 日本 "q"'];
      const result = await startWrapper(wine, dir, run, command, maxOutput === undefined ? {} : { maxOutput }).exited;
      expect(result.code, result.stderr).toBe(0);
      expect(await readFile(join(run, 'stdout'), 'utf8')).toBe('hello välue 日本 "q"\r\n');
      expect(await readFile(join(run, 'stderr'), 'utf8')).toBe('err-line\r\n');
      expect(await readFile(join(run, 'exit-status.json'), 'utf8')).toBe('{"exitCode":3}\n');
    });

    it('on a terminate-request kills a script that Start-Process\'d a tree, and everything under it (pwsh.exe, probe.exe tree)', async () => {
      const { dir, run, token } = await makeRunDir();
      const script = join(dir, 'hang.ps1');
      const pids = toWindowsPath(join(dir, 'pids'));
      await writeFile(script, `Start-Process -NoNewWindow -FilePath '${toWindowsPath(wine.probe)}' -ArgumentList 'tree','${pids}','1'\r\nStart-Sleep -Seconds 300\r\n`);
      const command = [toWindowsPath(wine.pwsh), '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File', toWindowsPath(script)];
      const { exited } = startWrapper(wine, dir, run, command, { graceMs: 1000 });
      await waitFor(() => readText(join(dir, 'pids', 'pid-0')), (pid) => pid !== undefined);
      await writeFile(join(run, 'terminate-request'), '');
      expect((await waitForJson(join(run, 'exit-status.json'))).value).toEqual({ exitCode: TERMINATED });
      expect((await exited).code).toBe(0);
      await expectNoSurvivors(token);
    });
  });
});
