// The daemon dies (kill -9): scripts keep running, the next enable starts a daemon that
// re-attaches, and every run ends exactly once with its true exit code (run-command.md §8).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupLayout, makeAgentLayout, runCommand, waitForStatus, writeSettings, type AgentLayout } from '../helpers/agent.js';
import { findProcesses } from '../helpers/daemon-harness.js';

let layout: AgentLayout;
const extra = { RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS: '300', RUNCOMMAND_HANDLER_KILL_GRACE_MS: '1000' };
const terminal = (r: { instanceView: { executionState: string } }): boolean => ['Succeeded', 'Failed', 'TimedOut', 'Canceled'].includes(r.instanceView.executionState);

afterEach(async () => {
  await cleanupLayout(layout);
});

async function killDaemon(): Promise<void> {
  const daemons = await findProcesses(`${layout.baseDir}/dist/cli.js`);
  expect(daemons.length).toBe(1);
  for (const pid of daemons) process.kill(pid, 'SIGKILL');
}

describe('restart recovery', () => {
  it('finishes every script exactly once with its true exit code after the daemon is killed', async () => {
    layout = await makeAgentLayout();
    await runCommand(layout, 'install', { extra });
    const names = ['r0', 'r1', 'r2', 'r3'];
    for (const [index, name] of names.entries()) {
      const counter = join(layout.root, `${name}.count`);
      await writeSettings(layout, name, 0, { publicSettings: { source: { script: `echo start >> ${counter}; sleep 2; echo line-${index}; exit ${index + 10}` } } });
      await runCommand(layout, 'enable', { name, seq: 0, extra });
    }
    for (const name of names) await waitForStatus(layout, name, 0, (r) => r.instanceView.executionState === 'Running');
    await killDaemon();
    await runCommand(layout, 'enable', { name: 'r0', seq: 0, extra });
    for (const [index, name] of names.entries()) {
      const report = await waitForStatus(layout, name, 0, terminal);
      expect(report.instanceView).toMatchObject({ executionState: 'Failed', exitCode: index + 10, output: `line-${index}\n` });
      expect(await readFile(join(layout.root, `${name}.count`), 'utf8')).toBe('start\n');
    }
  });

  it('disable without a running daemon still kills the script tree', async () => {
    layout = await makeAgentLayout();
    await runCommand(layout, 'install', { extra });
    const marker = `rch-e2e-orphan-${process.pid}-${Date.now()}`;
    await writeSettings(layout, 'orphan', 0, { publicSettings: { source: { script: `sh -c 'sleep 120; : ${marker}' & wait\n` } } });
    await runCommand(layout, 'enable', { name: 'orphan', seq: 0, extra });
    await waitForStatus(layout, 'orphan', 0, (r) => r.instanceView.executionState === 'Running');
    expect((await findProcesses(marker)).length).toBeGreaterThan(0);
    await killDaemon();
    const disable = await runCommand(layout, 'disable', { name: 'orphan', seq: 0, extra });
    expect(disable.exitCode, disable.stderr).toBe(0);
    expect(await findProcesses(marker)).toEqual([]);
  });
});
