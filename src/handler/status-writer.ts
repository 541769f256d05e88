// Serialises status-file writes per run command and enforces the protocol's silence rule:
// once `disable` for a name returns, no status file for that name is written again (protocol.md §7).
import type { Clock } from '../util/time.js';
import { toErrorMessage } from '../errors.js';
import type { Log } from './logger.js';
import type { Redactor } from './redact.js';
import { writeStatusFile, type StatusInput } from './status-file.js';

export class StatusWriter {
  #chains = new Map<string, Promise<void>>();
  #silenced = new Set<string>();
  readonly #statusFolder: string;
  readonly #clock: Clock;
  readonly #log: Log;
  readonly #redactor: Redactor;

  constructor(statusFolder: string, clock: Clock, log: Log, redactor: Redactor) {
    this.#statusFolder = statusFolder;
    this.#clock = clock;
    this.#log = log;
    this.#redactor = redactor;
  }

  // Queues a rewrite of the run's status file (dropped for silenced runs).
  write(run: StatusInput & { runId: string }, runDir: string | undefined): Promise<void> {
    const previous = this.#chains.get(run.name) ?? Promise.resolve();
    // Masked now, not when the queued write runs: by then a finished run's secrets are unregistered.
    const safe = { ...run, message: this.#redactor.redact(run.message) };
    const next = previous.then(async () => {
      if (this.#silenced.has(run.runId)) return;
      await writeStatusFile(this.#statusFolder, safe, runDir, this.#clock.now()).catch((error: unknown) => {
        this.#log.error('could not write the status file', { name: run.name, seq: run.seq, runId: run.runId, error: toErrorMessage(error) });
      });
    });
    this.#chains.set(run.name, next);
    void next.then(() => {
      if (this.#chains.get(run.name) === next) this.#chains.delete(run.name);
    });
    return next;
  }

  // Stops all future writes for these runs and waits for any write already under way.
  async silence(name: string, runIds: readonly string[]): Promise<void> {
    for (const runId of runIds) this.#silenced.add(runId);
    await this.#chains.get(name);
  }

  // Waits for every queued write (shutdown).
  async drain(): Promise<void> {
    await Promise.all([...this.#chains.values()]);
  }
}
