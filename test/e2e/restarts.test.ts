// Restarts, reboots and sequence numbers through the packaged handler (run-command.md §2, §8).
import { randomUUID } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupLayout, makeAgentLayout, runCommand, waitForStatus, writeSettings, type AgentLayout, isTerminalReport } from '../helpers/agent.js';
import { findProcesses } from '../helpers/daemon-harness.js';
import { makeGate } from '../helpers/gate.js';
import { waitUntil } from '../helpers/scan.js';

let layout: AgentLayout;
const extra = { RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS: '300', RUNCOMMAND_HANDLER_KILL_GRACE_MS: '1000' };
const terminal = isTerminalReport;

afterEach(async () => {
  await cleanupLayout(layout);
});

async function install(): Promise<void> {
  layout = await makeAgentLayout();
  expect((await runCommand(layout, 'install', { extra })).exitCode).toBe(0);
}

async function daemonPids(): Promise<number[]> {
  return findProcesses(`${layout.baseDir}/dist/cli.js`);
}

async function submit(name: string, seq: number, script: string): Promise<void> {
  await writeSettings(layout, name, seq, { publicSettings: { source: { script } } });
  expect((await runCommand(layout, 'enable', { name, seq, extra })).exitCode).toBe(0);
}

async function runDirOf(name: string): Promise<string> {
  const state = join(layout.libDir, 'runcommand-handler');
  const record = JSON.parse(await readFile(join(state, 'records', `${name}.json`), 'utf8')) as { runId: string };
  return join(state, 'runs', record.runId);
}

describe('restarts and reboots', () => {
  // Budget: ≈ 12 s on 2 CPUs (ten enables, a restart); the scripts wait on a gate, not a sleep.
  it('after kill -9 during 10 running scripts, each finishes exactly once with its true exit code and full output', { tags: ['faults'], timeout: 120_000 }, async () => {
    await install();
    const gate = await makeGate();
    const names = Array.from({ length: 10 }, (_, index) => `k${index}`);
    for (const [index, name] of names.entries()) {
      await submit(name, 0, `echo start >> ${join(layout.root, `${name}.count`)}; echo before-${index}; ${gate.wait}; echo after-${index}; exit ${index}`);
    }
    for (const name of names) await waitForStatus(layout, name, 0, (r) => r.instanceView.executionState === 'Running');
    const [daemon] = await daemonPids();
    process.kill(daemon ?? 0, 'SIGKILL');
    const killedAt = Date.now();
    await runCommand(layout, 'enable', { name: 'k0', seq: 0, extra });
    const log = await waitForLogLine('interrupted runs recovered');
    console.info(`kill -9 → enable → re-attached ${names.length} runs: ${Date.parse(log.timestamp) - killedAt} ms`);
    expect(log.count).toBe(names.length);
    await gate.open();
    for (const [index, name] of names.entries()) {
      const report = await waitForStatus(layout, name, 0, terminal);
      expect(report.instanceView).toMatchObject({ exitCode: index, output: `before-${index}\nafter-${index}\n` });
      expect(await readFile(join(layout.root, `${name}.count`), 'utf8')).toBe('start\n');
    }
  });

  it('a script that finishes while the daemon is down gets its true exit code; SIGTERM to the daemon leaves scripts running', async () => {
    await install();
    const gate = await makeGate();
    await submit('downtime', 0, `${gate.wait}; echo done; exit 42`);
    await waitForStatus(layout, 'downtime', 0, (r) => r.instanceView.executionState === 'Running');
    for (const pid of await daemonPids()) process.kill(pid, 'SIGTERM');
    await waitUntil(async () => (await daemonPids()).length === 0, 30_000, 'the daemon to exit after SIGTERM');
    const runDir = await runDirOf('downtime');
    expect((await readdir(runDir)).includes('exit-status.json')).toBe(false);
    await gate.open();
    await waitUntil(async () => (await readdir(runDir)).includes('exit-status.json'), 30_000, 'the wrapper to record the exit');
    await runCommand(layout, 'enable', { name: 'downtime', seq: 0, extra });
    const report = await waitForStatus(layout, 'downtime', 0, terminal);
    expect(report.instanceView).toMatchObject({ executionState: 'Failed', exitCode: 42, output: 'done\n' });
  });

  it('disable without a running daemon still kills the script tree', async () => {
    await install();
    const marker = `rch-e2e-orphan-${process.pid}-${Date.now()}`;
    await writeSettings(layout, 'orphan', 0, { publicSettings: { source: { script: `sh -c 'sleep 120; : ${marker}' & wait\n` } } });
    await runCommand(layout, 'enable', { name: 'orphan', seq: 0, extra });
    await waitForStatus(layout, 'orphan', 0, (r) => r.instanceView.executionState === 'Running');
    expect((await findProcesses(marker)).length).toBeGreaterThan(0);
    for (const pid of await daemonPids()) process.kill(pid, 'SIGKILL');
    const disable = await runCommand(layout, 'disable', { name: 'orphan', seq: 0, extra });
    expect(disable.exitCode, disable.stderr).toBe(0);
    expect(await findProcesses(marker)).toEqual([]);
  });

  it('a run cut off by a reboot becomes Failed with exit code -1, the VM-restarted message and its output so far', async () => {
    await install();
    const marker = `rch-reboot-${process.pid}-${Date.now()}`;
    await submit('rebooted', 0, `echo before-reboot; sh -c 'sleep 60; : ${marker}'\n`);
    await waitForStatus(layout, 'rebooted', 0, (r) => r.instanceView.output === 'before-reboot\n');
    for (const pid of await daemonPids()) process.kill(pid, 'SIGKILL');
    // A reboot ends every process and changes the boot id.
    for (const pid of [...(await findProcesses(marker)), ...(await findProcesses(layout.baseDir))]) process.kill(pid, 'SIGKILL');
    const runDir = await runDirOf('rebooted');
    const journal = JSON.parse(await readFile(join(runDir, 'journal.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(join(runDir, 'journal.json'), JSON.stringify({ ...journal, bootId: randomUUID() }));
    await runCommand(layout, 'enable', { name: 'rebooted', seq: 0, extra });
    const report = await waitForStatus(layout, 'rebooted', 0, terminal);
    expect(report.instanceView).toMatchObject({ executionState: 'Failed', exitCode: -1, output: 'before-reboot\n' });
    expect(report.instanceView.executionMessage).toContain('VM restarted during execution');
  });

  it('a newer sequence number cancels the running older run (tree kill) before the new one starts; an older one never runs', async () => {
    await install();
    const marker = `rch-seq-${process.pid}-${Date.now()}`;
    await submit('seq', 1, `sh -c 'sleep 60; : ${marker}' & wait\n`);
    await waitForStatus(layout, 'seq', 1, (r) => r.instanceView.executionState === 'Running');
    await submit('seq', 2, 'echo two');
    expect((await waitForStatus(layout, 'seq', 1, terminal)).instanceView.executionState).toBe('Canceled');
    expect((await waitForStatus(layout, 'seq', 2, terminal)).instanceView.output).toBe('two\n');
    expect(await findProcesses(marker)).toEqual([]);
    await submit('seq', 0, 'echo zero');
    const older = await waitForStatus(layout, 'seq', 0, terminal);
    // Settings refused for an older seq ended without running: top-level success like every run
    // that ended (run-command.md §6, Compat), with a startTime.
    expect(older.topStatus.status.status).toBe('success');
    expect(older.instanceView.startTime).not.toBe('');
    expect(older.instanceView).toMatchObject({ executionState: 'Failed', exitCode: -1, output: '' });
    expect(older.instanceView.executionMessage).toContain('sequence number 0 is older than 2');
  });
});

async function waitForLogLine(message: string): Promise<{ timestamp: string; count?: number }> {
  let found: { timestamp: string; count?: number } | undefined;
  await waitUntil(async () => {
    const text = await readFile(join(layout.logFolder, 'handler.log'), 'utf8').catch(() => '');
    const line = text.split('\n').find((entry) => entry.includes(`"${message}"`));
    if (line) found = JSON.parse(line) as { timestamp: string; count?: number };
    return found !== undefined;
  }, 30_000, `the log line "${message}"`);
  return found as { timestamp: string; count?: number };
}

