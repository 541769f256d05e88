// RunAs on Windows: the launcher command line it builds (no password in it), the environment that
// carries the password, and the quoting that rebuilds the script's argv on the other side.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { errorCodes, HandlerError } from '../../src/errors.js';
import { applyRunAs, launcherScript, prepareRunAs, quoteWindowsArgument, toWindowsCommandLine } from '../../src/runner/run-as.windows.js';
import { pwshTestsRun, requirePwsh } from '../helpers/pwsh.js';
import { parseSettings } from '../helpers/settings.js';
import { useTempDir } from '../helpers/temp-dir.js';

const dir = useTempDir('win-runas');

describe('Windows command-line quoting', () => {
  it('quotes only what needs it, escaping quotes and the backslashes before them', () => {
    expect(quoteWindowsArgument('plain')).toBe('plain');
    expect(quoteWindowsArgument('')).toBe('""');
    expect(quoteWindowsArgument('two words')).toBe('"two words"');
    expect(quoteWindowsArgument('say "hi"')).toBe('"say \\"hi\\""');
    expect(quoteWindowsArgument('C:\\dir with space\\')).toBe('"C:\\dir with space\\\\"');
    expect(quoteWindowsArgument('a\\\\"b c')).toBe('"a\\\\\\\\\\"b c"');
    expect(quoteWindowsArgument('C:\\no\\space')).toBe('C:\\no\\space');
    expect(toWindowsCommandLine(['-File', 'C:\\r\\s.ps1', '-Name', "it's $x; ü"])).toBe('-File C:\\r\\s.ps1 -Name "it\'s $x; ü"');
  });
});

describe('Windows RunAs launch', () => {
  const runDir = () => join(dir(), 'run');

  it('needs runAsPassword (−102) and makes a working directory', async () => {
    const withoutPassword = parseSettings({ source: { script: 'x' }, runAsUser: 'alice' });
    const error = await prepareRunAs(withoutPassword, { runId: 'r1', workRoot: dir(), warn: () => undefined }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HandlerError);
    expect((error as HandlerError).code).toBe(errorCodes.runAsLookup);
    const command = parseSettings({ source: { script: 'x' }, runAsUser: 'CONTOSO\\alice' }, { runAsPassword: 'pa ss"wörd' });
    expect(await prepareRunAs(command, { runId: 'r1', workRoot: dir(), warn: () => undefined })).toEqual({ userName: 'CONTOSO\\alice', password: 'pa ss"wörd', workDir: join(dir(), 'r1') });
    expect(await prepareRunAs(parseSettings({ source: { script: 'x' } }), { runId: 'r2', workRoot: dir(), warn: () => undefined })).toBeUndefined();
  });

  it('starts the launcher with user, directory and command line as arguments, the password only in its environment', async () => {
    const { mkdir } = await import('node:fs/promises');
    await mkdir(runDir());
    const launch = {
      runDir: runDir(),
      program: 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe',
      args: ['-NoProfile', '-File', 'C:\\work\\r1\\script.ps1', '-Name', 'a b'],
      env: { SystemRoot: 'C:\\Windows', PATH: 'C:\\Windows' },
      stdoutPath: join(runDir(), 'stdout'),
      stderrPath: join(runDir(), 'stderr'),
      graceMs: 5000,
    };
    const runAs = { userName: 'alice', password: 'S3cr3t "pw"', workDir: 'C:\\work\\r1' };
    const result = await applyRunAs(launch, runAs, { NO_COLOR: '1' });
    expect([result.program, ...result.args]).toEqual([
      'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe',
      '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass',
      '-File', join(runDir(), 'rch-runas.ps1'),
      '-UserName', 'alice',
      '-WorkDir', 'C:\\work\\r1',
      '-Program', 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe',
      '-Arguments', '-NoProfile -File C:\\work\\r1\\script.ps1 -Name "a b"',
    ]);
    expect(JSON.stringify(result.args)).not.toContain('S3cr3t');
    expect(result.env).toEqual({ SystemRoot: 'C:\\Windows', PATH: 'C:\\Windows', NO_COLOR: '1', RCH_RUNAS_PASSWORD: 'S3cr3t "pw"' });
    expect(result.cwd).toBe('C:\\work\\r1');
    expect(await readFile(join(runDir(), 'rch-runas.ps1'), 'utf8')).toBe(`\uFEFF${launcherScript}`);
    expect(launcherScript).toContain('Remove-Item -Path Env:RCH_RUNAS_PASSWORD');
  });
});

// What the launcher's Arguments become on the other side: the C runtime's argv, as .NET parses it.
describe.runIf(pwshTestsRun)('Windows command lines parsed back by .NET', () => {
  it('rebuild the original argument vector', async () => {
    const args = ['plain', '', 'two words', 'say "hi"', 'C:\\dir with space\\', 'a\\\\"b c', "it's $x; ü", '-dash'];
    const script = `$p = New-Object System.Diagnostics.ProcessStartInfo
$p.FileName = 'printf'
$p.Arguments = [Console]::In.ReadToEnd()
$p.UseShellExecute = $false
$p.RedirectStandardOutput = $true
$proc = [System.Diagnostics.Process]::Start($p)
$out = $proc.StandardOutput.ReadToEnd()
$proc.WaitForExit()
[Console]::Out.Write($out)`;
    const result = await execa(requirePwsh(), ['-NoProfile', '-NonInteractive', '-Command', script], { input: toWindowsCommandLine(['[%s]\\n', ...args]) });
    expect(result.stdout.split('\n')).toEqual(args.map((arg) => `[${arg}]`));
  });
});
