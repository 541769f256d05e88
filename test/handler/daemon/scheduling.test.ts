import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { disposeHarness, makeHarness, readStatus, waitFor, waitForTerminal, writeSettings, type Harness } from '../../helpers/daemon-harness.js';
import { makeGate } from '../../helpers/gate.js';

let harness: Harness;

afterEach(async () => {
  await disposeHarness(harness);
});

async function start(env: Record<string, string> = {}): Promise<void> {
  harness = await makeHarness(env);
  await harness.daemon.start();
}

const log = () => join(harness.root, 'order.log');
const step = (name: string, extra = '') => ({ source: { script: `echo start-${name} >> ${log()}; ${extra} echo end-${name} >> ${log()}` } });

describe('scheduling', () => {
  it('runs a dependsOn chain in order, the dependent Pending with a message naming what it waits for', async () => {
    await start();
    await writeSettings(harness, 'third', 0, { ...step('third'), dependsOn: ['second'] });
    await writeSettings(harness, 'second', 0, { ...step('second', 'sleep 1;'), dependsOn: ['first'] });
    const waiting = await waitFor(() => readStatus(harness, 'third', 0), (s) => s?.view.executionMessage.startsWith('Waiting') === true);
    expect(waiting?.view.executionState).toBe('Pending');
    expect(waiting?.view.executionMessage).toContain('second');
    await writeSettings(harness, 'first', 0, step('first', 'sleep 1;'));
    expect((await waitForTerminal(harness, 'third', 0)).view.executionState).toBe('Succeeded');
    expect(await readFile(log(), 'utf8')).toBe(['first', 'second', 'third'].map((n) => `start-${n}\nend-${n}\n`).join(''));
  });

  it('does not run a dependent whose dependency failed, naming the dependency and its state', async () => {
    await start();
    await writeSettings(harness, 'broken', 0, { source: { script: 'exit 9' } });
    await writeSettings(harness, 'after', 0, { ...step('after'), dependsOn: ['broken'] });
    const after = await waitForTerminal(harness, 'after', 0);
    expect(after.view.executionState).toBe('Failed');
    expect(after.view.executionMessage).toBe("Execution failed: not run because dependency 'broken' did not succeed (Failed, exit code 9)");
    await expect(readFile(log(), 'utf8')).rejects.toThrow();
  });

  it('fails a dependent whose dependency never appears once the configured bound has passed', async () => {
    await start({ RUNCOMMAND_HANDLER_DEPENDENCY_WAIT_MS: '800' });
    await writeSettings(harness, 'lonely', 0, { ...step('lonely'), dependsOn: ['ghost'] });
    const lonely = await waitForTerminal(harness, 'lonely', 0);
    expect(lonely.view.executionMessage).toBe("Execution failed: not run because dependency 'ghost' did not appear within 800 ms");
  });

  it('gives every member of a dependency cycle a Failed −202 status naming the cycle', async () => {
    await start();
    await writeSettings(harness, 'a', 0, { ...step('a'), dependsOn: ['b'] });
    await waitFor(() => readStatus(harness, 'a', 0), (s) => s?.view.executionMessage.startsWith('Waiting') === true);
    await writeSettings(harness, 'b', 0, { ...step('b'), dependsOn: ['a'] });
    for (const name of ['a', 'b']) {
      const status = await waitForTerminal(harness, name, 0);
      // run-command.md §6 (12-01): a run that ended is top-level success, however it failed (Compat).
      expect(status.status).toBe('success');
      expect(status.view).toMatchObject({ executionState: 'Failed', exitCode: -202 });
      expect(status.view.startTime).not.toBe('');
      expect(status.view.executionMessage).toMatch(/dependency cycle (a → b → a|b → a → b)/);
    }
  });

  it('runs no more than the concurrency limit at once; the next one waits Pending as queued', async () => {
    await start({ RUNCOMMAND_HANDLER_CONCURRENCY: '2' });
    const gate = await makeGate();
    for (const name of ['p1', 'p2']) await writeSettings(harness, name, 0, { source: { script: gate.wait } });
    for (const name of ['p1', 'p2']) await waitFor(() => readStatus(harness, name, 0), (s) => s?.view.executionState === 'Running');
    await writeSettings(harness, 'p3', 0, { source: { script: 'true' } });
    const queued = await waitFor(() => readStatus(harness, 'p3', 0), (s) => s?.view.executionMessage.startsWith('Queued') === true);
    expect(queued?.view.executionState).toBe('Pending');
    // Both slots stay taken until the gate opens: p3 cannot have started, whatever the time.
    expect((await readStatus(harness, 'p1', 0))?.view.executionState).toBe('Running');
    expect((await readStatus(harness, 'p3', 0))?.view.executionState).toBe('Pending');
    await gate.open();
    expect((await waitForTerminal(harness, 'p3', 0)).view.executionState).toBe('Succeeded');
    for (const name of ['p1', 'p2']) expect((await waitForTerminal(harness, name, 0)).view.executionState).toBe('Succeeded');
  });
});
