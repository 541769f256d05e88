import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { errorCodes, HandlerError } from '../../src/errors.js';
import { linuxPlatform } from '../../src/platform/linux.js';
import { windowsPlatform } from '../../src/platform/windows.js';
import { prepareScript, type ScriptSourceDeps } from '../../src/runner/prepare-script.js';
import { serve, startLoopbackServer, type LoopbackServer } from '../helpers/loopback-http.js';
import { parseSettings } from '../helpers/settings.js';
import { useTempDir } from '../helpers/temp-dir.js';

const dir = useTempDir('prepare');
const fakePwsh = '/opt/test/pwsh';
let server: LoopbackServer;
let warnings: string[];

beforeEach(async () => {
  server = await startLoopbackServer();
  warnings = [];
});
afterEach(async () => {
  await server.close();
});

function prepare(publicSettings: unknown, protectedSettings?: unknown, sources: Partial<ScriptSourceDeps> = {}) {
  const command = parseSettings(publicSettings, protectedSettings);
  const deps: ScriptSourceDeps = { scripts: linuxPlatform.scripts, powerShell: '/bin/true', download: { bounds: { attempts: 1, totalMs: 5000 } }, ...sources };
  return prepareScript(command, dir(), { warn: (m) => warnings.push(m), sources: deps });
}

async function errorOf(promise: Promise<unknown>): Promise<HandlerError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(HandlerError);
  return error as HandlerError;
}

describe('prepareScript on Linux', () => {
  it('writes an inline script and runs it with bash, named parameters in the environment', async () => {
    const prepared = await prepare({ source: { script: 'echo "$A $1"' }, parameters: [{ name: 'A', value: 'x' }, { value: 'y' }] });
    expect(prepared).toEqual({ scriptPath: join(dir(), 'script.sh'), program: '/bin/bash', args: [join(dir(), 'script.sh'), 'y'], env: { A: 'x' } });
  });

  it('passes a named parameter a shell cannot reference as an environment variable all the same (Compat)', async () => {
    const prepared = await prepare({ source: { script: 'env' }, parameters: [{ name: 'my-param', value: 'x' }, { name: '1st', value: 'y' }] });
    expect(prepared.env).toEqual({ 'my-param': 'x', '1st': 'y' });
    expect(prepared.args).toEqual([join(dir(), 'script.sh')]);
  });

  it('warns that an unnamed protected parameter is visible in the process table', async () => {
    await prepare({ source: { script: 'true' } }, { protectedParameters: [{ value: 'hidden' }] });
    expect(warnings).toEqual([expect.stringMatching(/^unnamed protected parameter at position 1 is passed as an argument/)]);
  });

  it('downloads scriptUri and runs a #! script with its own interpreter', async () => {
    server.route('/c/tool', serve('#!/bin/sh\r\necho hi\r\n'));
    const prepared = await prepare({ source: { scriptUri: `${server.origin}/c/tool` } });
    expect(prepared.program).toBe(join(dir(), 'tool'));
    expect(await readFile(join(dir(), 'tool'), 'utf8')).toBe('#!/bin/sh\necho hi\n');
    expect((await stat(join(dir(), 'tool'))).mode & 0o777).toBe(0o700);
  });

  it('runs a downloaded .ps1 with PowerShell', async () => {
    server.route('/s.ps1', serve('Write-Host hi'));
    const prepared = await prepare({ source: { scriptUri: `${server.origin}/s.ps1` }, parameters: [{ name: 'P', value: 'v' }] });
    expect(prepared.program).toBe('/bin/true');
    expect(prepared.args.slice(-4)).toEqual(['-File', join(dir(), 's.ps1'), '-P', 'v']);
    expect(prepared.env).not.toHaveProperty('P');
  });

  it('copies a built-in command and runs source.script for RunShellScript / RunPowerShellScript', async () => {
    expect(await prepare({ source: { commandId: 'ifconfig' } })).toMatchObject({ program: join(dir(), 'ifconfig.sh'), args: [] });
    expect(await readFile(join(dir(), 'ifconfig.sh'), 'utf8')).toContain('ip address show');
    const shell = await prepare({ source: { commandId: 'RunShellScript', script: 'echo shell' } });
    expect(shell.scriptPath).toBe(join(dir(), 'script.sh'));
    const ps = await prepare({ source: { commandId: 'runPowerShellScript', script: 'Write-Output 1' } });
    expect(ps.scriptPath).toBe(join(dir(), 'script.ps1'));
    expect(ps.program).toBe('/bin/true');
  });

  it('refuses an unknown or Windows-only command id with −202 listing the Linux ids', async () => {
    const error = await errorOf(prepare({ source: { commandId: 'DisableNLA' } }));
    expect(error.code).toBe(errorCodes.invalidSettings);
    expect(error.message).toBe("source.commandId: 'DisableNLA' is a windows command; available on linux: RunShellScript, ifconfig, RunPowerShellScript");
  });

  it('requires source.script for RunShellScript', async () => {
    expect((await errorOf(prepare({ source: { commandId: 'RunShellScript' } }))).message).toBe('source.script: is required with source.commandId RunShellScript');
  });

  it('downloads artifacts next to the script, and fails −215 when one is missing', async () => {
    server.route('/a/data.bin', serve('data'));
    await prepare({ source: { script: 'cat Artifact1' }, artifacts: [{ id: 1, uri: `${server.origin}/a/data.bin` }] }, { artifacts: [{ id: 1, sasToken: 'sig=x' }] });
    // Compat (run-command.md §3): without fileName an artifact is saved as Artifact<id>.
    expect((await readdir(dir())).sort()).toEqual(['Artifact1', 'script.sh']);
    const error = await errorOf(prepare({ source: { script: 'true' }, artifacts: [{ id: 'x', uri: `${server.origin}/a/gone` }] }));
    expect(error.code).toBe(errorCodes.artifactDownload);
  });

  it('fails −100 when scriptUri cannot be downloaded', async () => {
    const error = await errorOf(prepare({ source: { scriptUri: `${server.origin}/nope.sh?sig=SECRET` } }));
    expect(error.code).toBe(errorCodes.scriptDownload);
    expect(error.message).toBe(`Failed to download the script: could not download ${server.origin}/nope.sh: with the SAS in the URL: HTTP 404 Not Found; anonymously: HTTP 404 Not Found`);
  });

  it('fails −204 with a clear message when pwsh is missing', async () => {
    const error = await errorOf(prepare({ source: { commandId: 'RunPowerShellScript', script: 'Write-Output 1' } }, undefined, { powerShell: '/nonexistent/pwsh' }));
    expect(error.code).toBe(errorCodes.startExecution);
    expect(error.message).toBe(
      'PowerShell 7 (pwsh) is needed to run this PowerShell script but was not found (looked for /nonexistent/pwsh): RUNCOMMAND_HANDLER_PWSH names no executable',
    );
  });
});

describe('prepareScript on Windows', () => {
  const windows = { scripts: windowsPlatform.scripts, powerShell: '/bin/true' } as const;

  it('runs inline scripts as PowerShell through the bootstrap, the script with a UTF-8 BOM', async () => {
    const prepared = await prepare({ source: { script: 'Write-Host "ü"' }, parameters: [{ name: 'N', value: 'v' }] }, undefined, windows);
    expect(prepared.args).toEqual(['-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File', join(dir(), 'rch-invoke.ps1'), join(dir(), 'script.ps1'), '-N', 'v']);
    expect(await readFile(join(dir(), 'script.ps1'), 'utf8')).toBe('\uFEFFWrite-Host "ü"');
  });

  it('copies a Windows built-in command', async () => {
    const prepared = await prepare({ source: { commandId: 'SetRDPPort' }, parameters: [{ name: 'RDPPort', value: '3390' }] }, undefined, windows);
    expect(prepared.scriptPath).toBe(join(dir(), 'SetRDPPort.ps1'));
    expect(prepared.args.slice(-2)).toEqual(['-RDPPort', '3390']);
    expect(await readFile(prepared.scriptPath, 'utf8')).toMatch(/^\uFEFF# Built-in command SetRDPPort/);
  });

  it('refuses a downloaded script that is not .ps1', async () => {
    server.route('/s.sh', serve('echo'));
    const error = await errorOf(prepare({ source: { scriptUri: `${server.origin}/s.sh` } }, undefined, windows));
    expect(error.message).toBe("source.scriptUri: only PowerShell (.ps1) scripts run on Windows, got '.sh'");
  });
});
