// One run of a run command: Pending → Running → terminal, persisted in its journal before
// every event, so a daemon that dies mid-run loses nothing (run-command.md §4, §8).
import { EventEmitter } from 'node:events';
import type { RunCommand } from '../config/run-command.js';
import { errorCodes, HandlerError, toErrorMessage } from '../errors.js';
import { flushSteps, markStep, mergeSteps } from '../util/dispatch-profile.js';
import { isTransientFileError, retryPolicies, shouldLogRetry, withRetry } from '../util/retry.js';
import { toRfc3339, type TimerClock } from '../util/time.js';
import type { JournalStore, JournalWriteOptions, RunJournal } from './journal.js';
import type { RunnerPlatform } from './platform-contract.js';
import type { ExitRecord, OutputTruncation, ScriptHandle, ScriptLaunch } from './process-contract.js';
import { canTransition, isTerminal, toExecutionState, toExitCode, toOutcomeMessage, type Outcome } from './run-state.js';
import { toRunEnvironment } from './parameters.js';
import { prepareScript, type ScriptSourceDeps } from './prepare-script.js';
import { toRunFilePath } from './run-directory.js';
import { newLaunchNonce } from './launch-fence.js';

export interface RunDeps {
  // The platform's process layer, RunAs and script traits.
  readonly platform: RunnerPlatform;
  // Where journals are persisted (the run store).
  readonly journals: JournalStore;
  readonly clock: TimerClock;
  readonly graceMs: number;
  // Per-stream output cap handed to the wrapper (issue #6); unset: no cap.
  readonly maxOutputBytes?: number;
  readonly bootId: string;
  readonly baseEnv: Readonly<Record<string, string>>;
  // The agent's AZURE_GUEST_AGENT_* variables as of the latest enable (run-command.md §4).
  readonly agentEnv?: () => Readonly<Record<string, string>>;
  // Where RunAs runs get their working directories (run-as-work-dir.linux.ts).
  readonly workRoot: string;
  // Masks the run's secrets in anything it persists (messages built from errors).
  readonly redact: (text: string) => string;
  // How scripts are downloaded and which PowerShell runs them (the platform gives the script traits).
  readonly sources?: Omit<ScriptSourceDeps, 'scripts'>;
}

export interface RunEvents {
  // The journal after a transition, already persisted.
  change: [RunJournal];
  // Something the operator should know (never carries a secret value).
  warning: [string];
}

type StopRequest = NonNullable<RunJournal['stopRequest']>;

// installAsService without a source (run-command.md §1): Microsoft's handler would install its
// immediate run-command service; this one does not provide it, and says so.
export const noServiceMessage =
  'nothing was run: installAsService asks for the immediate run-command service, which this handler does not provide (give source.script, source.scriptUri or source.commandId to run a script)';

// Builds the journal of a run that has just been accepted at `acceptedMs` (its startTime,
// run-command.md §6); `command` is absent (or only what could be read of it) when its settings
// were refused: the run will only ever fail.
export function makeRunJournal(
  identity: { name: string; seq: number; runId: string; settingsFile: string; bootId: string },
  acceptedMs: number,
  command?: Partial<Pick<RunCommand, 'timeoutInSeconds' | 'asyncExecution' | 'treatFailureAsDeploymentFailure'>>,
): RunJournal {
  const { name, seq, runId, settingsFile, bootId } = identity;
  return {
    version: 1,
    runId,
    name,
    seq,
    state: 'Pending',
    message: 'Execution pending',
    exitCode: 0,
    startTime: toRfc3339(acceptedMs),
    endTime: '',
    bootId,
    settingsFile,
    timeoutInSeconds: command?.timeoutInSeconds ?? 0,
    asyncExecution: command?.asyncExecution ?? false,
    treatFailureAsDeploymentFailure: command?.treatFailureAsDeploymentFailure ?? false,
    handlerFailure: false,
  };
}

// A per-run plug-in the daemon attaches (e.g. append-blob streaming): it may refuse to start the
// run, and it finishes its work before the terminal status is written.
export interface RunExtension {
  // Before the script starts; a HandlerError fails the run without starting the script. `signal`
  // aborts when the run times out or is canceled meanwhile (the run does not wait any longer).
  beforeLaunch?(run: Run, signal: AbortSignal): Promise<void>;
  // Once the script is known to run (fresh start or re-attach after a restart).
  onRunning?(run: Run): void;
  // Before the terminal state is persisted; a returned note is appended to executionMessage.
  beforeFinish?(run: Run): Promise<string | undefined>;
}

// Resolves with `work`, or as soon as `signal` aborts (the work is left to end on its own).
function untilAborted(work: Promise<void> | undefined, signal: AbortSignal): Promise<void> {
  if (work === undefined || signal.aborted) return Promise.resolve(work).then(() => undefined);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => resolve();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

export class Run extends EventEmitter<RunEvents> {
  readonly runDir: string;
  readonly done: Promise<RunJournal>;
  #journal: RunJournal;
  #command: RunCommand | undefined;
  #deps: RunDeps;
  #handle: ScriptHandle | undefined;
  #launching = false;
  // Aborts downloads when the run is stopped before its script started.
  readonly #preparing = new AbortController();
  #finishing = false;
  #stop: StopRequest | undefined;
  #timers: { cancel(): void }[] = [];
  #persisting: Promise<void> = Promise.resolve();
  // Set while a failed journal write is being retried (a full disk): it writes the latest journal.
  #journalRetry: Promise<void> | undefined;
  // The latest journal known to be on disk.
  #landed: RunJournal | undefined;
  // What the wrapper's relay dropped of the output, said in the final message.
  #outputNote: string | undefined;
  #resolveDone!: (journal: RunJournal) => void;

  #extensions: readonly RunExtension[];

  constructor(runDir: string, journal: RunJournal, command: RunCommand | undefined, deps: RunDeps, extensions: readonly RunExtension[] = []) {
    super();
    this.#extensions = extensions;
    this.runDir = runDir;
    this.#journal = journal;
    this.#command = command;
    this.#deps = deps;
    this.done = new Promise((resolve) => (this.#resolveDone = resolve));
    if (isTerminal(journal.state)) this.#resolveDone(journal);
  }

  get journal(): RunJournal {
    return this.#journal;
  }

  // Starts the script of a Pending run and resolves when the run is terminal.
  async execute(): Promise<RunJournal> {
    const command = this.#command;
    if (this.#journal.state !== 'Pending' || command === undefined) return this.done;
    if (this.#stop) return this.#finish({ kind: 'canceled', reason: this.#stop.reason });
    if (command.source.kind === 'none') {
      return this.#finish({ kind: 'nothing-to-run', reason: noServiceMessage });
    }
    this.#launching = true;
    const profileKey = `${this.#journal.name}.${this.#journal.seq}`;
    markStep(profileKey, 'execute');
    try {
      // timeoutInSeconds covers the whole run from here: downloads, blob creation and launch too.
      await this.#startLaunch();
      markStep(profileKey, 'attempt');
      const launch = await this.#prepare(command);
      markStep(profileKey, 'prepared');
      for (const extension of this.#extensions) {
        if (this.#stop) break;
        await untilAborted(extension.beforeLaunch?.(this, this.#preparing.signal), this.#preparing.signal);
      }
      const handle = await this.#launch(launch);
      // Stopped (timed out, canceled) while preparing: the script never starts.
      if (handle === undefined) return await this.#finishFromStop(this.#stop ?? { kind: 'canceled', reason: 'stopped' });
      mergeSteps(profileKey, `wrapper:${handle.identity.wrapperPid}`);
      markStep(profileKey, 'identity');
      await this.#markRunning(handle);
      markStep(profileKey, 'running');
      flushSteps(profileKey);
      for (const extension of this.#extensions) extension.onRunning?.(this);
      this.#launching = false;
      if (this.#stop) {
        await this.#transition({ stopRequest: this.#stop });
        this.#requestTermination();
      }
      return await this.#finishFromExit(await handle.exited);
    } catch (error) {
      this.#launching = false;
      if (this.#stop && this.#journal.state === 'Pending') return this.#finishFromStop(this.#stop);
      // A fault after the script started must not leave it running behind a terminal status.
      if (this.#handle) this.#requestTermination();
      const code = error instanceof HandlerError ? error.code : errorCodes.startExecution;
      return this.#finish({ kind: 'handler-error', code, message: toErrorMessage(error) });
    }
  }

  // Re-attaches to a Running run after a daemon restart; finishes it if it ended meanwhile.
  async resume(): Promise<RunJournal> {
    const journal = this.#journal;
    if (journal.state !== 'Running' || journal.process === undefined) return this.done;
    if (journal.bootId !== this.#deps.bootId) return this.#finish({ kind: 'rebooted' });
    this.#stop = journal.stopRequest;
    const handle = this.#deps.platform.processLayer.attachScript(this.runDir, journal.process);
    this.#handle = handle;
    for (const extension of this.#extensions) extension.onRunning?.(this);
    if (this.#stop) this.#requestTermination();
    else this.#armDeadline();
    return this.#finishFromExit(await handle.exited);
  }

  // Cancels the run (tree kill when running) and resolves when it is terminal.
  async cancel(reason: string): Promise<RunJournal> {
    await this.#requestStop({ kind: 'canceled', reason });
    return this.done;
  }

  // Persists and announces the run as it is now (its first Pending status), with what its settings
  // warn about (names a shell cannot reference, a repeated name, a negative timeout…).
  persist(): Promise<void> {
    for (const warning of this.#command?.warnings ?? []) this.emit('warning', warning);
    return this.#transition({});
  }

  // Changes what a Pending run says it waits for (queue slot, dependencies): not fsynced, a
  // restarted daemon schedules the run again and says it anew.
  async setPendingMessage(message: string): Promise<void> {
    if (this.#journal.state !== 'Pending' || this.#journal.message === message) return;
    await this.#transition({ message }, { durable: false });
  }

  // Ends a Pending run that will never start (a dependency did not succeed or never appeared).
  async skip(reason: string): Promise<RunJournal> {
    if (this.#journal.state !== 'Pending' || this.#launching) return this.done;
    return this.#finish({ kind: 'not-run', reason });
  }

  // Persists a run extension's progress (blob upload offsets) so that a restarted daemon resumes from it.
  saveUploads(uploads: NonNullable<RunJournal['uploads']>): Promise<void> {
    return this.#transition({ uploads });
  }

  // Ends a run that never started because the handler failed before launching it.
  async fail(error: HandlerError): Promise<RunJournal> {
    return this.#finish({ kind: 'handler-error', code: error.code, message: error.message });
  }

  async #prepare(command: RunCommand): Promise<ScriptLaunch> {
    const warn = (message: string): void => void this.emit('warning', message);
    // RunAs: the user is looked up first (−102), and the script goes to the user's working directory.
    const { runAs: runAsLayer, scripts } = this.#deps.platform;
    const runAs = await runAsLayer.prepareRunAs(command, { runId: this.#journal.runId, workRoot: this.#deps.workRoot, warn });
    // The script, its artifacts, its argv and its environment additions (named parameters for bash).
    const script = await prepareScript(command, runAs?.workDir ?? this.runDir, {
      warn,
      signal: this.#preparing.signal,
      sources: { ...this.#deps.sources, scripts },
    });
    const runEnv = toRunEnvironment(this.#journal.name, this.#journal.seq, this.#deps.agentEnv?.() ?? {});
    const launch: ScriptLaunch = {
      runDir: this.runDir,
      program: script.program,
      args: script.args,
      env: { ...this.#deps.baseEnv, ...runEnv, ...script.env },
      stdoutPath: toRunFilePath(this.runDir, 'stdout'),
      stderrPath: toRunFilePath(this.runDir, 'stderr'),
      graceMs: this.#deps.graceMs,
      ...(this.#deps.maxOutputBytes !== undefined ? { maxOutputBytes: this.#deps.maxOutputBytes } : {}),
    };
    return runAsLayer.applyRunAs(launch, runAs, { ...runEnv, ...script.env });
  }

  // Sends the launch request, fenced (hardening #5): its nonce is journaled first (with the launch
  // attempt, #startLaunch), and the request leaves only once that journal is written, so a
  // restarted daemon always knows of a launch that may still be on its way, and fences it
  // (launch-fence.ts). Not fsynced: a run cut off by a reboot is never started again, so only a
  // daemon of this boot must see it, and the kernel keeps it for that. Undefined when stopped first.
  async #launch(launch: ScriptLaunch): Promise<ScriptHandle | undefined> {
    if (this.#stop) return undefined;
    const { launchNonce } = this.#journal;
    await untilAborted(this.#journalRetry, this.#preparing.signal);
    if (this.#stop) return undefined;
    if (launchNonce === undefined || this.#landed?.launchNonce !== launchNonce) {
      throw new HandlerError(errorCodes.startExecution, 'the script was not started: its launch could not be recorded in the run journal');
    }
    return this.#deps.platform.processLayer.launchScript({ ...launch, launchNonce });
  }

  // Not fsynced (issue 16: one journal commit less per run before its status says Running): the
  // wrapper fsyncs the same identity (process.json) before it reports it, and recovery reads that
  // file when the journal has none, so a power loss that takes this write leaves recovery the same
  // answer; a daemon that dies leaves the write to the kernel, which keeps it.
  async #markRunning(handle: ScriptHandle): Promise<void> {
    this.#handle = handle;
    const patch = {
      state: 'Running' as const,
      message: 'Execution in progress',
      // startTime stays the acceptance time; the launch is kept for the events' duration.
      launchTime: toRfc3339(this.#deps.clock.now()),
      process: handle.identity,
    };
    await this.#transition(patch, { durable: false });
  }

  // Journals, as preparation starts, one more launch attempt (before any launch work: if that work
  // takes the daemon down, recovery knows and gives up after a few, recovery.ts) and the deadline (a
  // deadline already journaled, by a daemon that stopped while this run was preparing, is kept),
  // then arms the deadline. Not fsynced (issue 16: one journal commit less before every launch): the
  // count is for a daemon that died, whose writes the kernel kept; after a power loss nothing of this
  // boot's launch is left to count, and a monotonic deadline means nothing on the next boot.
  async #startLaunch(): Promise<void> {
    const timeout = this.#journal.timeoutInSeconds;
    const { deadline, deadlineMonotonicMs } = this.#journal;
    const launchAttempts = (this.#journal.launchAttempts ?? 0) + 1;
    // The nonce that fences this attempt's launch (#launch) rides on the same write.
    const attempt = { launchAttempts, launchNonce: newLaunchNonce() };
    const armsDeadline = timeout > 0 && deadline === undefined && deadlineMonotonicMs === undefined;
    const patch = armsDeadline ? { ...attempt, deadlineMonotonicMs: this.#deps.clock.monotonicMs() + timeout * 1000 } : attempt;
    await this.#transition(patch, { durable: false });
    this.#armDeadline();
  }

  #armDeadline(): void {
    const { deadline, deadlineMonotonicMs, timeoutInSeconds } = this.#journal;
    const { clock } = this.#deps;
    if (deadlineMonotonicMs === undefined && deadline === undefined) return;
    // A journal of an earlier version has only the wall-clock deadline.
    const delay = deadlineMonotonicMs !== undefined ? deadlineMonotonicMs - clock.monotonicMs() : (deadline ?? 0) - clock.now();
    this.#timers.push(this.#deps.clock.setTimer(() => void this.#requestStop({ kind: 'timed-out', reason: `timeoutInSeconds ${timeoutInSeconds}` }), delay));
  }

  async #requestStop(request: StopRequest): Promise<void> {
    if (isTerminal(this.#journal.state) || this.#stop) return;
    this.#stop = request;
    if (this.#journal.state === 'Pending' && !this.#launching) {
      await this.#finish({ kind: 'canceled', reason: request.reason });
      return;
    }
    if (this.#launching) {
      // execute() signals the process once it exists; a download in progress stops now.
      this.#preparing.abort();
      return;
    }
    await this.#transition({ stopRequest: request });
    this.#requestTermination();
  }

  // Asks the wrapper to kill the whole tree; SIGKILLs it all if the wrapper does not finish in time.
  #requestTermination(): void {
    const identity = this.#journal.process;
    if (identity === undefined) return;
    const processes = this.#deps.platform.processLayer;
    processes.requestTermination(identity, this.runDir);
    const fallback = this.#deps.clock.setTimer(() => processes.killRunNow(identity), this.#deps.graceMs + 5000);
    this.#timers.push(fallback);
  }

  #finishFromStop(stop: StopRequest): Promise<RunJournal> {
    if (stop.kind === 'timed-out') return this.#finish({ kind: 'timed-out', timeoutInSeconds: this.#journal.timeoutInSeconds });
    return this.#finish({ kind: 'canceled', reason: stop.reason });
  }

  async #finishFromExit(record: ExitRecord): Promise<RunJournal> {
    if ((record.kind === 'exited' || record.kind === 'signaled') && record.output !== undefined) this.#outputNote = toTruncationNote(record.output);
    if (this.#stop) return this.#finishFromStop(this.#stop);
    if (record.kind === 'exited') return this.#finish({ kind: 'exited', exitCode: record.exitCode });
    if (record.kind === 'signaled') return this.#finish({ kind: 'signaled', signal: record.signal });
    if (record.kind === 'unreadable') return this.#finish({ kind: 'handler-error', code: errorCodes.general, message: `how the script ended is unknown: ${record.reason}` });
    return this.#finish({ kind: 'handler-error', code: errorCodes.startExecution, message: `could not start the script (errno ${record.errno})` });
  }

  async #finish(outcome: Outcome): Promise<RunJournal> {
    if (isTerminal(this.#journal.state) || this.#finishing) return this.done;
    this.#finishing = true;
    for (const timer of this.#timers) timer.cancel();
    this.#timers = [];
    const notes: string[] = this.#outputNote !== undefined ? [this.#outputNote] : [];
    for (const extension of this.#extensions) {
      const note = await extension.beforeFinish?.(this).catch((error: unknown) => `(${toErrorMessage(error)})`);
      if (note) notes.push(note);
    }
    const endTime = toRfc3339(this.#deps.clock.now());
    await this.#transition({
      state: toExecutionState(outcome),
      message: this.#deps.redact([toOutcomeMessage(outcome), ...notes].join('; ')),
      exitCode: toExitCode(outcome),
      // Never '' in a terminal status (run-command.md §6), even for a journal from before that rule.
      startTime: this.#journal.startTime || endTime,
      endTime,
      handlerFailure: outcome.kind === 'handler-error',
    });
    // The wrapper has reaped the whole tree by now: a RunAs working directory can go.
    await this.#deps.platform.runAs.removeWorkDir(this.#deps.workRoot, this.#journal.runId).catch((error: unknown) => {
      this.emit('warning', `could not remove the RunAs working directory: ${toErrorMessage(error)}`);
    });
    this.#resolveDone(this.#journal);
    return this.#journal;
  }

  // Writes the journal. A write that fails for want of space (or another transient file error) is
  // retried in the background with backoff until it lands, always with the latest journal, so the
  // run and its status go on meanwhile (issue #6); any other failure is a warning, as before.
  async #persist(options: JournalWriteOptions): Promise<void> {
    if (this.#journalRetry !== undefined) return; // the retry writes this journal too
    const journal = this.#journal;
    try {
      await this.#deps.journals.writeJournal(journal, options);
      this.#landed = journal;
    } catch (error) {
      this.emit('warning', `could not write the run journal: ${toErrorMessage(error)}${isTransientFileError(error) ? '; retrying until it is written' : ''}`);
      if (isTransientFileError(error)) this.#journalRetry = this.#retryJournal().finally(() => (this.#journalRetry = undefined));
    }
  }

  async #retryJournal(): Promise<void> {
    let attempts = 1;
    for (let landed: RunJournal | undefined; landed !== this.#journal; ) {
      const journal = this.#journal;
      try {
        await withRetry(retryPolicies.durableWrite, () => this.#deps.journals.writeJournal(journal), {
          isTransient: isTransientFileError,
          onRetry: (error) => {
            attempts += 1;
            if (shouldLogRetry(attempts)) this.emit('warning', `still cannot write the run journal (attempt ${attempts}): ${toErrorMessage(error)}`);
          },
        });
      } catch (error) {
        this.emit('warning', `could not write the run journal: ${toErrorMessage(error)}`);
        return;
      }
      landed = this.#landed = journal;
    }
  }

  // Applies, persists (durably unless told otherwise), then announces a change; changes are serialised.
  #transition(patch: Partial<RunJournal>, options: JournalWriteOptions = {}): Promise<void> {
    const next = this.#persisting.then(async () => {
      const from = this.#journal.state;
      if (isTerminal(from)) return; // a terminal run never changes again
      if (patch.state !== undefined && patch.state !== from && !canTransition(from, patch.state)) {
        throw new Error(`run ${this.#journal.runId}: illegal transition ${from} → ${patch.state}`);
      }
      this.#journal = { ...this.#journal, ...patch };
      await this.#persist(options);
      this.emit('change', this.#journal);
    });
    this.#persisting = next.catch(() => undefined);
    return next;
  }
}

// The executionMessage note for output the wrapper dropped (issue #6): how much, of which stream, why.
export function toTruncationNote(output: OutputTruncation): string | undefined {
  const parts = [
    ...(output.stdoutDropped > 0 ? [`${output.stdoutDropped} bytes of stdout`] : []),
    ...(output.stderrDropped > 0 ? [`${output.stderrDropped} bytes of stderr`] : []),
  ];
  const why = output.lowSpace ? 'the output cap or the file system\'s free-space reserve was reached' : 'the output cap was reached';
  if (parts.length === 0) return output.lowSpace ? 'output may be incomplete: the file system\'s free-space reserve was reached' : undefined;
  return `output truncated: ${parts.join(' and ')} dropped (${why}; the beginning and the end of each stream are kept)`;
}
