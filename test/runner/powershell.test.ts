// PowerShell scripts run for real under pwsh by an in-process daemon: parameters, exit codes,
// streams, timeouts (run-command.md §4).
import { readdir, readFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { disposeHarness, findProcesses, makeHarness, waitFor, waitForTerminal, writeSettings, type Harness } from '../helpers/daemon-harness.js';
import { pwshTestsRun, requirePwsh } from '../helpers/pwsh.js';

let harness: Harness | undefined;

afterEach(async () => {
  if (harness) await disposeHarness(harness);
  harness = undefined;
});

async function start(env: Record<string, string> = {}): Promise<Harness> {
  harness = await makeHarness({ RUNCOMMAND_HANDLER_PWSH: requirePwsh(), ...env });
  await harness.daemon.start();
  return harness;
}

const powershell = (script: string) => ({ source: { commandId: 'RunPowerShellScript', script } });
const hostile = [`it's "double" $HOME; rm -rf / `, 'ünïcödé € 日本', '-dash', '  spaced  '];

async function argvContaining(needle: string): Promise<string[]> {
  const hits: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(needle)) hits.push(cmdline.replaceAll('\0', ' '));
  }
  return hits;
}

describe.runIf(pwshTestsRun)('PowerShell scripts under pwsh', () => {
  it('passes named and unnamed parameters with hostile values intact, as -Name value and positional arguments', async () => {
    const h = await start();
    const script = `param($First, $Second)
Write-Output "[$First][$Second][$($args -join '][')]"
exit 3`;
    await writeSettings(h, 'params', 0, {
      ...powershell(script),
      parameters: [{ name: 'First', value: hostile[0] }, { value: hostile[1] }, { name: 'Second', value: hostile[2] }, { value: hostile[3] }],
    });
    const status = await waitForTerminal(h, 'params', 0);
    expect(status.view).toMatchObject({ executionState: 'Failed', exitCode: 3, output: `[${hostile[0]}][${hostile[2]}][${hostile[1]}][${hostile[3]}]\n`, error: '' });
  });

  it('keeps protected parameters off every command line and hides the bootstrap from the script', async () => {
    const h = await start();
    const canary = `CANARY${Date.now()}z`;
    const script = `param($Public, $Secret)
Start-Sleep -Milliseconds 1500
Write-Output "[$Public][$Secret][$($args -join '][')][$env:RCH_PS_PROTECTED][$rchNamed]"`;
    await writeSettings(h, 'secret', 0, { ...powershell(script), parameters: [{ name: 'Public', value: 'pub' }, { value: 'pos' }] }, {
      protectedParameters: [{ name: 'Secret', value: `${canary} "q" $x` }, { value: `${canary}-positional` }],
    });
    await waitFor(() => argvContaining('rch-invoke.ps1'), (hits) => hits.length > 0, 10_000);
    expect(await argvContaining(canary)).toEqual([]);
    const status = await waitForTerminal(h, 'secret', 0);
    expect(status.view.output).toBe(`[pub][${canary} "q" $x][pos][${canary}-positional][][]\n`);
    expect(h.lines.join('\n')).not.toContain(canary);
  });

  it('reports exit codes: exit N, a terminating error, and success despite Write-Error', async () => {
    const h = await start();
    await writeSettings(h, 'exit', 0, powershell('exit 42'));
    await writeSettings(h, 'throw', 0, powershell('Write-Output before; throw "boom"; Write-Output after'));
    await writeSettings(h, 'soft', 0, powershell('Write-Error "soft failure"; Write-Output "still here"'));
    expect((await waitForTerminal(h, 'exit', 0)).view).toMatchObject({ executionState: 'Failed', exitCode: 42 });
    const thrown = (await waitForTerminal(h, 'throw', 0)).view;
    expect(thrown).toMatchObject({ executionState: 'Failed', exitCode: 1, output: 'before\n' });
    expect(thrown.error).toContain('boom');
    const soft = (await waitForTerminal(h, 'soft', 0)).view;
    expect(soft).toMatchObject({ executionState: 'Succeeded', exitCode: 0, output: 'still here\n' });
    expect(soft.error).toContain('soft failure');
  });

  it('captures Write-Host and Write-Output as UTF-8 on stdout, and stderr without colour codes', async () => {
    const h = await start();
    await writeSettings(h, 'streams', 0, powershell('Write-Host "host ü €"; Write-Output "out 日本"; [Console]::Error.WriteLine("err ï"); Write-Error "bad"'));
    const view = (await waitForTerminal(h, 'streams', 0)).view;
    expect(view.output).toBe('host ü €\nout 日本\n');
    expect(view.error.startsWith('err ï\n')).toBe(true);
    expect(view.error).toContain('Write-Error: bad');
    expect(view.error).not.toContain('\u001b[');
  });

  it('kills pwsh and its children at the timeout: TimedOut, nothing left', async () => {
    const h = await start();
    const marker = `rch-ps-timeout-${process.pid}-${Date.now()}`;
    const script = `Start-Process -FilePath sh -ArgumentList '-c "sleep 300; : ${marker}"'
& sh -c 'sleep 300; : ${marker}'`;
    // The limit must leave pwsh time to start both children even at half speed (≈ 5 s there).
    await writeSettings(h, 'slow', 0, { ...powershell(script), timeoutInSeconds: 15 });
    await waitFor(() => findProcesses(marker), (pids) => pids.length >= 2, 15_000);
    const status = await waitForTerminal(h, 'slow', 0, 45_000);
    expect(status.view).toMatchObject({ executionState: 'TimedOut', exitCode: -1 });
    expect(await findProcesses(marker)).toEqual([]);
  });

  it('fails with a clear status when pwsh is missing', async () => {
    const h = await start({ RUNCOMMAND_HANDLER_PWSH: '/nonexistent/pwsh' });
    await writeSettings(h, 'nopwsh', 0, powershell('Write-Output 1'));
    const status = await waitForTerminal(h, 'nopwsh', 0);
    // run-command.md §6 (12-01): a run that ended is top-level success, however it failed (Compat).
    expect(status.status).toBe('success');
    expect(status.view.exitCode).toBe(-204);
    expect(status.view.executionMessage).toContain('PowerShell 7 (pwsh) is needed to run this PowerShell script but was not found');
  });
});
