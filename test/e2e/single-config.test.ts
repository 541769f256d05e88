// Agents without multi-config (protocol.md §4, §5, §7): settings `<seq>.settings`, no
// ConfigExtensionName, status `<seq>.status` with an empty name — the handler's single
// configuration, as in Microsoft's handler — next to multi-config run commands, through the packaged
// handler under the agent simulator (status files read back and validated as the agent reads them).
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanupLayout, isTerminalReport, makeAgentLayout, readStatus, removeHandler, removeRunCommand, runCommand, SINGLE_CONFIG, toSettingsPath, toStatusPath,
  waitForStatus, writeSettings, type AgentLayout, type StatusReport,
} from '../helpers/agent.js';
import { findProcesses } from '../helpers/daemon-harness.js';
import { waitUntil } from '../helpers/scan.js';

const fast = { RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS: '300', RUNCOMMAND_HANDLER_KILL_GRACE_MS: '1000' };
const single = SINGLE_CONFIG;
const terminal = isTerminalReport;
const running = (report: StatusReport): boolean => report.instanceView.executionState === 'Running';
let layout: AgentLayout | undefined;

afterEach(async () => {
  if (layout) await cleanupLayout(layout);
  layout = undefined;
});

async function installed(): Promise<AgentLayout> {
  layout = await makeAgentLayout();
  const install = await runCommand(layout, 'install', { extra: fast });
  expect(install.exitCode, install.stderr).toBe(0);
  return layout;
}

// Writes the settings and runs `enable` as the agent does (no ConfigExtensionName for `single`).
async function submit(at: AgentLayout, name: string, seq: number, script: string): Promise<void> {
  await writeSettings(at, name, seq, { publicSettings: { source: { script } } });
  const result = await runCommand(at, 'enable', { name, seq, extra: fast });
  expect(result.exitCode, result.stderr).toBe(0);
}

// The operator's CLI of the installed package, on the agent's layout.
function cli(at: AgentLayout, ...args: string[]) {
  return execa('node', [join(at.baseDir, 'dist', 'cli.js'), ...args, '--handler-environment', join(at.baseDir, 'HandlerEnvironment.json')], { cwd: at.root, reject: false });
}

// A script that stays running with `marker` in a process's command line (sh stays: `:` comes last).
const sleeper = (marker: string): string => `sh -c 'sleep 120; : ${marker}'\n`;
const started = (marker: string): Promise<void> => waitUntil(async () => (await findProcesses(marker)).length > 0, 30_000, marker);

describe('single-config agents (no ConfigExtensionName)', () => {
  it('runs <seq>.settings into <seq>.status with an empty name, never twice, next to a multi-config run command', async () => {
    const at = await installed();
    const counter = join(at.root, 'single-runs.txt');
    await submit(at, single, 0, `echo ran >> ${counter}; printf '[%s][%s]' "\${ConfigExtensionName-unset}" "$ConfigSequenceNumber"`);
    await submit(at, 'named', 0, 'printf %s "$ConfigExtensionName"');
    // waitForStatus validates the file as the agent does, including status.name === ''.
    const report = await waitForStatus(at, single, 0, terminal);
    expect(report.topStatus.status.status).toBe('success');
    expect(report.instanceView).toMatchObject({ executionState: 'Succeeded', exitCode: 0, output: '[unset][0]' });
    expect((await waitForStatus(at, 'named', 0, terminal)).instanceView).toMatchObject({ executionState: 'Succeeded', output: 'named' });
    expect((await readdir(at.statusFolder)).sort()).toEqual(['0.status', 'named.0.status']);
    // Re-enable with the same seq never re-runs; a status the agent lost is written again.
    await rm(toStatusPath(at, single, 0));
    expect((await runCommand(at, 'enable', { name: single, seq: 0, extra: fast })).exitCode).toBe(0);
    expect((await waitForStatus(at, single, 0, terminal)).instanceView.output).toBe('[unset][0]');
    expect(await readFile(counter, 'utf8')).toBe('ran\n');
    // The operator keys it by the handler's internal name.
    const status = await cli(at, 'status', '_single', '--json');
    expect(status.exitCode, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ seq: 0, instanceView: { executionState: 'Succeeded', output: '[unset][0]' } });
    expect((await cli(at, 'logs', '_single')).stdout).toBe('[unset][0]');
  });

  it('a newer <seq>.settings supersedes a running one, and disable stops the single configuration only', async () => {
    const at = await installed();
    const marker = `rch-e2e-single-${process.pid}-${Date.now()}`;
    await submit(at, 'neighbour', 0, sleeper(`${marker}-neighbour`));
    await submit(at, single, 1, sleeper(`${marker}-1`));
    await started(`${marker}-1`);
    await submit(at, single, 2, 'echo second');
    const superseded = await waitForStatus(at, single, 1, terminal);
    expect(superseded.instanceView.executionState).toBe('Canceled');
    expect(superseded.instanceView.executionMessage).toContain('superseded by sequence number 2');
    expect((await waitForStatus(at, single, 2, terminal)).instanceView).toMatchObject({ executionState: 'Succeeded', output: 'second\n' });
    expect(await findProcesses(`${marker}-1`)).toEqual([]);
    // The older settings file goes, as Microsoft's handler removes it.
    await expect(stat(toSettingsPath(at, single, 1))).rejects.toThrow();
    await submit(at, single, 3, sleeper(`${marker}-3`));
    await Promise.all([started(`${marker}-3`), started(`${marker}-neighbour`)]);
    // The agent deletes the single configuration: disable without ConfigExtensionName, then its files.
    const disable = await removeRunCommand(at, single);
    expect(disable?.exitCode).toBe(0);
    expect(await findProcesses(`${marker}-3`)).toEqual([]);
    expect((await findProcesses(`${marker}-neighbour`)).length).toBeGreaterThan(0);
    // Several status intervals: the disabled configuration's status file never comes back.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect((await readdir(at.statusFolder)).filter((file) => /^\d+\.status$/.test(file))).toEqual([]);
    expect((await readStatus(at, 'neighbour', 0))?.instanceView.executionState).toBe('Running');
  });

  it('removing the handler disables every configuration, the single one included, and uninstall leaves nothing running', async () => {
    const at = await installed();
    const marker = `rch-e2e-single-uninstall-${process.pid}-${Date.now()}`;
    await submit(at, single, 0, sleeper(marker));
    await submit(at, 'other', 0, sleeper(marker));
    await Promise.all([waitForStatus(at, single, 0, running), waitForStatus(at, 'other', 0, running)]);
    await waitUntil(async () => (await findProcesses(marker)).length === 2, 30_000, 'both scripts');
    const results = await removeHandler(at);
    expect(results.map((result) => result.exitCode)).toEqual([0, 0, 0]);
    expect(await findProcesses(marker)).toEqual([]);
    expect(await findProcesses(at.baseDir)).toEqual([]);
    await expect(stat(join(at.libDir, 'runcommand-handler'))).rejects.toThrow();
  });

  it("takes over Microsoft's single configuration: its .mrseq and <seq>.status count as run", async () => {
    layout = await makeAgentLayout();
    const at = layout;
    const microsoft = join(at.libDir, 'Microsoft.CPlat.Core.RunCommandHandlerLinux-0.9.9');
    const view = { executionState: 'Succeeded', executionMessage: 'Execution completed', output: 'ran by microsoft\n', error: '', exitCode: 0, startTime: '2026-11-30T10:00:00Z', endTime: '2026-11-30T10:00:01Z' };
    await mkdir(join(microsoft, 'status'), { recursive: true });
    await writeFile(join(microsoft, '.mrseq'), '2');
    await writeFile(join(microsoft, 'status', '2.status'), JSON.stringify([{ version: 1, timestampUTC: '2026-11-30T10:00:01Z', status: { name: '', operation: 'Enable', status: 'success', formattedMessage: { lang: 'en', message: JSON.stringify(view) } } }]));
    expect((await runCommand(at, 'install', { extra: fast })).exitCode).toBe(0);
    const counter = join(at.root, 'runs.txt');
    await submit(at, single, 2, `echo ran >> ${counter}; echo ours`);
    expect((await waitForStatus(at, single, 2, terminal)).instanceView).toMatchObject({ executionState: 'Succeeded', output: 'ran by microsoft\n' });
    await submit(at, single, 3, `echo ran >> ${counter}; echo ours`);
    expect((await waitForStatus(at, single, 3, terminal)).instanceView).toMatchObject({ executionState: 'Succeeded', output: 'ours\n' });
    expect(await readFile(counter, 'utf8')).toBe('ran\n');
  });
});
