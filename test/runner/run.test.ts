// The Run state machine with a clock and a process layer the test drives: every transition, the
// deadline and the kill fallback, cancel in each state, re-attach after a restart and a reboot.
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { errorCodes, HandlerError } from '../../src/errors.js';
import { noServiceMessage, Run } from '../../src/runner/run.js';
import { makeRunJournal, type RunJournal } from '../../src/runner/journal.js';
import { FakeProcesses, flush, makeFakeRunDeps, ManualClock, MemoryJournals, until } from '../helpers/fake-runner.js';
import { startSilentServer } from '../helpers/loopback-http.js';
import { parseSettings } from '../helpers/settings.js';
import { useTempDir } from '../helpers/temp-dir.js';

const dir = useTempDir('run');
let clock: ManualClock;
let processes: FakeProcesses;
let journals: MemoryJournals;

beforeEach(() => {
  clock = new ManualClock();
  processes = new FakeProcesses();
  journals = new MemoryJournals();
});

function makeRun(publicSettings: Record<string, unknown> = {}, journal?: RunJournal): Run {
  const command = parseSettings({ source: { script: 'echo hi' }, ...publicSettings });
  const start = journal ?? makeRunJournal({ name: 'rc1', seq: 3, runId: 'rc1.3.x', settingsFile: '/config/rc1.3.settings', bootId: 'boot-1' }, clock.now(), command);
  return new Run(dir(), start, journal ? undefined : command, makeFakeRunDeps({ clock, processes, journals, workRoot: dir() }));
}

// Each journal write as `<state>[+attempt]:<fsync | kept by the kernel>`, in order.
function writesAndSyncs(): string[] {
  return journals.written.map((journal, index) => `${journal.state}${journal.launchAttempts ? '+attempt' : ''}:${journals.durable[index] ? 'fsync' : 'kept by the kernel'}`);
}

// Starts the run and waits until its script was launched; `done` resolves when the run is terminal.
async function started(run: Run): Promise<{ done: Promise<RunJournal> }> {
  await run.persist();
  const done = run.execute();
  await until(() => run.journal.state !== 'Pending', 'the script to be launched');
  expect(run.journal.state).toBe('Running');
  return { done };
}

describe('Run', () => {
  it('goes Pending → Running → Succeeded, journaling each state before announcing it', async () => {
    const run = makeRun();
    const announced: string[] = [];
    run.on('change', (journal) => announced.push(`${journal.state}@${journals.written.length}`));
    const { done } = await started(run);
    expect(processes.launches[0]?.program).toBe('/bin/bash');
    clock.advance(1500);
    processes.exit(processes.lastPid, { kind: 'exited', exitCode: 0 });
    const journal = await done;
    expect(journals.states).toEqual(['Pending', 'Running', 'Succeeded']);
    // The second Pending write counts the launch attempt before any launch work (hardening #3) and
    // records the nonce that fences its launch, before the request is sent (hardening #5).
    expect(announced).toEqual(['Pending@1', 'Pending@2', 'Running@3', 'Succeeded@4']);
    expect(journals.written[1]?.launchAttempts).toBe(1);
    expect(journals.written[1]?.launchNonce).toMatch(/^[0-9a-f]{32}$/);
    expect(processes.launches[0]?.launchNonce).toBe(journals.written[1]?.launchNonce);
    expect(journal).toMatchObject({ state: 'Succeeded', message: 'Execution completed', exitCode: 0, startTime: '2026-12-02T10:00:00Z', launchTime: '2026-12-02T10:00:00Z', endTime: '2026-12-02T10:00:01Z' });
    expect(journal.process?.pid).toBe(processes.lastPid);
  });

  it('fsyncs the journal writes recovery needs after a power loss (Pending before the launch, the end) and no other', async () => {
    const run = makeRun({ timeoutInSeconds: 60 });
    const { done } = await started(run);
    processes.exit(processes.lastPid, { kind: 'exited', exitCode: 0 });
    await done;
    // Pending; the launch attempt, its nonce and the deadline (this boot's only); Running (the wrapper fsynced
    // the same identity first); the end.
    expect(writesAndSyncs()).toEqual([
      'Pending:fsync',
      'Pending+attempt:kept by the kernel',
      'Running+attempt:kept by the kernel',
      'Succeeded+attempt:fsync',
    ]);
  });

  it('journals a run that starts at once only with its launch attempt, fsynced, before the launch (issue 16)', async () => {
    const run = makeRun({ timeoutInSeconds: 60 });
    const launchedAfter: number[] = [];
    const launchScript = processes.launchScript.bind(processes);
    processes.launchScript = async (launch) => {
      launchedAfter.push(journals.written.length);
      return launchScript(launch);
    };
    await run.persist({ startsAtOnce: true });
    expect(journals.written).toEqual([]);
    const done = run.execute();
    await until(() => run.journal.state === 'Running', 'the script to be launched');
    processes.exit(processes.lastPid, { kind: 'exited', exitCode: 0 });
    await done;
    // Its first write is its Pending journal as recovery needs it (a run without one never
    // started), and the nonce that fences its launch rides on it.
    expect(writesAndSyncs()).toEqual([
      'Pending+attempt:fsync',
      'Running+attempt:kept by the kernel',
      'Succeeded+attempt:fsync',
    ]);
    expect(launchedAfter).toEqual([1]);
    expect(processes.launches[0]?.launchNonce).toBe(journals.written[0]?.launchNonce);
  });

  it('journals each launch attempt before its launch work begins (hardening #3)', async () => {
    const seen: Array<number | undefined> = [];
    const run = new Run(dir(), { ...makeRunJournal({ name: 'rc1', seq: 3, runId: 'rc1.3.x', settingsFile: '/config/rc1.3.settings', bootId: 'boot-1' }, clock.now()), launchAttempts: 1 }, parseSettings({ source: { script: 'echo hi' } }), makeFakeRunDeps({ clock, processes, journals, workRoot: dir() }), [
      { beforeLaunch: async (current) => void seen.push(current.journal.launchAttempts) },
    ]);
    await run.persist();
    const done = run.execute();
    await until(() => run.journal.state === 'Running', 'the script to be launched');
    // A run journaled with one attempt (the daemon died during it) begins its second.
    expect(seen).toEqual([2]);
    expect(journals.written.find((journal) => journal.launchAttempts === 2)?.state).toBe('Pending');
    processes.exit(processes.lastPid, { kind: 'exited', exitCode: 0 });
    expect(await done).toMatchObject({ state: 'Succeeded', launchAttempts: 2 });
  });

  it('sends a launch request only once its fresh nonce is journaled, and never when that journal cannot be written (hardening #5)', async () => {
    const journaledAtLaunch: Array<string | undefined> = [];
    const launchScript = processes.launchScript.bind(processes);
    processes.launchScript = async (launch) => {
      journaledAtLaunch.push(journals.written.at(-1)?.launchNonce);
      return launchScript(launch);
    };
    const earlier = { ...makeRunJournal({ name: 'rc1', seq: 3, runId: 'rc1.3.x', settingsFile: '/config/rc1.3.settings', bootId: 'boot-1' }, clock.now()), launchAttempts: 1, launchNonce: 'ab12' };
    const run = new Run(dir(), earlier, parseSettings({ source: { script: 'echo hi' } }), makeFakeRunDeps({ clock, processes, journals, workRoot: dir() }));
    await run.persist();
    const done = run.execute();
    await until(() => run.journal.state === 'Running', 'the script to be launched');
    expect(processes.launches[0]?.launchNonce).toMatch(/^[0-9a-f]{32}$/);
    expect(processes.launches[0]?.launchNonce).not.toBe('ab12');
    expect(journaledAtLaunch).toEqual([processes.launches[0]?.launchNonce]);
    processes.exit(processes.lastPid, { kind: 'exited', exitCode: 0 });
    await done;

    // A store that refuses the nonce's journal (not a transient error): nothing is launched.
    let refused = 0;
    const refusing = new MemoryJournals();
    refusing.writeJournal = async (journal) => {
      if (journal.launchNonce !== undefined && refused++ === 0) throw Object.assign(new Error('read-only file system'), { code: 'EROFS' });
      refusing.written.push(journal);
    };
    const unrecorded = new Run(dir(), makeRunJournal({ name: 'rc2', seq: 0, runId: 'rc2.0.x', settingsFile: '/config/rc2.0.settings', bootId: 'boot-1' }, clock.now()), parseSettings({ source: { script: 'echo hi' } }), makeFakeRunDeps({ clock, processes, journals: refusing, workRoot: dir() }));
    await unrecorded.persist();
    const journal = await unrecorded.execute();
    expect(journal).toMatchObject({ state: 'Failed', exitCode: errorCodes.startExecution, handlerFailure: true });
    expect(journal.message).toContain('its launch could not be recorded in the run journal');
    expect(processes.launches).toHaveLength(1);
  });

  it('ends only the run whose launch work throws (hardening #3): no exception escapes execute', async () => {
    const throwing = [
      { beforeLaunch: (): Promise<void> => { throw new TypeError('boom in launch work'); } },
    ];
    const run = new Run(dir(), makeRunJournal({ name: 'rc1', seq: 3, runId: 'rc1.3.x', settingsFile: '/config/rc1.3.settings', bootId: 'boot-1' }, clock.now()), parseSettings({ source: { script: 'echo hi' } }), makeFakeRunDeps({ clock, processes, journals, workRoot: dir() }), throwing);
    await run.persist();
    const journal = await run.execute();
    expect(journal).toMatchObject({ state: 'Failed', exitCode: errorCodes.startExecution, handlerFailure: true });
    expect(journal.message).toContain('boom in launch work');
    expect(processes.launches).toEqual([]);
    // The next run is not affected.
    const next = makeRun();
    const { done } = await started(next);
    processes.exit(processes.lastPid, { kind: 'exited', exitCode: 0 });
    expect(await done).toMatchObject({ state: 'Succeeded' });
  });

  it('reports a non-zero exit as Failed with the exit code, a signal as Failed −1', async () => {
    const first = makeRun();
    const { done } = await started(first);
    processes.exit(processes.lastPid, { kind: 'exited', exitCode: 7 });
    expect(await done).toMatchObject({ state: 'Failed', exitCode: 7, handlerFailure: false });
    const second = makeRun();
    const { done: killed } = await started(second);
    processes.exit(processes.lastPid, { kind: 'signaled', signal: 9 });
    expect(await killed).toMatchObject({ state: 'Failed', exitCode: -1, message: 'Execution failed: the script was killed by signal 9' });
  });

  it('asks for termination at the deadline, forces it after the grace period, and ends TimedOut', async () => {
    const run = makeRun({ timeoutInSeconds: 10 });
    const { done } = await started(run);
    expect(run.journal.deadlineMonotonicMs).toBe(clock.monotonicMs() + 10_000);
    clock.advance(9_999);
    expect(processes.terminationRequests).toEqual([]);
    clock.advance(1);
    await flush();
    expect(processes.terminationRequests).toEqual([processes.lastPid]);
    expect(processes.terminationRunDirs).toEqual([run.runDir]);
    expect(run.journal.stopRequest).toEqual({ kind: 'timed-out', reason: 'timeoutInSeconds 10' });
    clock.advance(2000 + 5000);
    expect(processes.forcedKills).toEqual([processes.lastPid]);
    processes.exit(processes.lastPid, { kind: 'signaled', signal: 9 });
    expect(await done).toMatchObject({ state: 'TimedOut', exitCode: -1 });
    expect(clock.pending).toBe(0);
  });

  it('counts the timeout from the start of preparation: a stalled download ends TimedOut, never launched', async () => {
    const server = await startSilentServer();
    try {
      const run = makeRun({ source: { scriptUri: server.url('/stuck.sh') }, timeoutInSeconds: 10 });
      await run.persist();
      const preparing = clock.monotonicMs();
      const done = run.execute();
      await until(() => server.requests > 0, 'the download to start');
      expect(run.journal.state).toBe('Pending');
      expect(run.journal.deadlineMonotonicMs).toBe(preparing + 10_000);
      expect(journals.written.some((journal) => journal.state === 'Pending' && journal.deadlineMonotonicMs === preparing + 10_000)).toBe(true);
      clock.advance(9_999);
      await flush();
      expect(run.journal.state).toBe('Pending');
      clock.advance(1);
      expect(await done).toMatchObject({ state: 'TimedOut', exitCode: -1, message: expect.stringContaining('timed out after 10 s') });
      expect(processes.launches).toEqual([]);
      expect(journals.states).toEqual(['Pending', 'TimedOut']);
      expect(clock.pending).toBe(0);
    } finally {
      server.close();
    }
  });

  it('times out a run whose blob creation stalls, before the script starts', async () => {
    const command = parseSettings({ source: { script: 'echo hi' }, timeoutInSeconds: 5 });
    const start = makeRunJournal({ name: 'rc1', seq: 3, runId: 'rc1.3.x', settingsFile: '/config/rc1.3.settings', bootId: 'boot-1' }, clock.now(), command);
    let creating = false;
    const stalled = { beforeLaunch: () => { creating = true; return new Promise<void>(() => undefined); } };
    const second = { beforeLaunch: vi.fn(async () => undefined) };
    const run = new Run(dir(), start, command, makeFakeRunDeps({ clock, processes, journals, workRoot: dir() }), [stalled, second]);
    await run.persist();
    const done = run.execute();
    await until(() => creating, 'the blob creation to start');
    clock.advance(5_000);
    expect(await done).toMatchObject({ state: 'TimedOut' });
    expect(processes.launches).toEqual([]);
    expect(second.beforeLaunch).not.toHaveBeenCalled();
  });

  it('cancels a Pending run without launching anything', async () => {
    const run = makeRun();
    await run.persist();
    clock.advance(2000);
    expect(await run.cancel('disable')).toMatchObject({
      state: 'Canceled',
      message: 'Execution failed: canceled (disable); the script and its child processes were terminated',
      // startTime is the acceptance, even for a run that never launched (run-command.md §6).
      startTime: '2026-12-02T10:00:00Z',
      endTime: '2026-12-02T10:00:02Z',
    });
    expect(run.journal.launchTime).toBeUndefined();
    expect(await run.execute()).toMatchObject({ state: 'Canceled' });
    expect(processes.launches).toEqual([]);
  });

  it('cancels a Running run: the stop request is journaled before the tree is signalled', async () => {
    const run = makeRun();
    const { done } = await started(run);
    const canceled = run.cancel('superseded by sequence number 4');
    await flush();
    const requestedAt = journals.written.findIndex((journal) => journal.stopRequest !== undefined);
    expect(requestedAt).toBeGreaterThan(0);
    expect(processes.terminationRequests).toEqual([processes.lastPid]);
    processes.exit(processes.lastPid, { kind: 'signaled', signal: 15 });
    expect(await canceled).toMatchObject({ state: 'Canceled', exitCode: -1 });
    expect(await done).toBe(await canceled);
  });

  it('never changes a terminal run again', async () => {
    const run = makeRun();
    const { done } = await started(run);
    processes.exit(processes.lastPid, { kind: 'exited', exitCode: 0 });
    await done;
    const count = journals.written.length;
    expect(await run.cancel('late')).toMatchObject({ state: 'Succeeded' });
    expect(await run.skip('late')).toMatchObject({ state: 'Succeeded' });
    expect(journals.written.length).toBe(count);
  });

  it('fails a run whose launch fails with the launch error code, as a handler failure', async () => {
    const run = makeRun();
    processes.failNextLaunch = new HandlerError(errorCodes.startExecution, 'no wrapper');
    await run.persist();
    expect(await run.execute()).toMatchObject({ state: 'Failed', exitCode: -204, message: 'Execution failed: no wrapper', handlerFailure: true, startTime: '2026-12-02T10:00:00Z' });
  });

  it('reports an exit record that cannot be read as a failure with an unknown outcome, never as a kill', async () => {
    const run = makeRun();
    const { done } = await started(run);
    processes.exit(processes.lastPid, { kind: 'unreadable', reason: 'exit-status.json is not a valid exit record' });
    const journal = await done;
    expect(journal).toMatchObject({ state: 'Failed', exitCode: -1, handlerFailure: true });
    expect(journal.message).toContain('how the script ended is unknown');
  });

  it('times out on the monotonic clock: a wall-clock step neither stretches the deadline of a run re-attached after a restart nor fires it early', async () => {
    const run = makeRun({ timeoutInSeconds: 10 });
    await started(run);
    const journaled = run.journal;
    // The daemon dies (its process layer with it); the wall clock steps an hour back (NTP, a VM
    // resume); a new daemon re-attaches from the journal.
    const later = new FakeProcesses();
    clock.stepWallClock(-60 * 60_000);
    const after = new Run(dir(), journaled, undefined, makeFakeRunDeps({ clock, processes: later, journals, workRoot: dir() }));
    const done = after.resume();
    clock.advance(5_000);
    clock.stepWallClock(+2 * 60 * 60_000);
    await flush();
    expect(later.terminationRequests).toEqual([]);
    clock.advance(5_000);
    await flush();
    expect(later.terminationRequests).toEqual([journaled.process?.pid]);
    later.exit(journaled.process?.pid ?? 0, { kind: 'signaled', signal: 15 });
    expect(await done).toMatchObject({ state: 'TimedOut' });
  });

  it('keeps honouring the wall-clock deadline of a journal written by an earlier version', async () => {
    const identity = { wrapperPid: 5, pid: 6, pgid: 6, startTime: '9', wrapperStartTime: '8' };
    const base = makeRunJournal({ name: 'rc1', seq: 3, runId: 'rc1.3.x', settingsFile: '', bootId: 'boot-1' }, clock.now());
    const done = makeRun({}, { ...base, state: 'Running', process: identity, deadline: clock.now() + 2000, timeoutInSeconds: 60 }).resume();
    clock.advance(2000);
    await flush();
    expect(processes.terminationRequests).toEqual([6]);
    processes.exit(6, { kind: 'signaled', signal: 15 });
    expect(await done).toMatchObject({ state: 'TimedOut' });
  });

  it('re-attaches to a script of the same boot and keeps its original deadline', async () => {
    const identity = { wrapperPid: 5, pid: 6, pgid: 6, startTime: '9', wrapperStartTime: '8' };
    const base = makeRunJournal({ name: 'rc1', seq: 3, runId: 'rc1.3.x', settingsFile: '', bootId: 'boot-1' }, clock.now());
    const run = makeRun({}, { ...base, state: 'Running', process: identity, deadlineMonotonicMs: clock.monotonicMs() + 3000, timeoutInSeconds: 60 });
    const done = run.resume();
    expect(processes.attached).toEqual([identity]);
    clock.advance(3000);
    await flush();
    expect(processes.terminationRequests).toEqual([6]);
    processes.exit(6, { kind: 'signaled', signal: 15 });
    expect(await done).toMatchObject({ state: 'TimedOut' });
  });

  it('ends a run of another boot as Failed −1, the VM restarted, without attaching', async () => {
    const identity = { wrapperPid: 5, pid: 6, pgid: 6, startTime: '9', wrapperStartTime: '8' };
    const base = makeRunJournal({ name: 'rc1', seq: 3, runId: 'rc1.3.x', settingsFile: '', bootId: 'boot-0' }, clock.now());
    const journal = await makeRun({}, { ...base, state: 'Running', process: identity }).resume();
    expect(journal).toMatchObject({ state: 'Failed', exitCode: -1 });
    expect(journal.message).toContain('the VM restarted during execution');
    expect(processes.attached).toEqual([]);
  });

  it('ends installAsService without a source as Succeeded at once, launching nothing, saying the service is not provided', async () => {
    const run = makeRun({ source: null, installAsService: true });
    await run.persist();
    const journal = await run.execute();
    expect(journal).toMatchObject({ state: 'Succeeded', exitCode: 0, startTime: '2026-12-02T10:00:00Z', endTime: '2026-12-02T10:00:00Z' });
    expect(journal.message).toBe(`Execution completed: ${noServiceMessage}`);
    expect(journal.message).toContain('immediate run-command service');
    expect(processes.launches).toEqual([]);
  });

  it("emits the settings' warnings (accepted names a shell cannot reference, negative timeout) as the run's warnings", async () => {
    const run = makeRun({ timeoutInSeconds: -1, parameters: [{ name: 'my-param', value: 'v' }] });
    const warnings: string[] = [];
    run.on('warning', (message) => warnings.push(message));
    const { done } = await started(run);
    processes.exit(processes.lastPid, { kind: 'exited', exitCode: 0 });
    expect(await done).toMatchObject({ state: 'Succeeded', timeoutInSeconds: 0 });
    expect(run.journal.deadlineMonotonicMs).toBeUndefined();
    expect(warnings).toEqual([
      expect.stringContaining("parameters[0].name 'my-param' is not a name a shell can reference"),
      expect.stringContaining('timeoutInSeconds -1 is negative: no time limit'),
    ]);
    expect(processes.launches[0]?.env['my-param']).toBe('v');
  });

  it('skips a Pending run that will never start, naming why', async () => {
    const run = makeRun();
    await run.persist();
    expect(await run.skip("not run because dependency 'a' did not succeed (Failed, exit code 2)")).toMatchObject({
      state: 'Failed',
      exitCode: -1,
      message: "Execution failed: not run because dependency 'a' did not succeed (Failed, exit code 2)",
    });
  });
});
