// The daemon's live runs, one per run command: each change of a run goes to its status file, the
// log and the telemetry events; running runs get their status rewritten at the cadence; a run is
// forgotten once terminal.
import type { RunCommand } from '../../config/run-command.js';
import type { RunJournal } from '../../runner/journal.js';
import type { Run } from '../../runner/run.js';
import { isTerminal } from '../../runner/run-state.js';
import type { Clock } from '../../util/time.js';
import { EventWriter } from '../agent/events.js';
import type { StatusInput } from '../agent/status-file.js';
import type { HandlerContext } from '../infra/context.js';
import type { Log } from '../infra/logger.js';
import type { Redactor } from '../infra/redact.js';
import { toEndEvent, toStartEvent } from './run-events.js';
import { StatusWriter } from './status-writer.js';

export interface RegistryDeps {
  readonly context: HandlerContext;
  readonly log: Log;
  readonly redactor: Redactor;
  readonly clock: Clock;
}

// How long a launch attempt's Pending status waits for the Running one that supersedes it.
const launchStatusDelayMs = 50;

export class RunRegistry {
  readonly #deps: RegistryDeps;
  readonly #runs = new Map<string, Run>();
  readonly #statusWriter: StatusWriter;
  readonly #events: EventWriter;
  readonly #onStateChange: () => void;
  #ticker: NodeJS.Timeout | undefined;

  readonly #onTerminal: (name: string) => void;

  // `onStateChange` is told whenever a run enters a new state (the scheduler re-evaluates),
  // `onTerminal` when a run has ended (retention).
  constructor(deps: RegistryDeps, onStateChange: () => void, onTerminal: (name: string) => void = () => undefined) {
    this.#onTerminal = onTerminal;
    this.#deps = deps;
    const { paths, version } = deps.context;
    this.#statusWriter = new StatusWriter(paths.statusFolder, deps.clock, deps.log, deps.redactor);
    this.#events = new EventWriter(paths.eventsFolder, version, deps.clock, deps.redactor);
    this.#onStateChange = onStateChange;
  }

  // The live run of a run command.
  get(name: string): Run | undefined {
    return this.#runs.get(name);
  }

  // Registers a run: its changes go to the status file and the log; it is forgotten when terminal.
  adopt(run: Run, command?: RunCommand): void {
    const { log, redactor } = this.#deps;
    const meta = { name: run.journal.name, seq: run.journal.seq, runId: run.journal.runId };
    this.#runs.set(run.journal.name, run);
    run.on('warning', (message) => log.warn(message, meta));
    let previousState = run.journal.state;
    // A re-attached run is already Running: its status is rewritten at the cadence from now on.
    if (previousState === 'Running') this.#startTicker();
    let attemptNonce = run.journal.launchNonce;
    run.on('change', (journal) => {
      const newAttempt = journal.state === 'Pending' && journal.launchNonce !== undefined && journal.launchNonce !== attemptNonce;
      attemptNonce = journal.launchNonce;
      this.#writeStatusOf(run, journal, newAttempt);
      const entered = journal.state !== previousState;
      previousState = journal.state;
      if (!entered) return;
      this.#onStateChange();
      if (journal.state === 'Running') {
        this.#startTicker();
        void this.#events.write(toStartEvent(journal));
      }
      if (!isTerminal(journal.state)) return;
      log.info('run finished', { ...meta, state: journal.state, exitCode: journal.exitCode, executionMessage: journal.message });
      void this.#events.write(toEndEvent(journal));
      if (command) redactor.remove(command.secrets);
      if (this.#runs.get(journal.name) === run) this.#runs.delete(journal.name);
      this.#onTerminal(journal.name);
    });
  }

  // Rewrites a run's status file for a change of its journal. A launch attempt's change (Pending, a
  // nonce) is written only if the run is still at it a moment later: the launch usually makes it
  // Running within milliseconds, whose write says all the attempt's would — and that write, with
  // its thread-pool work, would compete with the script's start for a small VM's CPUs (issue 16).
  #writeStatusOf(run: Run, journal: RunJournal, newAttempt: boolean): void {
    if (!newAttempt) {
      void this.#statusWriter.write(journal, run.runDir);
      return;
    }
    setTimeout(() => {
      if (run.journal === journal) void this.#statusWriter.write(journal, run.runDir);
    }, launchStatusDelayMs).unref();
  }

  // Writes the status of something that is not a live run (settings that will never run).
  writeStatus(status: StatusInput & { runId: string }): Promise<void> {
    return this.#statusWriter.write(status, undefined);
  }

  // The same, unless the status file already reports how a run ended (never hide a real outcome).
  writeStatusUnlessTerminal(status: StatusInput & { runId: string }): Promise<void> {
    return this.#statusWriter.write(status, undefined, { unlessTerminal: true });
  }

  // Resolves once the status writes queued so far for `name` are done.
  statusSettled(name: string): Promise<void> {
    return this.#statusWriter.settled(name);
  }

  // No status of these runs is written again (a deleted run command).
  silence(name: string, runIds: readonly string[]): Promise<void> {
    return this.#statusWriter.silence(name, runIds);
  }

  // Shutdown: cancels every run (uninstall) or leaves them to the next daemon, then waits for the writes.
  async stop(cancelRuns: boolean): Promise<void> {
    if (cancelRuns) await Promise.all([...this.#runs.values()].map((run) => run.cancel('the handler is being uninstalled')));
    clearInterval(this.#ticker);
    await this.#statusWriter.drain();
  }

  // While any script runs, rewrite running runs' status files at the configured cadence.
  #startTicker(): void {
    if (this.#ticker) return;
    this.#ticker = setInterval(() => {
      const running = [...this.#runs.values()].filter((run) => run.journal.state === 'Running');
      for (const run of running) void this.#statusWriter.write(run.journal, run.runDir);
      if (running.length === 0) {
        clearInterval(this.#ticker);
        this.#ticker = undefined;
      }
    }, this.#deps.context.options.statusIntervalMs);
  }
}
