// The run extension that streams a run's stdout and stderr files to append blobs (run-command.md
// §6, issue 4): blobs created or emptied before the script starts (else exit code −101 and the
// script never runs), streamed while it runs, flushed before the terminal status, progress kept
// in the run journal so a restarted daemon resumes; a failed upload is named in executionMessage.
import type { BlobTarget } from '../config/run-command.js';
import { errorCodes, HandlerError } from '../errors.js';
import type { RunJournal } from '../runner/journal.js';
import { toRunFilePath } from '../runner/run-directory.js';
import type { Run, RunExtension } from '../runner/run.js';
import { BlobStream, type StreamResult } from './append-stream.js';
import { toBlobAddress, type AppendTarget, type BlobAddress } from './blob-target.js';
import { retryPolicies, withRetry } from '../util/retry.js';
import { toFailureKind, toFailureText } from './storage-failure.js';

type OutputName = 'stdout' | 'stderr';
type Uploads = NonNullable<RunJournal['uploads']>;
type LogMeta = Record<string, string | number | boolean | undefined>;

// The part of the daemon's log this extension uses (never given a SAS, a token or output).
export interface BlobLog {
  info(message: string, meta?: LogMeta): void;
  warn(message: string, meta?: LogMeta): void;
}

// What the extension needs from the daemon.
export interface StreamingDeps {
  // The status cadence (options.statusIntervalMs).
  readonly intervalMs: number;
  // How long the final flush may take before the upload is reported as failed.
  readonly flushTimeoutMs: number;
  readonly makeTarget: (address: BlobAddress) => AppendTarget;
  readonly log: BlobLog;
  // Called once the run no longer needs its credentials (e.g. to unregister tokens).
  readonly onEnd?: () => void;
}

interface Channel {
  readonly output: OutputName;
  // "output blob" / "error blob", as messages name it.
  readonly label: string;
  readonly target: AppendTarget;
  stream?: BlobStream;
}

const createTimeoutMs = 20_000;
const permissionHint = 'the SAS token or managed identity needs read, add, create and write (racw) permissions on it';

// The RunExtension of a run with outputBlobUri and/or errorBlobUri.
export class BlobStreaming implements RunExtension {
  readonly #deps: StreamingDeps;
  readonly #channels: Channel[];
  #created = false;
  #ending = false;
  #saveTimer: NodeJS.Timeout | undefined;

  constructor(targets: { readonly stdout?: BlobTarget; readonly stderr?: BlobTarget }, deps: StreamingDeps) {
    this.#deps = deps;
    this.#channels = [];
    if (targets.stdout) this.#channels.push({ output: 'stdout', label: 'output blob', target: deps.makeTarget(toBlobAddress(targets.stdout)) });
    if (targets.stderr) this.#channels.push({ output: 'stderr', label: 'error blob', target: deps.makeTarget(toBlobAddress(targets.stderr)) });
  }

  // Creates or empties every blob; a failure fails the run with −101 before the script starts.
  async beforeLaunch(run: Run, signal?: AbortSignal): Promise<void> {
    for (const channel of this.#channels) {
      await this.#reset(channel, signal);
      if (signal?.aborted) return;
      this.#deps.log.info('append blob ready', { ...toMeta(run), blob: channel.target.loggable });
    }
    this.#created = true;
    await run.saveUploads(this.#toUploads());
  }

  // Starts streaming: from 0 after beforeLaunch, or from the journal's offsets after a restart.
  onRunning(run: Run): void {
    const saved = run.journal.uploads ?? {};
    for (const channel of this.#channels) {
      const stream = new BlobStream({
        file: toRunFilePath(run.runDir, channel.output),
        target: channel.target,
        intervalMs: this.#deps.intervalMs,
        onProgress: () => this.#scheduleSave(run),
        onRetry: (failure, attempt) => {
          if (attempt === 1 || attempt % 20 === 0) this.#deps.log.warn('append blob upload failed; retrying', { ...toMeta(run), blob: channel.target.loggable, failure, attempt });
        },
      });
      channel.stream = stream;
      stream.start(this.#created ? 0 : (saved[channel.output] ?? 0), !this.#created);
    }
  }

  // Uploads what is left; returns a note for executionMessage when an upload finally failed.
  async beforeFinish(run: Run): Promise<string | undefined> {
    // A run that ended while the daemon was down (or with the VM) still gets what it wrote uploaded.
    if (!this.#created && !this.#channels.some((channel) => channel.stream) && run.journal.uploads && run.journal.process) this.onRunning(run);
    this.#ending = true;
    clearTimeout(this.#saveTimer);
    const results = await Promise.all(this.#channels.map((channel) => channel.stream?.finish(this.#deps.flushTimeoutMs)));
    if (this.#channels.some((channel) => channel.stream)) await run.saveUploads(this.#toUploads());
    this.#deps.onEnd?.();
    const notes: string[] = [];
    this.#channels.forEach((channel, index) => {
      const result = results[index];
      if (result?.failure === undefined) return;
      this.#deps.log.warn('append blob upload failed', { ...toMeta(run), blob: channel.target.loggable, failure: result.failure, missingBytes: result.size - result.uploaded });
      notes.push(toFailureNote(channel, result));
    });
    return notes.length > 0 ? notes.join('; ') : undefined;
  }

  async #reset(channel: Channel, signal: AbortSignal | undefined): Promise<void> {
    const attempt = async (): Promise<void> => {
      if (signal?.aborted) return;
      const timeout = AbortSignal.timeout(createTimeoutMs);
      await channel.target.reset(signal ? AbortSignal.any([timeout, signal]) : timeout);
    };
    try {
      await withRetry(retryPolicies.blobCreate, attempt, { isTransient: (error) => toFailureKind(error) !== 'final', ...(signal ? { signal } : {}) });
    } catch (error) {
      // The run timed out or was canceled meanwhile: it ends as such, not as a blob failure.
      if (signal?.aborted) return;
      const message = `could not create or empty the ${channel.label} ${channel.target.loggable} (${toFailureText(error)}); ${permissionHint}`;
      throw new HandlerError(errorCodes.blobCreate, message, { blame: 'user' });
    }
  }

  // Journal writes follow the status cadence, not every append.
  #scheduleSave(run: Run): void {
    if (this.#saveTimer || this.#ending) return;
    this.#saveTimer = setTimeout(() => {
      this.#saveTimer = undefined;
      void run.saveUploads(this.#toUploads()).catch(() => undefined);
    }, this.#deps.intervalMs);
    this.#saveTimer.unref();
  }

  #toUploads(): Uploads {
    const uploads: { stdout?: number; stderr?: number } = {};
    for (const channel of this.#channels) uploads[channel.output] = channel.stream?.offset ?? 0;
    return uploads;
  }
}

function toMeta(run: Run): LogMeta {
  return { name: run.journal.name, seq: run.journal.seq, runId: run.journal.runId };
}

// "output blob https://…/out: upload failed (HTTP 403 …); 1024 of 4096 bytes not uploaded"
function toFailureNote(channel: Channel, result: StreamResult): string {
  return `${channel.label} ${channel.target.loggable}: upload failed (${result.failure ?? 'unknown error'}); ${result.size - result.uploaded} of ${result.size} bytes not uploaded`;
}
