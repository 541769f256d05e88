// @module-tag faults
// A daemon killed between a run's terminal journal write and its status write leaves the status
// Running (issue 13, #2): after any restart or re-enable, every status file agrees with its journal.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { disposeHarness, makeDaemon, makeHarness, readStatus, waitFor, waitForTerminal, writeSettings, type Harness } from '../../helpers/daemon-harness.js';

let harness: Harness;

afterEach(async () => {
  await disposeHarness(harness);
});

// Rewrites a status file as it was before the run ended: Running, no endTime.
async function rollBackStatus(name: string, seq: number): Promise<void> {
  const path = join(harness.paths.statusFolder, `${name}.${seq}.status`);
  const [entry] = JSON.parse(await readFile(path, 'utf8')) as [{ status: { status: string; formattedMessage: { message: string } } }];
  const view = { ...(JSON.parse(entry.status.formattedMessage.message) as Record<string, unknown>), executionState: 'Running', executionMessage: 'Execution in progress', endTime: '' };
  entry.status = { ...entry.status, status: 'transitioning', formattedMessage: { ...entry.status.formattedMessage, message: JSON.stringify(view) } };
  await writeFile(path, JSON.stringify([entry]));
}

describe('status files agree with journals', () => {
  it('rewrites a Running status of a run that ended when the daemon restarts', async () => {
    harness = await makeHarness();
    await harness.daemon.start();
    await writeSettings(harness, 'done', 0, { source: { script: 'echo finished; exit 4' } });
    await waitForTerminal(harness, 'done', 0);
    await harness.daemon.stop(false);
    await rollBackStatus('done', 0);
    expect((await readStatus(harness, 'done', 0))?.view.executionState).toBe('Running');
    harness.daemon = makeDaemon(harness);
    await harness.daemon.start();
    const status = await waitFor(() => readStatus(harness, 'done', 0), (s) => s?.view.executionState === 'Failed');
    expect(status?.view).toMatchObject({ exitCode: 4, output: 'finished\n' });
    expect(status?.view.endTime).not.toBe('');
    expect(harness.lines.some((line) => line.includes('status file did not agree with the run journal'))).toBe(true);
  });

  it('rewrites it on a re-enable of the same sequence number while the daemon runs', async () => {
    harness = await makeHarness();
    await harness.daemon.start();
    await writeSettings(harness, 'done', 0, { source: { script: 'echo finished' } });
    await waitForTerminal(harness, 'done', 0);
    await rollBackStatus('done', 0);
    await harness.context.daemon.enable('done', 0);
    const status = await waitFor(() => readStatus(harness, 'done', 0), (s) => s?.view.executionState === 'Succeeded');
    expect(status?.view.output).toBe('finished\n');
  });
});
