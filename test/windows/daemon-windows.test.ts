// The whole handler on Windows, under Wine: the Windows zip installed by the agent simulator
// playing the Windows agent (test/windows/agent-windows.ts), its .cmd commands run through cmd.exe,
// the daemon started detached by `enable` (node.exe), scripts run under rch-exec.exe, and the
// status files read back and validated as the Linux e2e does (test/helpers/agent-status.ts).
// Interpreter: every script is PowerShell — the pwsh.exe stand-in of the lane (a console host
// built from Microsoft.PowerShell.SDK, shared/windows-under-wine.md §1), given to the handler with
// RUNCOMMAND_HANDLER_PWSH since Wine has no Windows PowerShell 5.1 (powershell.exe). The handler's
// own commands are the .cmd shim, run by Wine's cmd.exe.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { cleanupLayout, runCommand, waitForStatus, writeSettings, isTerminalReport, type AgentLayout, type CommandResult } from '../helpers/agent.js';
import { makeWindowsAgentLayout } from './agent-windows.js';
import { listLiveProcesses, toWindowsPath, type WineLane } from './wine.js';

const lane = inject('wineLane');
const made = inject('windowsPackage');

describe.skipIf(lane === null || made === null)('the Windows handler under Wine, driven by the agent simulator', () => {
  const wine = lane as WineLane;
  let layout: AgentLayout;
  let extra: Record<string, string>;

  beforeAll(async () => {
    if (wine.pwsh === '') throw new Error('no pwsh.exe for Wine (scripts/build-pwsh-wine.sh or RCH_PWSH_WINE): the daemon lane needs it');
    layout = await makeWindowsAgentLayout(wine, made?.zipPath ?? '');
    extra = {
      RUNCOMMAND_HANDLER_PWSH: toWindowsPath(wine.pwsh),
      RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS: '500',
      RUNCOMMAND_HANDLER_KILL_GRACE_MS: '1000',
    };
    const install = await runCommand(layout, 'install', { extra });
    expect(install.exitCode, explain(install)).toBe(0);
  }, 180_000);
  afterAll(async () => {
    if (layout) await cleanupLayout(layout);
  }, 180_000);

  function explain(result: CommandResult): string {
    return `exit ${result.exitCode}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`;
  }

  async function enable(name: string, seq: number, publicSettings: object): Promise<void> {
    await writeSettings(layout, name, seq, { publicSettings });
    const result = await runCommand(layout, 'enable', { name, seq, extra });
    expect(result.exitCode, explain(result)).toBe(0);
  }

  it('enable starts the daemon, which runs a PowerShell script that prints and exits with a code', async () => {
    await enable('hello', 1, { source: { script: 'Write-Output "hello from $($PSVersionTable.PSEdition)"; [Console]::Error.WriteLine("to stderr"); exit 7' } });
    const report = await waitForStatus(layout, 'hello', 1, isTerminalReport, 90_000);
    expect(report.instanceView).toMatchObject({ executionState: 'Failed', exitCode: 7, output: 'hello from Core\n', error: 'to stderr\n' });
    expect(listLiveProcesses('cli.js" daemon').length + listLiveProcesses('cli.js daemon').length).toBeGreaterThan(0);
  });
});
