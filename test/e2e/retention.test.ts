// Retention through the packaged handler (run-command.md §8): each run command keeps its latest
// run's directory only, settings files below the current sequence number go, and a deleted run
// command's runs go once an update can no longer need them — disk use does not grow with runs.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupLayout, isTerminalReport, makeAgentLayout, removeRunCommand, runCommand, waitForStatus, writeSettings, type AgentLayout } from '../helpers/agent.js';
import { findProcesses } from '../helpers/daemon-harness.js';
import { waitUntil } from '../helpers/scan.js';

let layout: AgentLayout;
const extra = { RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS: '300' };

afterEach(async () => {
  await cleanupLayout(layout);
});

const stateDir = (): string => join(layout.libDir, 'runcommand-handler');
const runsOf = async (name: string): Promise<string[]> => (await readdir(join(stateDir(), 'runs'))).filter((runId) => runId.startsWith(`${name}.`));

async function submit(name: string, seq: number, script: string): Promise<void> {
  await writeSettings(layout, name, seq, { publicSettings: { source: { script } } });
  expect((await runCommand(layout, 'enable', { name, seq, extra })).exitCode).toBe(0);
  await waitForStatus(layout, name, seq, isTerminalReport);
}

describe('retention', () => {
  it('keeps one run directory per run command through five sequence numbers, and only the current settings file', async () => {
    layout = await makeAgentLayout();
    expect((await runCommand(layout, 'install', { extra })).exitCode).toBe(0);
    for (let seq = 0; seq < 5; seq += 1) await submit('kept', seq, `echo run ${seq}; head -c 100000 /dev/zero`);
    // Retention runs once the run has ended and its status is written: wait for it, not for a time.
    await waitUntil(async () => (await runsOf('kept')).length === 1, 30_000, 'one run directory of kept');
    const [runId] = await runsOf('kept');
    expect(runId).toMatch(/^kept\.4\./);
    expect((await readFile(join(stateDir(), 'runs', runId ?? '', 'stdout'), 'utf8')).startsWith('run 4\n')).toBe(true);
    expect((await readdir(layout.configFolder)).filter((file) => file.startsWith('kept.'))).toEqual(['kept.4.settings']);
    // Every status the agent was given still reads back (they are the agent's files).
    expect((await waitForStatus(layout, 'kept', 0, isTerminalReport)).instanceView.executionState).toBe('Succeeded');
  });

  it("removes a deleted run command's runs once an update could no longer restore it, and never a live one's", async () => {
    layout = await makeAgentLayout();
    expect((await runCommand(layout, 'install', { extra })).exitCode).toBe(0);
    await submit('gone', 0, 'echo bye');
    await submit('live', 0, 'echo here');
    await removeRunCommand(layout, 'gone');
    expect(await runsOf('gone')).toHaveLength(1);
    // An hour later (the update window, protocol.md §8), the next daemon drops its runs.
    const recordPath = join(stateDir(), 'records', 'gone.json');
    const record = JSON.parse(await readFile(recordPath, 'utf8')) as { disabledAt: number };
    await writeFile(recordPath, JSON.stringify({ ...record, disabledAt: record.disabledAt - 2 * 60 * 60 * 1000 }));
    for (const pid of await findProcesses(`${layout.baseDir}/dist/cli.js`)) process.kill(pid, 'SIGKILL');
    expect((await runCommand(layout, 'enable', { name: 'live', seq: 0, extra })).exitCode).toBe(0);
    await waitUntil(async () => (await runsOf('gone')).length === 0, 30_000, "the deleted run command's runs to go");
    expect(await runsOf('live')).toHaveLength(1);
  });
});
