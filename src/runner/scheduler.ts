// Runs accepted runs with a concurrency limit; the rest wait FIFO as Pending (run-command.md §5).
import PQueue from 'p-queue';
import type { Run } from './run.js';

export class Scheduler {
  readonly #queue: PQueue;
  readonly #limit: number;

  constructor(concurrency: number) {
    this.#limit = concurrency;
    this.#queue = new PQueue({ concurrency });
  }

  // Queues a run; resolves when it is terminal.
  schedule(run: Run): Promise<unknown> {
    return this.#queue.add(() => run.execute());
  }

  // How many runs wait for a slot, and the limit, for the Pending message.
  get waiting(): { queued: number; limit: number } {
    return { queued: this.#queue.size, limit: this.#limit };
  }

  // Resolves when nothing runs or waits.
  onIdle(): Promise<void> {
    return this.#queue.onIdle();
  }
}
