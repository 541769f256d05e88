// The Scheduler with runs on a fake process layer and a clock the test drives: the concurrency
// limit and its FIFO queue, dependsOn waits, a failed or missing dependency, a cycle.
import { beforeEach, describe, expect, it } from 'vitest';
import type { DependencyState } from '../../src/runner/dependency-graph.js';
import { makeRunJournal } from '../../src/runner/journal.js';
import { Run } from '../../src/runner/run.js';
import { Scheduler } from '../../src/runner/scheduler.js';
import { FakeProcesses, flush, makeFakeRunDeps, ManualClock, MemoryJournals, until } from '../helpers/fake-runner.js';
import { parseSettings } from '../helpers/settings.js';
import { useTempDir } from '../helpers/temp-dir.js';

const dir = useTempDir('scheduler');
let clock: ManualClock;
let processes: FakeProcesses;
let states: Map<string, DependencyState>;

beforeEach(() => {
  clock = new ManualClock();
  processes = new FakeProcesses();
  states = new Map();
});

function makeScheduler(concurrency = 25, dependencyWaitMs = 60_000): Scheduler {
  return new Scheduler({ concurrency, dependencyWaitMs, clock, lookup: async (name) => states.get(name) ?? { kind: 'missing' } });
}

async function makeRun(name: string): Promise<Run> {
  const command = parseSettings({ source: { script: `echo ${name}` } }, undefined, name);
  const journal = makeRunJournal({ name, seq: 3, runId: `${name}.3.x`, settingsFile: '', bootId: 'boot-1' }, clock.now(), command);
  const run = new Run(dir(), journal, command, makeFakeRunDeps({ clock, processes, journals: new MemoryJournals(), workRoot: dir() }));
  await run.persist();
  return run;
}

describe('Scheduler', () => {
  it('runs at most `concurrency` at once; the next waits Pending as queued and starts when a slot frees', async () => {
    const scheduler = makeScheduler(2);
    const runs = await Promise.all(['a', 'b', 'c'].map(makeRun));
    // Which runs start at once (the daemon then journals them with their launch attempt only).
    const atOnce: boolean[] = [];
    for (const run of runs) {
      atOnce.push(scheduler.startsAtOnce());
      scheduler.schedule(run);
    }
    expect(atOnce).toEqual([true, true, false]);
    expect(scheduler.startsAtOnce(['a'])).toBe(false);
    await until(() => processes.launches.length === 2, 'two launches');
    await flush();
    expect(runs.map((run) => run.journal.state)).toEqual(['Running', 'Running', 'Pending']);
    expect(runs[2]?.journal.message).toBe('Queued: waiting for a free execution slot (2 run commands run at once; 1 waiting)');
    // Whichever of a and b was launched first, a ends.
    processes.exit(runs[0]?.journal.process?.pid ?? 0, { kind: 'exited', exitCode: 0 });
    await until(() => processes.launches.length === 3, 'the queued run to be launched');
    await until(() => runs[2]?.journal.state === 'Running', 'the queued run to run');
    expect(runs.map((run) => run.journal.state)).toEqual(['Succeeded', 'Running', 'Running']);
  });

  it('holds a dependent Pending, naming what it waits for, until its dependency succeeded', async () => {
    const scheduler = makeScheduler();
    const run = await makeRun('after');
    states.set('first', { kind: 'active', state: 'Running' });
    scheduler.schedule(run, ['first', 'ghost']);
    await flush();
    expect(run.journal).toMatchObject({ state: 'Pending', message: 'Waiting for dependencies: first (Running), ghost (not created yet)' });
    states.set('first', { kind: 'succeeded' });
    states.set('ghost', { kind: 'succeeded' });
    scheduler.notify();
    await until(() => run.journal.state === 'Running', 'the dependent to run');
  });

  it('never runs a dependent whose dependency did not succeed', async () => {
    const scheduler = makeScheduler();
    const run = await makeRun('after');
    states.set('broken', { kind: 'failed', state: 'TimedOut', exitCode: -1 });
    scheduler.schedule(run, ['broken']);
    await flush();
    expect(run.journal).toMatchObject({ state: 'Failed', message: "Execution failed: not run because dependency 'broken' did not succeed (TimedOut, exit code -1)" });
    expect(processes.launches).toEqual([]);
  });

  it('gives up on a dependency that never appears once the bound has passed on the clock', async () => {
    const scheduler = makeScheduler(25, 90 * 60_000);
    const run = await makeRun('lonely');
    scheduler.schedule(run, ['ghost']);
    clock.advance(90 * 60_000 - 1);
    await flush();
    expect(run.journal.state).toBe('Pending');
    clock.advance(1);
    await flush();
    expect(run.journal).toMatchObject({ state: 'Failed', message: "Execution failed: not run because dependency 'ghost' did not appear within 90 min" });
  });

  it('fails every member of a dependency cycle with −202, naming the cycle', async () => {
    const scheduler = makeScheduler();
    const [a, b] = [await makeRun('a'), await makeRun('b')];
    scheduler.schedule(a, ['b']);
    await flush();
    scheduler.schedule(b, ['a']);
    await flush();
    for (const run of [a, b]) {
      expect(run.journal).toMatchObject({ state: 'Failed', exitCode: -202, handlerFailure: true });
      expect(run.journal.message).toMatch(/dependency cycle (a → b → a|b → a → b)/);
    }
  });
});
