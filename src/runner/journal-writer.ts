// One run's journal as it changes: transitions are serialised, and each is persisted before it is
// announced. A write that fails for want of space (or another transient file error) is retried in
// the background with backoff until it lands, always with the latest journal, so the run and its
// status go on meanwhile (issue #6); any other failure is a warning.
import { toErrorMessage } from '../errors.js';
import { isTransientFileError, retryPolicies, shouldLogRetry, withRetry } from '../util/retry.js';
import type { JournalStore, JournalWriteOptions, RunJournal } from './journal.js';
import { canTransition, isTerminal } from './run-state.js';

// What the writer announces (the Run re-emits both as its own events).
export interface JournalWriterEvents {
  // The journal after a transition, already persisted.
  readonly change: (journal: RunJournal) => void;
  // A write that failed (never carries a secret value).
  readonly warning: (message: string) => void;
}

export class JournalWriter {
  #journal: RunJournal;
  readonly #store: JournalStore;
  readonly #on: JournalWriterEvents;
  #persisting: Promise<void> = Promise.resolve();
  // Set while a failed journal write is being retried (a full disk): it writes the latest journal.
  #journalRetry: Promise<void> | undefined;
  // The latest journal known to be on disk.
  #landed: RunJournal | undefined;
  // Whether a write was begun: the first is always durable (below).
  #written = false;

  constructor(journal: RunJournal, store: JournalStore, on: JournalWriterEvents) {
    this.#journal = journal;
    this.#store = store;
    this.#on = on;
  }

  get journal(): RunJournal {
    return this.#journal;
  }

  // The latest journal known to be on disk.
  get landed(): RunJournal | undefined {
    return this.#landed;
  }

  // The background retry of a failed write, while one runs.
  get retrying(): Promise<void> | undefined {
    return this.#journalRetry;
  }

  // Applies, persists (durably unless told otherwise), then announces a change; changes are serialised.
  transition(patch: Partial<RunJournal>, options: JournalWriteOptions = {}): Promise<void> {
    const next = this.#persisting.then(async () => {
      const from = this.#journal.state;
      if (isTerminal(from)) return; // a terminal run never changes again
      if (patch.state !== undefined && patch.state !== from && !canTransition(from, patch.state)) {
        throw new Error(`run ${this.#journal.runId}: illegal transition ${from} → ${patch.state}`);
      }
      this.#journal = { ...this.#journal, ...patch };
      await this.#persist(options);
      this.#on.change(this.#journal);
    });
    this.#persisting = next.catch(() => undefined);
    return next;
  }

  // Writes the journal; a transient failure starts the background retry. The first write is durable
  // whatever it is (a run that starts at once has its launch attempt as its first: Run.execute):
  // recovery takes a run without a journal for one that never started (recovery.ts).
  async #persist(options: JournalWriteOptions): Promise<void> {
    if (this.#journalRetry !== undefined) return; // the retry writes this journal too
    const journal = this.#journal;
    const first = !this.#written;
    this.#written = true;
    try {
      await this.#store.writeJournal(journal, first ? { ...options, durable: true } : options);
      this.#landed = journal;
    } catch (error) {
      this.#on.warning(`could not write the run journal: ${toErrorMessage(error)}${isTransientFileError(error) ? '; retrying until it is written' : ''}`);
      if (isTransientFileError(error)) this.#journalRetry = this.#retryJournal().finally(() => (this.#journalRetry = undefined));
    }
  }

  async #retryJournal(): Promise<void> {
    let attempts = 1;
    for (let landed: RunJournal | undefined; landed !== this.#journal; ) {
      const journal = this.#journal;
      try {
        await withRetry(retryPolicies.durableWrite, () => this.#store.writeJournal(journal), {
          isTransient: isTransientFileError,
          onRetry: (error) => {
            attempts += 1;
            if (shouldLogRetry(attempts)) this.#on.warning(`still cannot write the run journal (attempt ${attempts}): ${toErrorMessage(error)}`);
          },
        });
      } catch (error) {
        this.#on.warning(`could not write the run journal: ${toErrorMessage(error)}`);
        return;
      }
      landed = this.#landed = journal;
    }
  }
}
