// Runs accepted runs with a concurrency limit (the rest wait FIFO as Pending) and holds back
// runs whose dependsOn are not done yet (run-command.md §5).
import PQueue from 'p-queue';
import { errorCodes, HandlerError } from '../errors.js';
import { systemClock, type TimerClock } from '../util/time.js';
import { findCycle, toDependencyVerdict, toWaitingMessage, type DependencyState } from './dependency-graph.js';
import { isTerminal } from './run-state.js';
import type { Run } from './run.js';

export interface SchedulerOptions {
  readonly concurrency: number;
  // How long a dependency that does not exist yet is waited for.
  readonly dependencyWaitMs: number;
  // The state of a run command's current run, from memory or its journal.
  readonly lookup: (name: string) => Promise<DependencyState>;
  // Arms the dependency wait bound (tests drive it by hand); default the system clock.
  readonly clock?: TimerClock;
}

interface Waiting {
  readonly run: Run;
  readonly dependsOn: readonly string[];
  readonly bound: { cancel(): void };
  expired: boolean;
}

export class Scheduler {
  readonly #queue: PQueue;
  readonly #options: SchedulerOptions;
  readonly #waiting = new Map<string, Waiting>();
  #evaluation: Promise<void> = Promise.resolve();

  constructor(options: SchedulerOptions) {
    this.#options = options;
    this.#queue = new PQueue({ concurrency: options.concurrency });
  }

  // Queues a run now, or once its dependencies have succeeded.
  schedule(run: Run, dependsOn: readonly string[] = []): void {
    if (dependsOn.length === 0) {
      this.#enqueue(run);
      return;
    }
    const cycle = this.#findCycle(run.journal.name, dependsOn);
    if (cycle) {
      void this.#failCycle(run, cycle);
      return;
    }
    const entry: Waiting = { run, dependsOn, expired: false, bound: (this.#options.clock ?? systemClock).setTimer(() => this.#expire(entry), this.#options.dependencyWaitMs) };
    this.#waiting.set(run.journal.runId, entry);
    this.notify();
  }

  // Whether a run scheduled now with these dependencies starts at once (a free slot, nobody queued).
  startsAtOnce(dependsOn: readonly string[] = []): boolean {
    return dependsOn.length === 0 && this.#queue.size === 0 && this.#queue.pending < this.#options.concurrency;
  }

  // Re-evaluates every waiting run (call when any run changes state).
  notify(): void {
    if (this.#waiting.size === 0) return;
    this.#evaluation = this.#evaluation.then(() => this.#evaluateAll()).catch(() => undefined);
  }

  #enqueue(run: Run): void {
    const { concurrency } = this.#options;
    if (this.#queue.pending >= concurrency) {
      void run.setPendingMessage(`Queued: waiting for a free execution slot (${concurrency} run commands run at once; ${this.#queue.size + 1} waiting)`);
    }
    void this.#queue.add(() => run.execute());
  }

  async #evaluateAll(): Promise<void> {
    for (const entry of [...this.#waiting.values()]) await this.#evaluate(entry);
  }

  async #evaluate(entry: Waiting): Promise<void> {
    const { run } = entry;
    if (isTerminal(run.journal.state)) return this.#release(entry);
    const states = new Map<string, DependencyState>();
    for (const name of entry.dependsOn) states.set(name, await this.#options.lookup(name));
    const verdict = toDependencyVerdict(states);
    if (verdict.kind === 'ready') {
      this.#release(entry);
      this.#enqueue(run);
    } else if (verdict.kind === 'blocked') {
      this.#release(entry);
      await run.skip(`not run because dependency '${verdict.dependency}' did not succeed (${verdict.state}, exit code ${verdict.exitCode})`);
    } else if (entry.expired && verdict.missing.length > 0) {
      this.#release(entry);
      const minutes = Math.round(this.#options.dependencyWaitMs / 60_000);
      await run.skip(`not run because dependency '${verdict.missing.join("', '")}' did not appear within ${minutes > 0 ? `${minutes} min` : `${this.#options.dependencyWaitMs} ms`}`);
    } else {
      await run.setPendingMessage(toWaitingMessage(states));
    }
  }

  #expire(entry: Waiting): void {
    entry.expired = true;
    this.notify();
  }

  #release(entry: Waiting): void {
    entry.bound.cancel();
    this.#waiting.delete(entry.run.journal.runId);
  }

  #findCycle(name: string, dependsOn: readonly string[]): string[] | undefined {
    const graph = new Map<string, readonly string[]>([...this.#waiting.values()].map((entry) => [entry.run.journal.name, entry.dependsOn]));
    graph.set(name, dependsOn);
    return findCycle(graph, name);
  }

  async #failCycle(run: Run, cycle: readonly string[]): Promise<void> {
    const message = `dependsOn: dependency cycle ${cycle.join(' → ')}`;
    const members = [...this.#waiting.values()].filter((entry) => cycle.includes(entry.run.journal.name));
    for (const entry of members) this.#release(entry);
    await Promise.all([run, ...members.map((entry) => entry.run)].map((member) => member.fail(new HandlerError(errorCodes.invalidSettings, message, { blame: 'user' }))));
  }
}
