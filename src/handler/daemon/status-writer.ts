// Serialises status-file writes per run command and enforces the protocol's silence rule:
// once `disable` for a name returns, no status file for that name is written again (protocol.md §7).
import type { Clock } from '../../util/time.js';
import { KeyedQueue } from '../../util/keyed-queue.js';
import { isTransientFileError, retryPolicies, shouldLogRetry, withRetry } from '../../util/retry.js';
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
  // Writes queued per name: a failing write stops retrying once a newer one is queued behind it.
  readonly #queued = new Map<string, number>();
  // The newest unconditional write queued per status file (`<name>.<seq>`): an older one still
  // waiting when its turn comes is skipped — the file only ever needs the latest state, and a run's
  // Pending, queue-message and Running writes often queue up together (issue 16).
  readonly #newest = new Map<string, number>();
  #tickets = 0;
  // Aborted by drain(): at shutdown a failing write gets one more attempt, not forever.
  readonly #stopping = new AbortController();

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
    this.#queued.set(run.name, (this.#queued.get(run.name) ?? 0) + 1);
    const file = `${run.name}.${run.seq}`;
    const ticket = (this.#tickets += 1);
    // A conditional write never supersedes: skipping what it queued behind could hide an outcome.
    if (!options.unlessTerminal) this.#newest.set(file, ticket);
    return this.#writes.run(run.name, async () => {
      try {
        if (this.#silenced.has(run.runId) || (this.#newest.get(file) ?? ticket) > ticket) return;
        if (options.unlessTerminal && (await isTerminalStatusFile(this.#statusFolder, run.name, run.seq))) return;
        await this.#writeUntilLanded(safe, runDir);
      } finally {
        if (this.#newest.get(file) === ticket) this.#newest.delete(file);
        const left = (this.#queued.get(run.name) ?? 1) - 1;
        if (left > 0) this.#queued.set(run.name, left);
        else this.#queued.delete(run.name);
      }
    });
  }

  // A full disk (ENOSPC and the like) does not lose a status: the write is retried with backoff
  // until it lands, the run is silenced, a newer write for the name supersedes it, or shutdown.
  async #writeUntilLanded(run: StatusInput & { runId: string }, runDir: string | undefined): Promise<void> {
    const fields = { name: run.name, seq: run.seq, runId: run.runId };
    let failed = 0;
    try {
      await withRetry(retryPolicies.durableWrite, () => writeStatusFile(this.#statusFolder, run, runDir, this.#clock.now()), {
        isTransient: (error) => isTransientFileError(error) && !this.#silenced.has(run.runId) && (this.#queued.get(run.name) ?? 0) <= 1,
        signal: this.#stopping.signal,
        onRetry: (error, attempt, delayMs) => {
          failed = attempt;
          if (shouldLogRetry(attempt)) this.#log.warn('could not write the status file; retrying', { ...fields, attempt, delayMs, error: toErrorMessage(error) });
        },
      });
      if (failed > 0) this.#log.info('wrote the status file after retrying', { ...fields, attempts: failed + 1 });
    } catch (error) {
      this.#log.error('could not write the status file', { ...fields, error: toErrorMessage(error) });
    }
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
    this.#stopping.abort();
    return this.#writes.drain();
  }
}
