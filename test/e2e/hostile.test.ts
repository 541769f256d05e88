// The hostile-input corpus through the packaged handler (issue 5; targets.md): every input ends in
// a clear terminal status or a logged refusal, nothing lands outside its directory, no file's
// content leaks into a message, and the same daemon keeps serving a valid run afterwards.
import { execa } from 'execa';
import { mkdir, readdir, readFile, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupLayout, makeAgentLayout, runCommand, toSettingsPath, waitForStatus, writeSettings, type AgentLayout, type StatusReport, isTerminalReport } from '../helpers/agent.js';
import { findProcesses } from '../helpers/daemon-harness.js';
import { hostileCorpus, type Ending } from '../helpers/hostile-corpus.js';
import { waitUntil } from '../helpers/scan.js';

const extra = { RUNCOMMAND_HANDLER_SETTINGS_SETTLE_MS: '300', RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS: '300' };
const terminal = isTerminalReport;
let layout: AgentLayout;
let daemonPids: number[] = [];

beforeAll(async () => {
  layout = await makeAgentLayout();
  expect((await runCommand(layout, 'install', { extra })).exitCode).toBe(0);
  await writeSettings(layout, 'first', 0, { publicSettings: { source: { script: 'echo ok' } } });
  await runCommand(layout, 'enable', { name: 'first', seq: 0, extra });
  await waitForStatus(layout, 'first', 0, (r) => r.instanceView.executionState === 'Succeeded');
  daemonPids = await findDaemons();
  expect(daemonPids).toHaveLength(1);
});

afterAll(async () => {
  await cleanupLayout(layout);
});

async function findDaemons(): Promise<number[]> {
  return findProcesses(`${layout.baseDir}/dist/cli.js`);
}

async function enable(name: string): Promise<void> {
  expect((await runCommand(layout, 'enable', { name, seq: 0, extra })).exitCode).toBe(0);
}

function expectEnding(report: StatusReport, ending: Ending, what: string): void {
  expect(report.instanceView.executionState, what).toBe(ending.state);
  expect(report.instanceView.exitCode, what).toBe(ending.exitCode);
  // run-command.md §6 (12-01): a run that ended is top-level success, however it failed (Compat).
  expect(report.topStatus.status.status, what).toBe('success');
  expect(report.instanceView.startTime, what).not.toBe('');
  const text = (ending.state === 'Failed' ? report.instanceView.executionMessage : report.instanceView.output).toLowerCase();
  for (const word of ending.words) expect(text, what).toContain(word);
}

describe('hostile input', () => {
  // Budget: ≈ 15 s on 2 CPUs, 33 s at half speed (every corpus entry goes through enable).
  it('ends every input of the corpus with its clear terminal status', async () => {
    for (const entry of hostileCorpus) await writeSettings(layout, entry.name, 0, await entry.settings(layout));
    for (const entry of hostileCorpus) await enable(entry.name);
    const reports = await Promise.all(hostileCorpus.map((entry) => waitForStatus(layout, entry.name, 0, terminal, 60_000)));
    hostileCorpus.forEach((entry, index) => expectEnding(reports[index]!, entry.ending, `${entry.name}: ${entry.what}`));
    const log = await readFile(join(layout.logFolder, 'handler.log'), 'utf8');
    expect(log).toContain('unknown settings keys ignored');
    expect(log).not.toContain('hunter2');
  }, 120_000);

  it('refuses a FIFO, a directory or a symlink to /etc/shadow in place of a settings file, without hanging or quoting it', async () => {
    await execa('mkfifo', [toSettingsPath(layout, 'fifo', 0)]);
    await mkdir(toSettingsPath(layout, 'folder', 0));
    await symlink('/etc/shadow', toSettingsPath(layout, 'shadow', 0));
    for (const name of ['fifo', 'folder', 'shadow']) await enable(name);
    const [fifo, folder, shadow] = await Promise.all(['fifo', 'folder', 'shadow'].map((name) => waitForStatus(layout, name, 0, terminal)));
    expect(fifo!.instanceView).toMatchObject({ executionState: 'Failed', exitCode: -202, executionMessage: expect.stringContaining('not a regular file') });
    expect(folder!.instanceView).toMatchObject({ executionState: 'Failed', exitCode: -202, executionMessage: expect.stringContaining('not a regular file') });
    expect(shadow!.instanceView).toMatchObject({ executionState: 'Failed', exitCode: -202 });
    expect(shadow!.instanceView.executionMessage).not.toMatch(/root:|\$[0-9a-z]+\$/);
  });

  it('refuses and logs settings files whose names cannot be used in a path, and writes nothing for them', async () => {
    const names = ['-rf', 'a..b', 'ctl\u0001name', 'x'.repeat(129), 'ünï', 'sp ace'];
    for (const name of names) await writeSettings(layout, name, 0, { publicSettings: { source: { script: 'echo ok' } } });
    await writeSettings(layout, 'bigseq', 0, { publicSettings: { source: { script: 'echo ok' } } });
    await execa('mv', [toSettingsPath(layout, 'bigseq', 0), join(layout.configFolder, 'bigseq.99999999999999999999.settings')]);
    for (const name of names) {
      const result = await runCommand(layout, 'enable', { name, seq: 0, extra });
      expect(result.exitCode, name).toBe(1);
      expect(result.stderr).toContain('ConfigExtensionName');
    }
    const readLog = (): Promise<string> => readFile(join(layout.logFolder, 'handler.log'), 'utf8').catch(() => '');
    await waitUntil(async () => {
      const log = await readLog();
      return log.includes('invalid run command name') && log.includes('has no valid sequence number');
    }, 30_000, 'the daemon to log the refused settings files');
    const statuses = await readdir(layout.statusFolder);
    expect(statuses.filter((file) => !/^[A-Za-z0-9][A-Za-z0-9._-]*\.\d+\.status$/.test(file))).toEqual([]);
    const runs = await readdir(join(layout.libDir, 'runcommand-handler', 'runs'));
    expect(runs.filter((run) => !/^[A-Za-z0-9][A-Za-z0-9._-]*\.\d+\.[0-9a-z]+$/.test(run))).toEqual([]);
  });

  it('is still the same daemon afterwards, and it runs a valid run command', async () => {
    await writeSettings(layout, 'after', 0, { publicSettings: { source: { script: 'echo still serving' } } });
    await enable('after');
    const report = await waitForStatus(layout, 'after', 0, terminal);
    expect(report.instanceView).toMatchObject({ executionState: 'Succeeded', output: 'still serving\n' });
    expect(await findDaemons()).toEqual(daemonPids);
  });
});
