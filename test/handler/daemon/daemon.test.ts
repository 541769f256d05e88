import { createHash } from 'node:crypto';
import { readFile, readdir, rm, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  disposeHarness, findProcesses, makeDaemon, makeHarness, readStatus, waitFor, waitForTerminal, writeSettings, type Harness,
} from '../../helpers/daemon-harness.js';
import { makeGate } from '../../helpers/gate.js';
import { startSilentServer } from '../../helpers/loopback-http.js';
import { systemClock } from '../../../src/util/time.js';

let harness: Harness;

afterEach(async () => {
  await disposeHarness(harness);
});

async function start(env: Record<string, string> = {}): Promise<Harness> {
  harness = await makeHarness(env);
  await harness.daemon.start();
  return harness;
}

const script = (text: string) => ({ source: { script: text } });

describe('Daemon', () => {
  it('runs a dropped settings file with named and unnamed parameters and reports the result', async () => {
    await start();
    await writeSettings(harness, 'hello', 0, {
      ...script('printf "%s|%s|%s|%s" "$GREETING" "$1" "$2" "$#"; echo oops >&2; exit 4'),
      parameters: [{ name: 'GREETING', value: 'a b "c" $(id)' }, { value: 'first arg' }, { value: 'ünï $HOME' }],
    });
    const status = await waitForTerminal(harness, 'hello', 0);
    expect(status.status).toBe('success');
    expect(status.view).toMatchObject({ executionState: 'Failed', exitCode: 4, output: 'a b "c" $(id)|first arg|ünï $HOME|2', error: 'oops\n' });
    expect(status.view.startTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  it('reports Failed −202 with the field and rule for invalid settings and keeps serving the next run command', async () => {
    await start();
    await writeSettings(harness, 'bad', 0, { source: { script: 'true', commandId: 'RunShellScript2' } });
    await writeSettings(harness, 'good', 0, script('echo fine'));
    const bad = await waitForTerminal(harness, 'bad', 0);
    // run-command.md §6 (12-01): a run that ended is top-level success, however it failed (Compat).
    expect(bad.status).toBe('success');
    expect(bad.view).toMatchObject({ executionState: 'Failed', exitCode: -202 });
    expect(bad.view.startTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(bad.view.executionMessage).toContain('source');
    const good = await waitForTerminal(harness, 'good', 0);
    expect(good.view).toMatchObject({ executionState: 'Succeeded', output: 'fine\n', exitCode: 0 });
  });

  it('never re-runs a (name, seq) when the agent rewrites its settings file or the daemon restarts', async () => {
    await start();
    const counter = join(harness.root, 'count');
    const path = await writeSettings(harness, 'once', 3, script(`echo x >> ${counter}`));
    await waitForTerminal(harness, 'once', 3);
    const later = new Date(Date.now() + 5000);
    await utimes(path, later, later);
    await harness.context.daemon.enable('once', 3);
    await harness.daemon.stop(false);
    harness.daemon = makeDaemon(harness);
    await harness.daemon.start();
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await readFile(counter, 'utf8')).toBe('x\n');
  });

  it('cancels the running run when a newer sequence number arrives, then runs the new one', async () => {
    await start();
    await writeSettings(harness, 'seqs', 1, script('sleep 30'));
    await waitFor(() => readStatus(harness, 'seqs', 1), (s) => s?.view.executionState === 'Running');
    await writeSettings(harness, 'seqs', 2, script('echo second'));
    const second = await waitForTerminal(harness, 'seqs', 2);
    expect(second.view.output).toBe('second\n');
    const first = await waitForTerminal(harness, 'seqs', 1);
    expect(first.view.executionState).toBe('Canceled');
    expect(first.view.executionMessage).toContain('superseded by sequence number 2');
  });

  it('kills the whole process tree and reports TimedOut when timeoutInSeconds elapses', async () => {
    await start();
    const marker = `rch-timeout-${process.pid}-${Date.now()}`;
    await writeSettings(harness, 'slow', 0, {
      ...script(`bash -c 'sleep 300; : ${marker}' & sleep 300 # ${marker}\nwait`),
      // Long enough for the processes to be seen before it fires, even at half speed.
      timeoutInSeconds: 3,
    });
    await waitFor(() => findProcesses(marker), (pids) => pids.length > 0);
    const status = await waitForTerminal(harness, 'slow', 0);
    expect(status.view).toMatchObject({ executionState: 'TimedOut', exitCode: -1 });
    expect(status.status).toBe('success');
    expect(await findProcesses(marker)).toEqual([]);
  });

  it('on disable kills the script, writes no status for the name afterwards, and lets a re-create with a lower seq run', async () => {
    await start();
    await writeSettings(harness, 'gone', 5, script('sleep 30'));
    await waitFor(() => readStatus(harness, 'gone', 5), (s) => s?.view.executionState === 'Running');
    expect(await harness.context.daemon.disable('gone')).toEqual({});
    await rm(join(harness.paths.statusFolder, 'gone.5.status'));
    await rm(join(harness.paths.configFolder, 'gone.5.settings'));
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(await readdir(harness.paths.statusFolder)).not.toContain('gone.5.status');
    await writeSettings(harness, 'gone', 0, script('echo again'));
    const recreated = await waitForTerminal(harness, 'gone', 0);
    expect(recreated.view.output).toBe('again\n');
  });

  it('re-attaches after a restart and reports the true exit code of a script that outlived the daemon', async () => {
    await start();
    const gate = await makeGate();
    await writeSettings(harness, 'survivor', 0, script(`${gate.wait}; echo done; exit 7`));
    await waitFor(() => readStatus(harness, 'survivor', 0), (s) => s?.view.executionState === 'Running');
    await harness.daemon.stop(false);
    harness.daemon = makeDaemon(harness);
    await harness.daemon.start();
    await gate.open();
    const status = await waitForTerminal(harness, 'survivor', 0);
    expect(status.view).toMatchObject({ executionState: 'Failed', exitCode: 7, output: 'done\n' });
  });

  it('keeps rewriting the status of a re-attached script while it runs', async () => {
    await start();
    const [printed, ended] = [await makeGate(), await makeGate()];
    await writeSettings(harness, 'reattached', 0, script(`${printed.wait}; echo late-line; ${ended.wait}`));
    await waitFor(() => readStatus(harness, 'reattached', 0), (s) => s?.view.executionState === 'Running');
    await harness.daemon.stop(false);
    harness.daemon = makeDaemon(harness);
    await harness.daemon.start();
    await printed.open();
    // Only the cadence can bring the new line into the status: the run's state does not change.
    const seen = await waitFor(() => readStatus(harness, 'reattached', 0), (s) => s?.view.output === 'late-line\n');
    expect(seen?.view.executionState).toBe('Running');
    await ended.open();
    expect((await waitForTerminal(harness, 'reattached', 0)).view.executionState).toBe('Succeeded');
  });

  it('cancels a run whose script is still downloading without waiting for the download', async () => {
    await start();
    const server = await startSilentServer();
    try {
      await writeSettings(harness, 'stuck', 0, { source: { scriptUri: server.url('/stuck.sh') } });
      await waitFor(() => readStatus(harness, 'stuck', 0), (s) => s?.view.executionState === 'Pending');
      await waitFor(async () => server.requests, (count) => count > 0);
      const started = Date.now();
      expect(await harness.context.daemon.cancel('stuck')).toEqual({ canceled: true });
      const status = await waitForTerminal(harness, 'stuck', 0);
      expect(status.view.executionState).toBe('Canceled');
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      server.close();
    }
  });

  it('times out a run whose script download never answers: timeoutInSeconds counts from preparation', { tags: ['faults'] }, async () => {
    await start();
    const server = await startSilentServer();
    try {
      const before = systemClock.monotonicMs();
      await writeSettings(harness, 'stalled', 0, { source: { scriptUri: server.url('/stalled.sh') }, timeoutInSeconds: 2 });
      await waitFor(async () => server.requests, (count) => count > 0);
      // The deadline is journaled while the run is still Pending (downloading).
      const current = await harness.context.store.currentRun('stalled');
      expect(current.kind === 'run' && current.journal.kind === 'present' ? current.journal.value : undefined).toMatchObject({ state: 'Pending', timeoutInSeconds: 2 });
      const journal = current.kind === 'run' && current.journal.kind === 'present' ? current.journal.value : undefined;
      expect(journal?.deadlineMonotonicMs).toBeGreaterThanOrEqual(before + 2000);
      expect(journal?.deadlineMonotonicMs).toBeLessThanOrEqual(systemClock.monotonicMs() + 2000);
      const status = await waitForTerminal(harness, 'stalled', 0, 20_000);
      expect(status.view).toMatchObject({ executionState: 'TimedOut', exitCode: -1 });
      expect(status.view.executionMessage).toContain('timed out after 2 s');
    } finally {
      server.close();
    }
  });

  it('keeps a protected parameter out of logs, status and journal while passing it to the script', async () => {
    await start();
    const canary = `CANARY-${Date.now()}-s3cr3t`;
    await writeSettings(harness, 'secret', 0, script('printf %s "$TOKEN" | sha256sum'), {
      protectedParameters: [{ name: 'TOKEN', value: canary }],
    });
    const status = await waitForTerminal(harness, 'secret', 0);
    expect(status.view.executionState).toBe('Succeeded');
    expect(status.view.output).toBe(`${createHash('sha256').update(canary).digest('hex')}  -\n`);
    const files = await readdir(harness.root, { recursive: true });
    for (const file of files) {
      const text = await readFile(join(harness.root, file), 'utf8').catch(() => '');
      expect(text.includes(canary), file).toBe(false);
    }
    expect(harness.lines.join('\n')).not.toContain(canary);
  });
});
