// One serial queue per key: tasks for the same key run one after another, tasks for different keys
// run concurrently. The daemon serialises every decision about one run command with it, and the
// status writer every write of one status file.

export class KeyedQueue {
  readonly #tails = new Map<string, Promise<void>>();
  readonly #onError: (key: string, error: unknown) => void;

  // `onError` receives a task's failure; the queue itself never rejects, so one failed task never
  // blocks the tasks queued after it.
  constructor(onError: (key: string, error: unknown) => void = () => undefined) {
    this.#onError = onError;
  }

  // Runs `task` after every task queued for `key` before it; resolves when it has run.
  run(key: string, task: () => Promise<void>): Promise<void> {
    const next = (this.#tails.get(key) ?? Promise.resolve()).then(task).catch((error: unknown) => this.#onError(key, error));
    this.#tails.set(key, next);
    void next.then(() => {
      if (this.#tails.get(key) === next) this.#tails.delete(key);
    });
    return next;
  }

  // Resolves once everything queued for `key` so far has run.
  async settled(key: string): Promise<void> {
    await this.#tails.get(key);
  }

  // Resolves once everything queued so far, for every key, has run.
  async drain(): Promise<void> {
    await Promise.all([...this.#tails.values()]);
  }
}
