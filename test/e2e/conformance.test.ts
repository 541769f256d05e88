// Conformance with Microsoft's handler where callers can see it (run-command.md §1, §3, §6; the
// "Conformance" issue), through the packaged handler under the guest-agent simulator: status files
// are read back as the agent reads them.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupLayout, makeAgentLayout, runCommand, waitForStatus, writeSettings, type AgentLayout, type SettingsOptions, type StatusReport, isTerminalReport } from '../helpers/agent.js';
import { serve, startLoopbackServer, type LoopbackServer } from '../helpers/loopback-http.js';
import { waitUntil } from '../helpers/scan.js';

const fast = { RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS: '300', RUNCOMMAND_HANDLER_KILL_GRACE_MS: '1000' };
const terminal = isTerminalReport;
const rfc3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
let layout: AgentLayout | undefined;
let server: LoopbackServer | undefined;

afterEach(async () => {
  if (layout) await cleanupLayout(layout);
  await server?.close();
  layout = undefined;
  server = undefined;
});

async function installed(): Promise<AgentLayout> {
  layout = await makeAgentLayout();
  const install = await runCommand(layout, 'install', { extra: fast });
  expect(install.exitCode, install.stderr).toBe(0);
  return layout;
}

function current(): AgentLayout {
  if (!layout) throw new Error('not installed');
  return layout;
}

async function submit(name: string, seq: number, settings: SettingsOptions): Promise<void> {
  await writeSettings(current(), name, seq, settings);
  const result = await runCommand(current(), 'enable', { name, seq, extra: fast });
  expect(result.exitCode, result.stderr).toBe(0);
}

function readLog(): Promise<string> {
  return readFile(join(current().logFolder, 'handler.log'), 'utf8').catch(() => '');
}

// A terminal status as run-command.md §6 wants it: startTime set (accept time), endTime not before it.
function expectTimes(report: StatusReport, what: string): void {
  const { startTime, endTime } = report.instanceView;
  expect(startTime, what).toMatch(rfc3339);
  expect(endTime, what).toMatch(rfc3339);
  expect(Date.parse(endTime), what).toBeGreaterThanOrEqual(Date.parse(startTime));
}

describe('conformance with Microsoft’s handler (packaged, under the agent simulator)', () => {
  it('reports top-level success for every run that ended, however it failed, each with a startTime; error only with treatFailureAsDeploymentFailure', async () => {
    await installed();
    server = await startLoopbackServer();
    server.route('/ok.sh', serve('echo never'));
    // Anything else (the script, the artifact, the blob) is a 404 or a 403: a fast, final failure.
    server.route('/c/out', (_req, res) => res.writeHead(403).end());
    const origin = server.origin;
    const cases: Array<[string, SettingsOptions, { state: string; exitCode: number; words: string }]> = [
      ['exit3', { publicSettings: { source: { script: 'echo out; exit 3' } } }, { state: 'Failed', exitCode: 3, words: 'Execution failed: command terminated with exit status=3' }],
      ['timeout', { publicSettings: { source: { script: 'sleep 60' }, timeoutInSeconds: 1 } }, { state: 'TimedOut', exitCode: -1, words: 'timed out after 1 s' }],
      ['download', { publicSettings: { source: { scriptUri: `${origin}/gone.sh` } } }, { state: 'Failed', exitCode: -100, words: '/gone.sh' }],
      ['artifact', { publicSettings: { source: { scriptUri: `${origin}/ok.sh` }, artifacts: [{ id: 9, uri: `${origin}/none.bin` }] } }, { state: 'Failed', exitCode: -215, words: 'artifacts[0] (id 9)' }],
      ['runas', { publicSettings: { source: { script: 'echo never' }, runAsUser: 'rch-no-such-user' } }, { state: 'Failed', exitCode: -102, words: "Failed to lookup RunAs user 'rch-no-such-user'" }],
      ['invalid', { publicSettings: { source: { script: 'true', scriptUri: `${origin}/ok.sh` } } }, { state: 'Failed', exitCode: -202, words: 'exactly one of source.script' }],
      ['blob', { publicSettings: { source: { script: 'echo never' }, outputBlobUri: `${origin}/c/out?sv=1&sig=x` } }, { state: 'Failed', exitCode: -101, words: '/c/out' }],
      ['depfail', { publicSettings: { source: { script: 'echo never' }, dependsOn: ['exit3'] } }, { state: 'Failed', exitCode: -1, words: "dependency 'exit3' did not succeed" }],
    ];
    for (const [name, settings] of cases) await submit(name, 0, settings);
    await submit('strict', 0, { publicSettings: { source: { script: 'exit 4' }, treatFailureAsDeploymentFailure: true } });
    // Refused settings that ask for it: error too (the flag is read from the refused settings).
    await submit('strictbad', 0, { publicSettings: { source: {}, TreatFailureAsDeploymentFailure: true } });
    await submit('strictdownload', 0, { publicSettings: { source: { scriptUri: `${origin}/gone.sh` }, treatFailureAsDeploymentFailure: true } });
    await submit('strictok', 0, { publicSettings: { source: { script: 'echo fine' }, treatFailureAsDeploymentFailure: true } });
    for (const [name, , want] of cases) {
      const report = await waitForStatus(current(), name, 0, terminal, 60_000);
      expect(report.instanceView, name).toMatchObject({ executionState: want.state, exitCode: want.exitCode });
      expect(report.instanceView.executionMessage, name).toContain(want.words);
      // Compat (run-command.md §6): success at the end, the instance view says how it failed.
      expect(report.topStatus.status.status, name).toBe('success');
      expectTimes(report, name);
    }
    // The exit wording exactly, as callers parse it.
    expect((await waitForStatus(current(), 'exit3', 0, terminal)).instanceView.executionMessage).toBe('Execution failed: command terminated with exit status=3');
    const strict = await waitForStatus(current(), 'strict', 0, terminal);
    expect(strict.instanceView).toMatchObject({ executionState: 'Failed', exitCode: 4 });
    expect(strict.topStatus.status.status).toBe('error');
    for (const [name, exitCode] of [['strictbad', -202], ['strictdownload', -100]] as const) {
      const refused = await waitForStatus(current(), name, 0, terminal);
      expect(refused.instanceView, name).toMatchObject({ executionState: 'Failed', exitCode });
      expect(refused.topStatus.status.status, name).toBe('error');
      expectTimes(refused, name);
    }
    const strictOk = await waitForStatus(current(), 'strictok', 0, terminal);
    expect(strictOk.instanceView.executionState).toBe('Succeeded');
    expect(strictOk.topStatus.status.status).toBe('success');
  }, 120_000);

  it('gives a run canceled while Pending its accept time as startTime, and top-level success', async () => {
    await installed();
    await submit('waiter', 0, { publicSettings: { source: { script: 'echo never' }, dependsOn: ['ghost'] } });
    const pending = await waitForStatus(current(), 'waiter', 0, (r) => r.instanceView.executionMessage.startsWith('Waiting'));
    expect(pending.instanceView.startTime).toMatch(rfc3339);
    await submit('waiter', 1, { publicSettings: { source: { script: 'echo next' } } });
    const canceled = await waitForStatus(current(), 'waiter', 0, terminal);
    expect(canceled.instanceView).toMatchObject({ executionState: 'Canceled', startTime: pending.instanceView.startTime });
    expect(canceled.topStatus.status.status).toBe('success');
    expectTimes(canceled, 'canceled while Pending');
    expect((await waitForStatus(current(), 'waiter', 1, terminal)).instanceView.output).toBe('next\n');
  });

  it('accepts parameter names a shell cannot reference (passed in the environment, logged), the last of a repeated name wins, and refuses = with −202', async () => {
    await installed();
    await submit('names', 0, {
      publicSettings: {
        source: { script: 'env | grep -E "^(my-param|1st|dup)=" | sort' },
        parameters: [{ name: 'my-param', value: 'dashed' }, { name: '1st', value: 'digit' }, { name: 'dup', value: 'first' }],
      },
      protectedSettings: { protectedParameters: [{ name: 'dup', value: 'protected-7' }] },
    });
    await submit('equals', 0, { publicSettings: { source: { script: 'echo never' }, parameters: [{ name: 'A=B', value: 'x' }] } });
    const names = await waitForStatus(current(), 'names', 0, terminal);
    expect(names.instanceView).toMatchObject({ executionState: 'Succeeded', exitCode: 0, output: '1st=digit\ndup=protected-7\nmy-param=dashed\n' });
    await waitUntil(async () => {
      const log = await readLog();
      return log.includes("parameters[0].name 'my-param' is not a name a shell can reference") && log.includes("parameters[2].name 'dup' is repeated by protectedSettings.protectedParameters[0].name: the last value wins");
    }, 10_000, 'the warnings in the handler log');
    const equals = await waitForStatus(current(), 'equals', 0, terminal);
    expect(equals.instanceView).toMatchObject({ executionState: 'Failed', exitCode: -202 });
    expect(equals.instanceView.executionMessage).toBe("Execution failed: parameters[0].name: must not contain '=' or NUL characters (it becomes an environment variable name)");
    expect(equals.topStatus.status.status).toBe('success');
  });

  it('names an artifact without fileName Artifact<id> and gives text artifacts the text-script treatment', async () => {
    await installed();
    server = await startLoopbackServer();
    server.route('/files/tool', serve('\uFEFF#!/bin/sh\r\necho from-tool\r\n'));
    server.route('/files/notes', serve('a\r\nb\r\n'));
    server.route('/files/data', serve('x\r\n'));
    await submit('artifacts', 0, {
      publicSettings: {
        source: { script: 'sh ./Artifacttool; tr "\\r" R < notes.txt; tr "\\r" R < data.bin; ls' },
        artifacts: [
          { id: 'tool', uri: `${server.origin}/files/tool` },
          { id: 'n', uri: `${server.origin}/files/notes`, fileName: 'notes.txt' },
          { id: 'd', uri: `${server.origin}/files/data`, fileName: 'data.bin' },
        ],
      },
    });
    const report = await waitForStatus(current(), 'artifacts', 0, terminal);
    expect(report.instanceView).toMatchObject({ executionState: 'Succeeded', error: '' });
    const [tool, a, b, data, ...listing] = report.instanceView.output.split('\n');
    expect([tool, a, b, data]).toEqual(['from-tool', 'a', 'b', 'xR']);
    expect(listing).toEqual(expect.arrayContaining(['Artifacttool', 'notes.txt', 'data.bin']));
  });

  it('runs with a negative timeoutInSeconds as no limit (logged), and ends installAsService without a source as success saying the service is not provided', async () => {
    await installed();
    await submit('negative', 0, { publicSettings: { source: { script: 'echo unlimited' }, timeoutInSeconds: -1 } });
    await submit('service', 0, { publicSettings: { installAsService: true } });
    const negative = await waitForStatus(current(), 'negative', 0, terminal);
    expect(negative.instanceView).toMatchObject({ executionState: 'Succeeded', output: 'unlimited\n' });
    const service = await waitForStatus(current(), 'service', 0, terminal);
    expect(service.topStatus.status.status).toBe('success');
    expect(service.instanceView).toMatchObject({ executionState: 'Succeeded', exitCode: 0, output: '' });
    expect(service.instanceView.executionMessage).toMatch(/^Execution completed: nothing was run: installAsService asks for the immediate run-command service, which this handler does not provide/);
    expectTimes(service, 'installAsService');
    await waitUntil(async () => (await readLog()).includes('timeoutInSeconds -1 is negative: no time limit'), 10_000, 'the negative timeout warning in the log');
  });
});
