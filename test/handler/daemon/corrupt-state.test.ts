// A corrupt exactly-once record or run journal is never taken for "never ran": nothing runs a second
// time, the status says why, and the log names it (issue 15: absent and corrupt are different answers).
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  disposeHarness, makeDaemon, makeHarness, readStatus, waitFor, waitForTerminal, writeSettings, type Harness,
} from '../../helpers/daemon-harness.js';
import { makeGate } from '../../helpers/gate.js';

let harness: Harness;

afterEach(async () => {
  await disposeHarness(harness);
});

async function start(): Promise<void> {
  harness = await makeHarness();
  await harness.daemon.start();
}

async function restart(): Promise<void> {
  await harness.daemon.stop(false);
  harness.daemon = makeDaemon(harness);
  await harness.daemon.start();
}

const counted = (counter: string, extra = '') => ({ source: { script: `echo ran >> ${counter}; ${extra} echo done` } });
const recordPath = (name: string): string => join(harness.paths.stateDir, 'records', `${name}.json`);

async function runDirOf(name: string): Promise<string> {
  const { runId } = JSON.parse(await readFile(recordPath(name), 'utf8')) as { runId: string };
  return harness.context.store.toRunDir(runId);
}

describe('corrupt state', () => {
  it('never runs a run command whose exactly-once record is corrupt: the enabled status says why, and the log names it', async () => {
    await start();
    const counter = join(harness.root, 'count');
    await writeSettings(harness, 'rc', 0, counted(counter));
    expect((await waitForTerminal(harness, 'rc', 0)).view.executionState).toBe('Succeeded');
    await writeFile(recordPath('rc'), '{"name":"rc","seq":0,"ru');
    await writeSettings(harness, 'rc', 1, counted(counter));
    await harness.context.daemon.enable('rc', 1);
    const refused = await waitForTerminal(harness, 'rc', 1);
    expect(refused.view).toMatchObject({ executionState: 'Failed', exitCode: -1 });
    expect(refused.view.executionMessage).toBe(
      'Execution failed: the record of which sequence number of rc already ran is not valid JSON; to be safe it is not run (delete and re-create the run command to run it again)',
    );
    await restart();
    await harness.context.daemon.enable('rc', 0);
    const refusedAgain = (line: string): boolean => line.includes('exactly-once record unreadable: not run') && line.includes('"seq":0') && line.includes('"origin":"enable"');
    await waitFor(async () => harness.lines.some(refusedAgain), (seen) => seen);
    // The real outcome of seq 0 stays reported.
    expect((await readStatus(harness, 'rc', 0))?.view.executionState).toBe('Succeeded');
    expect(await readFile(counter, 'utf8')).toBe('ran\n');
    expect(harness.lines.some((line) => line.includes('exactly-once record unreadable: not run') && line.includes('is not valid JSON'))).toBe(true);
  });

  it('runs a re-created run command again once disable has set the corrupt record aside', async () => {
    await start();
    const counter = join(harness.root, 'count');
    await writeSettings(harness, 'rc', 0, counted(counter));
    await waitForTerminal(harness, 'rc', 0);
    await writeFile(recordPath('rc'), 'garbage');
    expect(await harness.context.daemon.disable('rc')).toEqual({});
    await rm(join(harness.paths.statusFolder, 'rc.0.status'));
    await writeSettings(harness, 'rc', 0, counted(counter));
    await harness.context.daemon.enable('rc', 0);
    expect((await waitForTerminal(harness, 'rc', 0)).view.executionState).toBe('Succeeded');
    expect(await readFile(counter, 'utf8')).toBe('ran\nran\n');
  });

  it('follows a running script whose journal became unreadable to its true end after a restart, without starting it again', async () => {
    await start();
    const counter = join(harness.root, 'count');
    const gate = await makeGate();
    await writeSettings(harness, 'rc', 0, counted(counter, `${gate.wait}; exit 3;`));
    await waitFor(() => readStatus(harness, 'rc', 0), (status) => status?.view.executionState === 'Running');
    await harness.daemon.stop(false);
    await writeFile(join(await runDirOf('rc'), 'journal.json'), '{"version":1');
    harness.daemon = makeDaemon(harness);
    await harness.daemon.start();
    await gate.open();
    const ended = await waitForTerminal(harness, 'rc', 0);
    expect(ended.view).toMatchObject({ executionState: 'Failed', exitCode: 3 });
    expect(await readFile(counter, 'utf8')).toBe('ran\n');
    expect(harness.lines.some((line) => line.includes('run journal unreadable: the run is ended, never started again'))).toBe(true);
  });

  it('ends a run whose journal is unreadable and whose script never started, and never starts it', async () => {
    await start();
    const counter = join(harness.root, 'count');
    await writeSettings(harness, 'rc', 0, { ...counted(counter), dependsOn: ['never'] });
    await waitFor(() => readStatus(harness, 'rc', 0), (status) => status?.view.executionMessage.startsWith('Waiting') === true);
    await harness.daemon.stop(false);
    await writeFile(join(await runDirOf('rc'), 'journal.json'), 'not json');
    harness.daemon = makeDaemon(harness);
    await harness.daemon.start();
    const ended = await waitForTerminal(harness, 'rc', 0);
    expect(ended.view).toMatchObject({ executionState: 'Failed', exitCode: -1 });
    expect(ended.view.executionMessage).toContain('the run journal is not valid JSON; whether the script started is unknown, so it is not started (again)');
    await expect(readFile(counter, 'utf8')).rejects.toThrow();
  });
});
