// Script sources through the packaged handler under the guest-agent simulator (issue 7):
// scriptUri with a SAS (retried, normalised, never logged), artifacts, built-in commands.
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupLayout, makeAgentLayout, runCommand, waitForStatus, writeSettings, type AgentLayout, type StatusReport, isTerminalReport } from '../helpers/agent.js';
import { serve, startLoopbackServer, type LoopbackServer } from '../helpers/loopback-http.js';
import { findFilesContaining } from '../helpers/scan.js';

const fast = { RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS: '300', RUNCOMMAND_HANDLER_KILL_GRACE_MS: '1000' };
let layout: AgentLayout | undefined;
let server: LoopbackServer | undefined;

afterEach(async () => {
  if (layout) await cleanupLayout(layout);
  await server?.close();
  layout = undefined;
  server = undefined;
});

const terminal = isTerminalReport;

async function installed(): Promise<AgentLayout> {
  layout = await makeAgentLayout();
  const install = await runCommand(layout, 'install', { extra: fast });
  expect(install.exitCode, install.stderr).toBe(0);
  return layout;
}

async function enable(name: string, seq: number): Promise<void> {
  const result = await runCommand(installedLayout(), 'enable', { name, seq, extra: fast });
  expect(result.exitCode, result.stderr).toBe(0);
}

function installedLayout(): AgentLayout {
  if (!layout) throw new Error('not installed');
  return layout;
}


describe('script sources in the packaged handler', () => {
  it('downloads scriptUri with its SAS after a 500, normalises it, fetches an artifact, and never writes the SAS', async () => {
    await installed();
    server = await startLoopbackServer();
    const sig = `SIG${Date.now()}canary`;
    server.route('/scripts/deploy.sh', (req, res, hit) => {
      if (hit === 1) return res.writeHead(500).end();
      if (!req.url?.includes(`sig=${sig}`)) return res.writeHead(403).end();
      // Compat (run-command.md §3): an artifact without fileName is saved as Artifact<id>.
      return res.writeHead(200).end('\uFEFFecho "from uri: $(cat Artifactcfg)"\r\necho "named=$WHO"\r\n');
    });
    server.route('/artifacts/config.txt', (req, res) => res.writeHead(req.url?.includes(`sig=${sig}`) ? 200 : 403).end('artifact-data'));
    await writeSettings(installedLayout(), 'fromuri', 0, {
      publicSettings: {
        source: { scriptUri: `${server.origin}/scripts/deploy.sh` },
        parameters: [{ name: 'WHO', value: 'me' }],
        artifacts: [{ id: 'cfg', uri: `${server.origin}/artifacts/config.txt` }],
      },
      protectedSettings: { sourceSASToken: `?sv=2024-01-01&sr=b&sig=${sig}`, artifacts: [{ id: 'cfg', sasToken: `sv=1&sig=${sig}` }] },
    });
    await enable('fromuri', 0);
    const report = await waitForStatus(installedLayout(), 'fromuri', 0, terminal);
    expect(report.instanceView).toMatchObject({ executionState: 'Succeeded', exitCode: 0, output: 'from uri: artifact-data\nnamed=me\n', error: '' });
    expect(server.seen.filter((s) => s.path === '/scripts/deploy.sh')).toHaveLength(2);
    expect(await findFilesContaining(installedLayout().root, sig)).toEqual([]);
  });

  it('reports −100 with host and path when the script is not there, and −215 for a missing artifact', async () => {
    await installed();
    server = await startLoopbackServer();
    server.route('/ok.sh', serve('echo never'));
    await writeSettings(installedLayout(), 'missing', 0, { publicSettings: { source: { scriptUri: `${server.origin}/gone/setup.sh?sig=abc123xyz` } } });
    await writeSettings(installedLayout(), 'noartifact', 0, {
      publicSettings: { source: { scriptUri: `${server.origin}/ok.sh` }, artifacts: [{ id: 7, uri: `${server.origin}/a/lib.tar` }] },
    });
    await enable('missing', 0);
    await enable('noartifact', 0);
    const missing = await waitForStatus(installedLayout(), 'missing', 0, terminal);
    // run-command.md §6 (12-01): a run that ended is top-level success, however it failed (Compat).
    expect(missing.topStatus.status.status).toBe('success');
    expect(missing.instanceView.exitCode).toBe(-100);
    expect(missing.instanceView.startTime).not.toBe('');
    expect(missing.instanceView.executionMessage).toContain(`could not download ${server.origin}/gone/setup.sh: with the SAS in the URL: HTTP 404 Not Found`);
    expect(missing.instanceView.executionMessage).not.toContain('abc123xyz');
    const noArtifact = await waitForStatus(installedLayout(), 'noartifact', 0, terminal);
    expect(noArtifact.instanceView.exitCode).toBe(-215);
    expect(noArtifact.instanceView.executionMessage).toContain('artifacts[0] (id 7)');
  });

  it('runs the built-in ifconfig and RunShellScript, and lists the Linux ids for an unknown one', async () => {
    await installed();
    await writeSettings(installedLayout(), 'net', 0, { publicSettings: { source: { commandId: 'ifconfig' } } });
    await writeSettings(installedLayout(), 'shell', 0, { publicSettings: { source: { commandId: 'RunShellScript', script: 'echo "shell $1"' }, parameters: [{ value: 'ok' }] } });
    await writeSettings(installedLayout(), 'windowsonly', 0, { publicSettings: { source: { commandId: 'EnableEMS' } } });
    for (const name of ['net', 'shell', 'windowsonly']) await enable(name, 0);
    const net = await waitForStatus(installedLayout(), 'net', 0, terminal);
    expect(net.instanceView).toMatchObject({ executionState: 'Succeeded', exitCode: 0 });
    expect(net.instanceView.output).toMatch(/\blo\b/);
    expect((await waitForStatus(installedLayout(), 'shell', 0, terminal)).instanceView).toMatchObject({ executionState: 'Succeeded', output: 'shell ok\n' });
    const refused = await waitForStatus(installedLayout(), 'windowsonly', 0, terminal);
    // run-command.md §6 (12-01): a run that ended is top-level success, however it failed (Compat).
    expect(refused.topStatus.status.status).toBe('success');
    expect(refused.instanceView.executionMessage).toContain("source.commandId: 'EnableEMS' is a windows command; available on linux: RunShellScript, ifconfig, RunPowerShellScript");
  });
});
