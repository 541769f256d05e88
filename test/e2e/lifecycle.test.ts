// The packaged extension driven by the guest-agent simulator, end to end (issue: core handler).
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanupLayout, makeAgentLayout, readStatus, removeRunCommand, runCommand, toStatusPath, waitForStatus, writeSettings, type AgentLayout, isTerminalReport } from '../helpers/agent.js';
import { findProcesses } from '../helpers/daemon-harness.js';

const fast = { RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS: '300', RUNCOMMAND_HANDLER_KILL_GRACE_MS: '1000' };
let layout: AgentLayout;

afterEach(async () => {
  if (layout) await cleanupLayout(layout);
});

const terminal = isTerminalReport;

async function installed(): Promise<AgentLayout> {
  layout = await makeAgentLayout();
  const install = await runCommand(layout, 'install', { extra: fast });
  expect(install.exitCode, install.stderr).toBe(0);
  return layout;
}

async function enable(name: string, seq: number) {
  const result = await runCommand(layout, 'enable', { name, seq, extra: fast });
  expect(result.exitCode, result.stderr).toBe(0);
  return result;
}

async function readEvents(folder: string): Promise<Record<string, string>[]> {
  const files = (await readdir(folder)).filter((file) => /^\d+\.json$/.test(file)).sort();
  const lists = await Promise.all(files.map(async (file) => JSON.parse(await readFile(join(folder, file), 'utf8')) as Record<string, string>[]));
  return lists.flat();
}

describe('the packaged handler under the guest agent', () => {
  it('enable writes a Pending status at once, starts the daemon detached, and the script runs with its parameters', async () => {
    await installed();
    await writeSettings(layout, 'params', 0, {
      publicSettings: {
        source: { script: 'printf "[%s][%s][%s]" "$NAMED" "$1" "$2"; printf "ü" >&2; exit 3' },
        parameters: [{ name: 'NAMED', value: "it's \"quoted\" $(touch /tmp/pwned) ; x" }, { value: 'two words' }, { value: 'ünïcödé €' }],
      },
    });
    const result = await enable('params', 0);
    expect(result.durationMs).toBeLessThan(10_000);
    expect(result.captureHeldOpen).toBe(false);
    const report = await waitForStatus(layout, 'params', 0, terminal);
    expect(report.topStatus.status.status).toBe('success');
    expect(report.instanceView).toMatchObject({
      executionState: 'Failed',
      exitCode: 3,
      output: "[it's \"quoted\" $(touch /tmp/pwned) ; x][two words][ünïcödé €]",
      error: 'ü',
    });
    const events = await readEvents(layout.eventsFolder);
    expect(events.map((event) => event['TaskName'])).toEqual(['RunCommandStart', 'RunCommandEnd']);
    expect(events[1]?.['Message']).toContain('state=Failed exitCode=3');
    expect(JSON.stringify(events)).not.toContain('quoted');
  });

  it('keeps the last 4096 bytes of output cut on a character boundary', async () => {
    await installed();
    await writeSettings(layout, 'tail', 1, { publicSettings: { source: { script: 'for i in $(seq 1 3000); do printf "é"; done; printf END' } } });
    await enable('tail', 1);
    const report = await waitForStatus(layout, 'tail', 1, terminal);
    expect(report.instanceView.executionState).toBe('Succeeded');
    const bytes = Buffer.byteLength(report.instanceView.output);
    expect(bytes).toBeLessThanOrEqual(4096);
    expect(bytes).toBeGreaterThanOrEqual(4093);
    expect(report.instanceView.output).toMatch(/^é+END$/);
  });

  it('times out a script with grandchildren: TimedOut, and no descendant left', async () => {
    await installed();
    const marker = `rch-e2e-timeout-${process.pid}-${Date.now()}`;
    await writeSettings(layout, 'slow', 0, {
      publicSettings: { source: { script: `sh -c 'sleep 120 # ${marker}' & setsid sleep 120 ${marker} & sleep 120 # ${marker}\n` }, timeoutInSeconds: 2 },
    });
    await enable('slow', 0);
    const report = await waitForStatus(layout, 'slow', 0, terminal);
    expect(report.instanceView.executionState).toBe('TimedOut');
    expect(report.instanceView.exitCode).toBe(-1);
    expect(report.instanceView.executionMessage).toContain('timed out after 2 s');
    expect(await findProcesses(marker)).toEqual([]);
  });

  it('disable terminates a running script, and no status file for that name appears again', async () => {
    await installed();
    const marker = `rch-e2e-disable-${process.pid}-${Date.now()}`;
    await writeSettings(layout, 'victim', 2, { publicSettings: { source: { script: `sleep 120 # ${marker}\n` } } });
    await enable('victim', 2);
    await waitForStatus(layout, 'victim', 2, (r) => r.instanceView.executionState === 'Running');
    const disable = await removeRunCommand(layout, 'victim');
    expect(disable?.exitCode).toBe(0);
    expect(await findProcesses(marker)).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect((await readdir(layout.statusFolder)).filter((file) => file.startsWith('victim.'))).toEqual([]);
    const again = await runCommand(layout, 'disable', { name: 'victim', seq: 2, extra: fast });
    expect(again.exitCode).toBe(0);
  });

  it('re-enable never re-runs a script and rewrites a missing status file from the run journal', async () => {
    await installed();
    const counter = join(layout.root, 'runs.txt');
    await writeSettings(layout, 'idem', 4, { publicSettings: { source: { script: `echo ran >> ${counter}; echo out` } } });
    await enable('idem', 4);
    await waitForStatus(layout, 'idem', 4, terminal);
    await enable('idem', 4);
    await rm(toStatusPath(layout, 'idem', 4));
    await enable('idem', 4);
    const report = await readStatus(layout, 'idem', 4);
    expect(report?.instanceView).toMatchObject({ executionState: 'Succeeded', output: 'out\n' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await readFile(counter, 'utf8')).toBe('ran\n');
  });

  it('a re-created run command with the same name and a lower sequence number runs', async () => {
    await installed();
    await writeSettings(layout, 'again', 7, { publicSettings: { source: { script: 'echo first' } } });
    await enable('again', 7);
    await waitForStatus(layout, 'again', 7, terminal);
    await removeRunCommand(layout, 'again');
    await writeSettings(layout, 'again', 0, { publicSettings: { source: { script: 'echo second' } } });
    await enable('again', 0);
    const report = await waitForStatus(layout, 'again', 0, terminal);
    expect(report.instanceView.output).toBe('second\n');
  });

  it('enable with a running daemon returns quickly and uninstall stops the daemon and its scripts and removes the state', async () => {
    await installed();
    const marker = `rch-e2e-uninstall-${process.pid}-${Date.now()}`;
    await writeSettings(layout, 'long', 0, { publicSettings: { source: { script: `sleep 120 # ${marker}\n` } } });
    await enable('long', 0);
    await waitForStatus(layout, 'long', 0, (r) => r.instanceView.executionState === 'Running');
    const second = await enable('long', 0);
    expect(second.durationMs).toBeLessThan(5_000);
    const uninstall = await runCommand(layout, 'uninstall', { extra: fast });
    expect(uninstall.exitCode).toBe(0);
    expect(await findProcesses(marker)).toEqual([]);
    expect(await findProcesses(layout.baseDir)).toEqual([]);
    await expect(stat(join(layout.libDir, 'runcommand-handler'))).rejects.toThrow();
  });
});
