// The agent's full update sequence (protocol.md §8) between two package versions: nothing re-runs,
// every status stays, the old uninstall keeps the shared state, and the new version serves.
import { execa } from 'execa';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  cleanupLayout, makeAgentLayout, readStatus, runCommand, SINGLE_CONFIG, updateHandler, waitForStatus, writeSettings, type AgentLayout,
} from '../helpers/agent.js';
import { findProcesses } from '../helpers/daemon-harness.js';

const extra = { RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS: '300', RUNCOMMAND_HANDLER_KILL_GRACE_MS: '1000' };
let newZip: string;
const layouts: AgentLayout[] = [];

beforeAll(async () => {
  const { stdout } = await execa('node', ['scripts/package.mjs', '--version', '1.0.1']);
  newZip = stdout.trim().split('\n').at(-1) ?? '';
  expect(inject('packageZip')).not.toBe(newZip);
});

afterAll(async () => {
  for (const layout of layouts.reverse()) await cleanupLayout(layout);
});

describe('version update', () => {
  it('never re-runs a run command, keeps every status, and serves new sequence numbers afterwards', async () => {
    const old = await makeAgentLayout({ version: '1.0.0' });
    layouts.push(old);
    await runCommand(old, 'install', { extra });
    const counter = join(old.root, 'done.count');
    await writeSettings(old, 'done', 0, { publicSettings: { source: { script: `echo ran >> ${counter}; echo finished` } } });
    await runCommand(old, 'enable', { name: 'done', seq: 0, extra });
    await waitForStatus(old, 'done', 0, (r) => r.instanceView.executionState === 'Succeeded');
    await writeSettings(old, 'live', 0, { publicSettings: { source: { script: 'sleep 60' } } });
    await runCommand(old, 'enable', { name: 'live', seq: 0, extra });
    await waitForStatus(old, 'live', 0, (r) => r.instanceView.executionState === 'Running');

    const { layout: next, steps } = await updateHandler(old, { zip: newZip, version: '1.0.1' });
    layouts.push(next);
    for (const { step, result } of steps) expect(result.exitCode, `${step}: ${result.stderr}`).toBe(0);

    expect((await readStatus(next, 'done', 0))?.instanceView).toMatchObject({ executionState: 'Succeeded', output: 'finished\n' });
    expect((await readStatus(next, 'live', 0))?.instanceView.executionState).toBe('Canceled');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await readFile(counter, 'utf8')).toBe('ran\n');
    expect((await stat(join(next.libDir, 'runcommand-handler'))).isDirectory()).toBe(true);
    expect(await findProcesses(old.baseDir)).toEqual([]);
    expect((await findProcesses(`${next.baseDir}/dist/cli.js`)).length).toBe(1);

    await writeSettings(next, 'done', 1, { publicSettings: { source: { script: `echo ran >> ${counter}` } } });
    await runCommand(next, 'enable', { name: 'done', seq: 1, extra });
    await waitForStatus(next, 'done', 1, (r) => r.instanceView.executionState === 'Succeeded');
    expect(await readFile(counter, 'utf8')).toBe('ran\nran\n');
  });
  it('never re-runs the single configuration of an agent without multi-config (<seq>.settings, no ConfigExtensionName)', async () => {
    const old = await makeAgentLayout({ version: '1.0.0' });
    layouts.push(old);
    await runCommand(old, 'install', { extra });
    const counter = join(old.root, 'single.count');
    await writeSettings(old, SINGLE_CONFIG, 3, { publicSettings: { source: { script: `echo ran >> ${counter}; echo single` } } });
    await runCommand(old, 'enable', { name: SINGLE_CONFIG, seq: 3, extra });
    await waitForStatus(old, SINGLE_CONFIG, 3, (r) => r.instanceView.executionState === 'Succeeded');

    const { layout: next, steps } = await updateHandler(old, { zip: newZip, version: '1.0.1' });
    layouts.push(next);
    for (const { step, result } of steps) expect(result.exitCode, `${step}: ${result.stderr}`).toBe(0);
    expect(steps.map(({ step }) => step)).toContain('new enable ');
    expect((await readStatus(next, SINGLE_CONFIG, 3))?.instanceView).toMatchObject({ executionState: 'Succeeded', output: 'single\n' });
    await writeSettings(next, SINGLE_CONFIG, 4, { publicSettings: { source: { script: `echo ran >> ${counter}` } } });
    await runCommand(next, 'enable', { name: SINGLE_CONFIG, seq: 4, extra });
    await waitForStatus(next, SINGLE_CONFIG, 4, (r) => r.instanceView.executionState === 'Succeeded');
    expect(await readFile(counter, 'utf8')).toBe('ran\nran\n');
  });
});
