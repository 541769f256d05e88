// Taking over from Microsoft's handler (run-command.md §8): on a VM where its install directory is
// still next to ours, nothing it already ran runs again, and its last status stays reported.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupLayout, isTerminalReport, makeAgentLayout, readStatus, runCommand, waitForStatus, writeSettings, type AgentLayout } from '../helpers/agent.js';
import { findProcesses } from '../helpers/daemon-harness.js';
import { waitUntil } from '../helpers/scan.js';

let layout: AgentLayout;
const extra = { RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS: '300' };

afterEach(async () => {
  await cleanupLayout(layout);
});

// Microsoft's status of a run, as its handler leaves it.
function toMicrosoftStatus(name: string): string {
  const view = { executionState: 'Succeeded', executionMessage: 'Execution completed', output: 'ran by microsoft\n', error: '', exitCode: 0, startTime: '2026-11-30T10:00:00Z', endTime: '2026-11-30T10:00:01Z' };
  return JSON.stringify([{ version: 1, timestampUTC: '2026-11-30T10:00:01Z', status: { name, operation: 'Enable', status: 'success', formattedMessage: { lang: 'en', message: JSON.stringify(view) } } }]);
}

describe("taking over from Microsoft's handler", () => {
  it('never runs a sequence number Microsoft already ran, keeps its status, and runs the next one', async () => {
    layout = await makeAgentLayout();
    const microsoft = join(layout.libDir, 'Microsoft.CPlat.Core.RunCommandHandlerLinux-0.9.9');
    await mkdir(join(microsoft, 'status'), { recursive: true });
    await writeFile(join(microsoft, 'mine.mrseq'), '4');
    await writeFile(join(microsoft, 'status', 'mine.4.status'), toMicrosoftStatus('mine'));
    expect((await runCommand(layout, 'install', { extra })).exitCode).toBe(0);
    const counter = join(layout.root, 'runs.txt');
    const script = `echo ran >> ${counter}; echo ours`;
    await writeSettings(layout, 'mine', 4, { publicSettings: { source: { script } } });
    expect((await runCommand(layout, 'enable', { name: 'mine', seq: 4, extra })).exitCode).toBe(0);
    const carried = await waitForStatus(layout, 'mine', 4, isTerminalReport);
    expect(carried.instanceView).toMatchObject({ executionState: 'Succeeded', output: 'ran by microsoft\n' });
    // Once Microsoft's directory is gone (the agent removes it after the update), it still never runs.
    await rm(microsoft, { recursive: true, force: true });
    for (const pid of await findProcesses(`${layout.baseDir}/dist/cli.js`)) process.kill(pid, 'SIGKILL');
    expect((await runCommand(layout, 'enable', { name: 'mine', seq: 4, extra })).exitCode).toBe(0);
    await waitUntil(async () => (await readFile(join(layout.logFolder, 'handler.log'), 'utf8')).split('\n').filter((line) => line.includes('daemon started')).length === 2, 30_000, 'the second daemon');
    await writeSettings(layout, 'mine', 5, { publicSettings: { source: { script } } });
    expect((await runCommand(layout, 'enable', { name: 'mine', seq: 5, extra })).exitCode).toBe(0);
    expect((await waitForStatus(layout, 'mine', 5, isTerminalReport)).instanceView).toMatchObject({ executionState: 'Succeeded', output: 'ours\n' });
    expect(await readFile(counter, 'utf8')).toBe('ran\n');
    expect((await readStatus(layout, 'mine', 4))?.instanceView.output).toBe('ran by microsoft\n');
  });
});
