import { describe, expect, it } from 'vitest';
import { errorCodes, HandlerError } from '../../../src/errors.js';
import { findPowerShell, linuxPowerShell, toPowerShellCandidates, toPowerShellInvocation, toProtectedVariable, windowsPowerShell } from '../../../src/runner/sources/powershell.js';

const flags = ['-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass'];
const quiet = { NO_COLOR: '1', POWERSHELL_TELEMETRY_OPTOUT: '1', POWERSHELL_UPDATECHECK: 'Off' };

describe('PowerShell candidates', () => {
  it('on Linux: pwsh on PATH, the usual install places, then the .NET global tool', () => {
    expect(toPowerShellCandidates({ flavour: linuxPowerShell, env: { PATH: '/usr/local/bin:/bin/', HOME: '/root' } })).toEqual([
      '/usr/local/bin/pwsh',
      '/bin/pwsh',
      '/opt/microsoft/powershell/7/pwsh',
      '/usr/bin/pwsh',
      '/snap/bin/pwsh',
      '/root/.dotnet/tools/pwsh',
    ]);
  });

  it('on Windows: Windows PowerShell first, then pwsh on PATH and in Program Files', () => {
    expect(toPowerShellCandidates({ flavour: windowsPowerShell, env: { SystemRoot: 'D:\\Win', Path: 'C:\\Tools\\;C:\\bin', ProgramFiles: 'C:\\PF' } })).toEqual([
      'D:\\Win\\System32\\WindowsPowerShell\\v1.0\\powershell.exe',
      'C:\\Tools\\pwsh.exe',
      'C:\\bin\\pwsh.exe',
      'C:\\PF\\PowerShell\\7\\pwsh.exe',
    ]);
  });

  it('only the configured executable when there is one (pwsh on Windows)', () => {
    expect(toPowerShellCandidates({ flavour: windowsPowerShell, configured: 'C:\\PS7\\pwsh.exe', env: {} })).toEqual(['C:\\PS7\\pwsh.exe']);
  });

  it('takes the first executable candidate, or fails with a clear −204 naming where it looked', async () => {
    const options = { flavour: linuxPowerShell, env: { PATH: '/a:/b' } } as const;
    expect(await findPowerShell(options, async (path) => path === '/b/pwsh')).toBe('/b/pwsh');
    const error = await findPowerShell(options, async () => false).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HandlerError);
    expect((error as HandlerError).code).toBe(errorCodes.startExecution);
    expect((error as HandlerError).message).toBe(
      'PowerShell 7 (pwsh) is needed to run this PowerShell script but was not found (looked for /a/pwsh, /b/pwsh, /opt/microsoft/powershell/7/pwsh, /usr/bin/pwsh, /snap/bin/pwsh): install it or set RUNCOMMAND_HANDLER_PWSH',
    );
  });
});

describe('PowerShell argument vector', () => {
  const parameters = [{ name: 'Name', value: "it's \"q\" $x; ü" }, { value: 'two words' }, { name: 'Secret', value: 's3cr3t' }, { value: 'p0s' }];

  it('is -File <script> then -Name value and positional values, as separate arguments', () => {
    const invocation = toPowerShellInvocation({ host: '/usr/bin/pwsh', scriptPath: '/run/s.ps1', parameters: parameters.slice(0, 2), protectedCount: 0 });
    expect(invocation).toEqual({ program: '/usr/bin/pwsh', args: [...flags, '-File', '/run/s.ps1', '-Name', "it's \"q\" $x; ü", 'two words'], env: quiet });
  });

  it('keeps protected parameters off the command line: the bootstrap gets them from the environment', () => {
    const invocation = toPowerShellInvocation({ host: 'pwsh', scriptPath: '/run/s.ps1', parameters, protectedCount: 2, bootstrapPath: '/run/rch-invoke.ps1' });
    expect(invocation.args).toEqual([...flags, '-File', '/run/rch-invoke.ps1', '/run/s.ps1', '-Name', "it's \"q\" $x; ü", 'two words']);
    expect(invocation.args.join(' ')).not.toContain('s3cr3t');
    expect(invocation.env).toEqual({ ...quiet, RCH_PS_PROTECTED: `${Buffer.from('Secret').toString('base64')}:${Buffer.from('s3cr3t').toString('base64')};:${Buffer.from('p0s').toString('base64')}` });
  });

  it('builds the Windows command with powershell.exe and the bootstrap (UTF-8 output)', () => {
    const host = 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe';
    const invocation = toPowerShellInvocation({
      host,
      scriptPath: 'C:\\Packages\\Plugins\\X\\runcommand-handler\\runs\\r1\\script.ps1',
      parameters: [{ name: 'RDPPort', value: '3390' }],
      protectedCount: 0,
      bootstrapPath: 'C:\\Packages\\Plugins\\X\\runcommand-handler\\runs\\r1\\rch-invoke.ps1',
    });
    expect([invocation.program, ...invocation.args]).toEqual([
      host,
      '-NoProfile',
      '-NonInteractive',
      '-ExecutionPolicy',
      'Bypass',
      '-File',
      'C:\\Packages\\Plugins\\X\\runcommand-handler\\runs\\r1\\rch-invoke.ps1',
      'C:\\Packages\\Plugins\\X\\runcommand-handler\\runs\\r1\\script.ps1',
      '-RDPPort',
      '3390',
    ]);
    expect(invocation.env).toEqual(quiet);
  });

  it('encodes protected values so that any character survives', () => {
    const value = 'a;b=c\n\u0000é';
    expect(toProtectedVariable([{ value }])).toBe(`:${Buffer.from(value).toString('base64')}`);
    // Names too: any name without '=' or NUL is accepted (run-command.md §1), ';' and ':' included.
    expect(toProtectedVariable([{ name: 'my;odd:name', value: 'v' }])).toBe(`${Buffer.from('my;odd:name').toString('base64')}:${Buffer.from('v').toString('base64')}`);
  });
});
