// Streams one local output file (the source of truth and the only buffer) to one append blob
// (run-command.md §6, issue 4): new bytes go at the status cadence or as soon as 1 MiB waits, in
// blocks of at most 4 MiB, one append in flight, each conditional on the blob's length. Because
// a block only lands at its own offset, the blob is always a prefix of the file: a retry after a
// lost reply, a restarted daemon or a second writer can never duplicate or reorder a byte.
import { open, stat, type FileHandle } from 'node:fs/promises';
import { shouldAppend, toNextBlock, type Block } from './block-plan.js';
import type { AppendTarget } from './blob-target.js';
import { toBackoffMs, toFailureKind, toFailureText } from './storage-failure.js';

// One stream's file, blob and timing.
export interface StreamOptions {
  readonly file: string;
  readonly target: AppendTarget;
  // The status cadence: pending bytes are appended at least this often.
  readonly intervalMs: number;
  // Longest pause between checks of the file's size (default: min(250 ms, intervalMs)); checks
  // come every 50 ms while the file grows.
  readonly pollMs?: number;
  // Per-request time limit (a hung request is retried like a failed one).
  readonly requestTimeoutMs?: number;
  // Called after every successful append with the blob's new length.
  readonly onProgress?: (offset: number) => void;
  // Called when a request failed and will be retried (for a rate-limited log line).
  readonly onRetry?: (failure: string, attempt: number) => void;
}

// How far a stream got, once finished.
export interface StreamResult {
  // Bytes known to be in the blob.
  readonly uploaded: number;
  // Bytes in the local file.
  readonly size: number;
  // Why the upload stopped short; absent when the blob equals the file.
  readonly failure?: string;
}

const minPollMs = 50;
const maxPollMs = 250;

// A final failure: the stream stops and reports it.
class StreamFailure extends Error {}

// Streams one output file to one append blob until finish() is called.
export class BlobStream {
  readonly #options: StreamOptions;
  readonly #abort = new AbortController();
  #offset = 0;
  #finishing = false;
  #failure: string | undefined;
  #lastError: string | undefined;
  #loop: Promise<void> | undefined;
  #handle: FileHandle | undefined;
  #buffer: Buffer | undefined;
  #wake: (() => void) | undefined;

  constructor(options: StreamOptions) {
    this.#options = options;
  }

  // Bytes known to be in the blob.
  get offset(): number {
    return this.#offset;
  }

  // Starts streaming from `offset`; with `reconcile` (after a restart) the blob's length is read first.
  start(offset: number, reconcile: boolean): void {
    if (this.#loop) return;
    this.#offset = offset;
    this.#loop = this.#run(reconcile);
  }

  // Appends everything still pending (the script has ended) within `timeoutMs`, then reports.
  async finish(timeoutMs: number): Promise<StreamResult> {
    this.#finishing = true;
    this.#wake?.();
    const timer = setTimeout(() => this.#abort.abort(), timeoutMs);
    await this.#loop;
    clearTimeout(timer);
    if (this.#abort.signal.aborted && this.#failure === undefined) this.#failure = `gave up after ${Math.round(timeoutMs / 1000)} s (${this.#lastError ?? 'no answer'})`;
    const size = await stat(this.#options.file).then((s) => s.size, () => 0);
    const failure = this.#failure ?? (this.#offset < size ? 'not all output was uploaded' : undefined);
    return { uploaded: this.#offset, size, ...(failure ? { failure } : {}) };
  }

  async #run(reconcile: boolean): Promise<void> {
    try {
      if (reconcile) await this.#reconcile();
      let lastAppend = Date.now();
      let lastSize = -1;
      let pollMs = minPollMs;
      for (;;) {
        const size = await this.#fileSize();
        const block = toNextBlock(this.#offset, size);
        const moment = { pending: size - this.#offset, sinceLastMs: Date.now() - lastAppend, intervalMs: this.#options.intervalMs, finishing: this.#finishing };
        if (block && shouldAppend(moment)) {
          await this.#appendBlock(block);
          lastAppend = Date.now();
        } else if (this.#finishing) {
          return;
        } else {
          if (block === undefined) this.#buffer = undefined;
          // Check again soon while output flows (1 MiB may wait any moment), less often when quiet.
          pollMs = size > lastSize ? minPollMs : Math.min(pollMs * 2, this.#options.pollMs ?? Math.min(maxPollMs, this.#options.intervalMs));
          lastSize = size;
          await this.#idle(pollMs);
        }
      }
    } catch (error) {
      if (!this.#abort.signal.aborted) this.#failure = error instanceof StreamFailure ? error.message : toFailureText(error);
    } finally {
      this.#buffer = undefined;
      await this.#handle?.close().catch(() => undefined);
      this.#handle = undefined;
    }
  }

  // Appends one block, retrying transient failures until it is in the blob.
  async #appendBlock(block: Block): Promise<void> {
    const bytes = await this.#read(block);
    for (let attempt = 1; ; attempt += 1) {
      this.#abort.signal.throwIfAborted();
      try {
        await this.#request((signal) => this.#options.target.append(bytes, block.offset, signal));
        this.#advance(block.offset + bytes.length);
        return;
      } catch (error) {
        const kind = toFailureKind(error);
        if (kind === 'final') throw error;
        // The blob is not where we thought (typically: our previous attempt did land).
        if (kind === 'position' && (await this.#adoptLength(block.offset)) !== block.offset) return;
        this.#noteRetry(error, attempt);
        await this.#backoff(attempt);
      }
    }
  }

  // Reads the blob's length after a failed append position and continues from it. Returns the
  // new offset (`known` when the length could not be read: the append is simply retried).
  async #adoptLength(known: number): Promise<number> {
    try {
      this.#acceptLength(await this.#request((signal) => this.#options.target.readLength(signal)), known, await this.#fileSize());
    } catch (error) {
      if (error instanceof StreamFailure || toFailureKind(error) === 'final') throw error;
    }
    return this.#offset;
  }

  // After a restart: the journal's offset may lag the blob (an append landed, the daemon died).
  async #reconcile(): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      this.#abort.signal.throwIfAborted();
      try {
        this.#acceptLength(await this.#request((signal) => this.#options.target.readLength(signal)), this.#offset, await this.#fileSize());
        return;
      } catch (error) {
        if (error instanceof StreamFailure || toFailureKind(error) === 'final') throw error;
        this.#noteRetry(error, attempt);
      }
      await this.#backoff(attempt);
    }
  }

  // Every block lands at its own offset, so the blob is a prefix of the file: any length between
  // what we knew and the file's size is ours to continue from; anything else is another writer.
  #acceptLength(length: number, known: number, size: number): void {
    if (length < known || length > size) {
      throw new StreamFailure(`the blob is ${length} bytes long but ${known} of ${size} bytes were uploaded: another writer changed it`);
    }
    this.#advance(length);
  }

  #advance(offset: number): void {
    if (offset <= this.#offset) return;
    this.#offset = offset;
    this.#lastError = undefined;
    this.#options.onProgress?.(offset);
  }

  #noteRetry(error: unknown, attempt: number): void {
    if (this.#abort.signal.aborted) return;
    this.#lastError = toFailureText(error);
    this.#options.onRetry?.(this.#lastError, attempt);
  }

  // One buffer per stream, reused block after block (one append in flight), so memory does not
  // depend on how fast the garbage collector returns 4 MiB buffers; dropped while the stream is idle.
  async #read(block: Block): Promise<Buffer> {
    this.#handle ??= await open(this.#options.file, 'r');
    if (!this.#buffer || this.#buffer.length < block.length) this.#buffer = Buffer.allocUnsafeSlow(block.length);
    const { bytesRead } = await this.#handle.read(this.#buffer, 0, block.length, block.offset);
    if (bytesRead === 0) throw new StreamFailure('the output file shrank while it was uploaded');
    return this.#buffer.subarray(0, bytesRead);
  }

  async #fileSize(): Promise<number> {
    if (this.#handle) return (await this.#handle.stat()).size;
    return stat(this.#options.file).then((s) => s.size, () => 0);
  }

  // Runs one request with its own time limit, aborted too when the final flush gives up. (Not
  // AbortSignal.any: Node 20 keeps every signal derived from a long-lived one alive.)
  async #request<T>(call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.#options.requestTimeoutMs ?? 60_000);
    const onAbort = (): void => controller.abort();
    this.#abort.signal.addEventListener('abort', onAbort, { once: true });
    try {
      return await call(controller.signal);
    } finally {
      clearTimeout(timer);
      this.#abort.signal.removeEventListener('abort', onAbort);
    }
  }

  #idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  #backoff(attempt: number): Promise<void> {
    const signal = this.#abort.signal;
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const timer = setTimeout(finish, toBackoffMs(attempt));
      timer.unref();
      signal.addEventListener('abort', finish, { once: true });
      function finish(): void {
        clearTimeout(timer);
        signal.removeEventListener('abort', finish);
        resolve();
      }
    });
  }
}
