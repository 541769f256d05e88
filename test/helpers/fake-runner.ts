// A clock driven by hand and a process layer that starts nothing: for unit tests of the Run state
// machine and the Scheduler, whose every timer and process event the test decides.
import { linuxPlatform } from '../../src/platform/linux.js';
import type { JournalStore, JournalWriteOptions, RunJournal } from '../../src/runner/journal.js';
import type { RunAsLayer, RunnerPlatform } from '../../src/runner/platform-contract.js';
import type { ExitRecord, ProcessIdentity, ProcessLayer, ScriptHandle, ScriptLaunch } from '../../src/runner/process-contract.js';
import type { RunDeps } from '../../src/runner/run-deps.js';
import type { TimerClock } from '../../src/util/time.js';

interface Timer {
  readonly at: number;
  readonly callback: () => void;
  done: boolean;
}

// Time moves only when the test calls advance(); due timers fire in order. The wall clock can also
// be stepped alone (NTP, a VM resume), which moves neither the monotonic clock nor any timer.
export class ManualClock implements TimerClock {
  #monotonic = 1_000_000;
  #wallOffset = Date.UTC(2026, 11, 2, 10, 0, 0) - 1_000_000;
  readonly #timers: Timer[] = [];

  now(): number {
    return this.#monotonic + this.#wallOffset;
  }

  monotonicMs(): number {
    return this.#monotonic;
  }

  // Steps the wall clock by `ms` (negative: backwards), as an NTP step or a VM resume does.
  stepWallClock(ms: number): void {
    this.#wallOffset += ms;
  }

  setTimer(callback: () => void, delayMs: number): { cancel(): void } {
    const timer: Timer = { at: this.#monotonic + Math.max(0, delayMs), callback, done: false };
    this.#timers.push(timer);
    return { cancel: () => void (timer.done = true) };
  }

  // Moves time forward by `ms`, firing every timer that falls due on the way.
  advance(ms: number): void {
    const until = this.#monotonic + ms;
    for (;;) {
      const next = this.#timers.filter((timer) => !timer.done && timer.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.#monotonic = next.at;
      next.done = true;
      next.callback();
    }
    this.#monotonic = until;
  }

  // Timers armed and not yet fired or canceled.
  get pending(): number {
    return this.#timers.filter((timer) => !timer.done).length;
  }
}

// Records launches and kill requests; a script ends when the test calls exit().
export class FakeProcesses implements ProcessLayer {
  readonly launches: ScriptLaunch[] = [];
  readonly attached: ProcessIdentity[] = [];
  readonly terminationRequests: number[] = [];
  // The run directory each termination request named (where the Windows wrapper looks for it).
  readonly terminationRunDirs: string[] = [];
  readonly forcedKills: number[] = [];
  failNextLaunch: Error | undefined;
  #nextPid = 1000;
  readonly #exits = new Map<number, (record: ExitRecord) => void>();

  async launchScript(launch: ScriptLaunch): Promise<ScriptHandle> {
    if (this.failNextLaunch) {
      const error = this.failNextLaunch;
      this.failNextLaunch = undefined;
      throw error;
    }
    this.launches.push(launch);
    return this.#handle(this.#nextPid++);
  }

  attachScript(_runDir: string, identity: ProcessIdentity): ScriptHandle {
    this.attached.push(identity);
    return this.#handle(identity.pid);
  }

  requestTermination(identity: ProcessIdentity, runDir: string): boolean {
    this.terminationRequests.push(identity.pid);
    this.terminationRunDirs.push(runDir);
    return true;
  }

  killRunNow(identity: ProcessIdentity): void {
    this.forcedKills.push(identity.pid);
  }

  readBootId(): string {
    return 'boot-1';
  }

  // Ends the script of `pid` as `record` says.
  exit(pid: number, record: ExitRecord): void {
    this.#exits.get(pid)?.(record);
  }

  // The pid of the latest launch.
  get lastPid(): number {
    return this.#nextPid - 1;
  }

  #handle(pid: number): ScriptHandle {
    const identity = { wrapperPid: pid + 100_000, pid, pgid: pid, startTime: '1', wrapperStartTime: '1' };
    const exited = new Promise<ExitRecord>((resolve) => this.#exits.set(pid, resolve));
    return { identity, exited };
  }
}

// Every journal a run persisted, in order.
export class MemoryJournals implements JournalStore {
  readonly written: RunJournal[] = [];
  // For each write in `written`: whether it was asked to be durable (fsynced).
  readonly durable: boolean[] = [];

  async writeJournal(journal: RunJournal, options: JournalWriteOptions = {}): Promise<void> {
    this.written.push(journal);
    this.durable.push(options.durable !== false);
  }

  // The states in the order they were persisted, repeats collapsed.
  get states(): string[] {
    return this.written.map((journal) => journal.state).filter((state, index, all) => all[index - 1] !== state);
  }
}

const noRunAs: RunAsLayer = {
  prepareRunAs: async () => undefined,
  applyRunAs: async (launch) => launch,
  removeWorkDir: async () => undefined,
};

// RunDeps with the fakes above; scripts are still written (into `workRoot`/run dirs) and bash found.
export function makeFakeRunDeps(parts: { clock: ManualClock; processes: FakeProcesses; journals: MemoryJournals; workRoot: string }): RunDeps {
  const platform: RunnerPlatform = { name: 'linux', processLayer: parts.processes, runAs: noRunAs, scripts: linuxPlatform.scripts };
  return {
    platform,
    journals: parts.journals,
    clock: parts.clock,
    graceMs: 2000,
    bootId: 'boot-1',
    baseEnv: { PATH: '/usr/bin:/bin' },
    workRoot: parts.workRoot,
    redact: (text) => text,
  };
}

// Lets every promise callback queued so far run (the fakes settle synchronously otherwise).
export async function flush(): Promise<void> {
  for (let index = 0; index < 20; index += 1) await new Promise((resolve) => setImmediate(resolve));
}

// Waits (in real time: scripts are still written to disk) until `condition` holds.
export async function until(condition: () => boolean, what = 'the condition', timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
