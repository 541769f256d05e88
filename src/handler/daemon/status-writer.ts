// Serialises status-file writes per run command and enforces the protocol's silence rule:
// once `disable` for a name returns, no status file for that name is written again (protocol.md §7).
import type { Clock } from '../../util/time.js';
import { KeyedQueue } from '../../util/keyed-queue.js';
import { toErrorMessage } from '../../errors.js';
import { isTerminalStatusFile, writeStatusFile, type StatusInput } from '../agent/status-file.js';
import type { Log } from '../infra/logger.js';
import type { Redactor } from '../infra/redact.js';

export class StatusWriter {
  readonly #writes: KeyedQueue;
  readonly #silenced = new Set<string>();
  readonly #statusFolder: string;
  readonly #clock: Clock;
  readonly #redactor: Redactor;
  readonly #log: Log;

  constructor(statusFolder: string, clock: Clock, log: Log, redactor: Redactor) {
    this.#statusFolder = statusFolder;
    this.#clock = clock;
    this.#redactor = redactor;
    this.#log = log;
    this.#writes = new KeyedQueue((name, error) => log.error('could not write the status file', { name, error: toErrorMessage(error) }));
  }

  // Queues a rewrite of the run's status file (dropped for silenced runs; with `unlessTerminal`,
  // also when the file already reports an end).
  write(run: StatusInput & { runId: string }, runDir: string | undefined, options: { unlessTerminal?: boolean } = {}): Promise<void> {
    // Masked now, not when the queued write runs: by then a finished run's secrets are unregistered.
    const safe = { ...run, message: this.#redactor.redact(run.message) };
    return this.#writes.run(run.name, async () => {
      if (this.#silenced.has(run.runId)) return;
      if (options.unlessTerminal && (await isTerminalStatusFile(this.#statusFolder, run.name, run.seq))) return;
      await writeStatusFile(this.#statusFolder, safe, runDir, this.#clock.now()).catch((error: unknown) => {
        this.#log.error('could not write the status file', { name: run.name, seq: run.seq, runId: run.runId, error: toErrorMessage(error) });
      });
    });
  }

  // Stops all future writes for these runs and waits for any write already under way.
  async silence(name: string, runIds: readonly string[]): Promise<void> {
    for (const runId of runIds) this.#silenced.add(runId);
    await this.#writes.settled(name);
  }

  // Waits for the writes queued so far for `name` (before its older run directories go).
  settled(name: string): Promise<void> {
    return this.#writes.settled(name);
  }

  // Waits for every queued write (shutdown).
  drain(): Promise<void> {
    return this.#writes.drain();
  }
}
