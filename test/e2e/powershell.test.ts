// PowerShell through the packaged handler under the guest-agent simulator (issue 7): the built-in
// RunPowerShellScript with parameters, and a .ps1 from a scriptUri, both run by pwsh.
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupLayout, makeAgentLayout, runCommand, waitForStatus, writeSettings, type AgentLayout, type StatusReport, isTerminalReport } from '../helpers/agent.js';
import { serve, startLoopbackServer, type LoopbackServer } from '../helpers/loopback-http.js';
import { pwshTestsRun, requirePwsh } from '../helpers/pwsh.js';

let layout: AgentLayout | undefined;
let server: LoopbackServer | undefined;

afterEach(async () => {
  if (layout) await cleanupLayout(layout);
  await server?.close();
  layout = undefined;
  server = undefined;
});

const terminal = isTerminalReport;

async function installedWithPwsh(): Promise<{ layout: AgentLayout; extra: Record<string, string> }> {
  const extra = { RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS: '300', RUNCOMMAND_HANDLER_PWSH: requirePwsh() };
  layout = await makeAgentLayout();
  expect((await runCommand(layout, 'install', { extra })).exitCode).toBe(0);
  return { layout, extra };
}

describe.runIf(pwshTestsRun)('PowerShell in the packaged handler', () => {
  // Budget: pwsh starts in ≈ 2 s here, ≈ 20 s at half speed under load; three times that.
  it('runs RunPowerShellScript with named, positional and protected parameters and reports its exit code', async () => {
    const { layout, extra } = await installedWithPwsh();
    const script = `param([string] $Greeting, [string] $Token)
Write-Host "$Greeting|$($args[0])|$($Token.Length)"
[Console]::Error.WriteLine('to stderr')
exit 3`;
    await writeSettings(layout, 'ps', 0, {
      publicSettings: {
        source: { commandId: 'RunPowerShellScript', script },
        parameters: [{ name: 'Greeting', value: `hëllo "world" $env:HOME; exit 9` }, { value: 'second arg' }],
      },
      protectedSettings: { protectedParameters: [{ name: 'Token', value: 'twelve-chars' }] },
    });
    expect((await runCommand(layout, 'enable', { name: 'ps', seq: 0, extra })).exitCode).toBe(0);
    const report = await waitForStatus(layout, 'ps', 0, terminal, 60_000);
    expect(report.topStatus.status.status).toBe('success');
    expect(report.instanceView).toMatchObject({
      executionState: 'Failed',
      exitCode: 3,
      output: `hëllo "world" $env:HOME; exit 9|second arg|12\n`,
      error: 'to stderr\n',
    });
  }, 120_000);

  // Budget: pwsh starts in ≈ 2 s here, ≈ 20 s at half speed under load; three times that.
  it('runs a .ps1 downloaded from scriptUri with pwsh', async () => {
    const { layout, extra } = await installedWithPwsh();
    server = await startLoopbackServer();
    server.route('/s/hello.ps1', serve(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('param($Name)\r\nWrite-Output "Hello $Name from $($PSVersionTable.PSEdition)"\r\n', 'utf16le')])));
    await writeSettings(layout, 'psuri', 0, {
      publicSettings: { source: { scriptUri: `${server.origin}/s/hello.ps1` }, parameters: [{ name: 'Name', value: 'Wörld' }] },
    });
    expect((await runCommand(layout, 'enable', { name: 'psuri', seq: 0, extra })).exitCode).toBe(0);
    const report = await waitForStatus(layout, 'psuri', 0, terminal, 60_000);
    expect(report.instanceView).toMatchObject({ executionState: 'Succeeded', exitCode: 0, output: 'Hello Wörld from Core\n' });
  }, 120_000);
});
