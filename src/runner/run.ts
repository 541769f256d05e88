// One run of a run command: the state machine Pending → Running → terminal, its journal persisted
// before every event (journal-writer.ts), so a daemon that dies mid-run loses nothing
// (run-command.md §4, §8). It owns the order of things: the launch (run-launch.ts), stops and the
// end (run-end.ts), its extensions' hooks and the dispatch-profile marks.
import { EventEmitter } from 'node:events';
import type { RunCommand } from '../config/run-command.js';
import { errorCodes, HandlerError, toErrorMessage } from '../errors.js';
import { flushSteps, markStep, mergeSteps } from '../util/dispatch-profile.js';
import type { RunJournal } from './journal.js';
import { JournalWriter } from './journal-writer.js';
import type { ExitRecord, ScriptHandle } from './process-contract.js';
import type { RunDeps } from './run-deps.js';
import { armDeadline, terminateTree, toExitOutcome, toStopOutcome, toTerminalPatch, toTruncationNote, type RunTimer, type StopRequest } from './run-end.js';
import { launchFenced, prepareLaunch, toLaunchAttempt, toRunningPatch, untilAborted } from './run-launch.js';
import { isTerminal, type Outcome } from './run-state.js';

export interface RunEvents {
  // The journal after a transition, already persisted.
  change: [RunJournal];
  // Something the operator should know (never carries a secret value).
  warning: [string];
}

// installAsService without a source (run-command.md §1): Microsoft's handler would install its
// immediate run-command service; this one does not provide it, and says so.
export const noServiceMessage =
  'nothing was run: installAsService asks for the immediate run-command service, which this handler does not provide (give source.script, source.scriptUri or source.commandId to run a script)';

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

export class Run extends EventEmitter<RunEvents> {
  readonly runDir: string;
  readonly done: Promise<RunJournal>;
  // The journal, its serialised transitions and their writes.
  readonly #writer: JournalWriter;
  #command: RunCommand | undefined;
  #deps: RunDeps;
  #handle: ScriptHandle | undefined;
  #launching = false;
  // Aborts downloads when the run is stopped before its script started.
  readonly #preparing = new AbortController();
  #finishing = false;
  #stop: StopRequest | undefined;
  #timers: RunTimer[] = [];
  // What the wrapper's relay dropped of the output, said in the final message.
  #outputNote: string | undefined;
  #resolveDone!: (journal: RunJournal) => void;
  #extensions: readonly RunExtension[];

  constructor(runDir: string, journal: RunJournal, command: RunCommand | undefined, deps: RunDeps, extensions: readonly RunExtension[] = []) {
    super();
    this.#extensions = extensions;
    this.runDir = runDir;
    this.#writer = new JournalWriter(journal, deps.journals, {
      change: (changed) => void this.emit('change', changed),
      warning: (message) => void this.emit('warning', message),
    });
    this.#command = command;
    this.#deps = deps;
    this.done = new Promise((resolve) => (this.#resolveDone = resolve));
    if (isTerminal(journal.state)) this.#resolveDone(journal);
  }

  get journal(): RunJournal {
    return this.#writer.journal;
  }

  // Starts the script of a Pending run and resolves when the run is terminal.
  async execute(): Promise<RunJournal> {
    const command = this.#command;
    if (this.journal.state !== 'Pending' || command === undefined) return this.done;
    if (this.#stop) return this.#finish({ kind: 'canceled', reason: this.#stop.reason });
    if (command.source.kind === 'none') return this.#finish({ kind: 'nothing-to-run', reason: noServiceMessage });
    this.#launching = true;
    const profileKey = `${this.journal.name}.${this.journal.seq}`;
    markStep(profileKey, 'execute');
    try {
      const handle = await this.#startScript(command, profileKey);
      // Stopped (timed out, canceled) while preparing: the script never starts.
      if (handle === undefined) return await this.#finishFromStop(this.#stop ?? { kind: 'canceled', reason: 'stopped' });
      for (const extension of this.#extensions) extension.onRunning?.(this);
      this.#launching = false;
      if (this.#stop) {
        await this.#writer.transition({ stopRequest: this.#stop });
        this.#requestTermination();
      }
      return await this.#finishFromExit(await handle.exited);
    } catch (error) {
      this.#launching = false;
      if (this.#stop && this.journal.state === 'Pending') return this.#finishFromStop(this.#stop);
      // A fault after the script started must not leave it running behind a terminal status.
      if (this.#handle) this.#requestTermination();
      const code = error instanceof HandlerError ? error.code : errorCodes.startExecution;
      return this.#finish({ kind: 'handler-error', code, message: toErrorMessage(error) });
    }
  }

  // Re-attaches to a Running run after a daemon restart; finishes it if it ended meanwhile.
  async resume(): Promise<RunJournal> {
    const journal = this.journal;
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

  // Announces what the run's settings warn about (names a shell cannot reference, a repeated name, a
  // negative timeout…), and unless it starts at once (its launch attempt is then its first journal
  // write), persists and announces it as it is now: its first Pending status.
  persist(options: { startsAtOnce?: boolean } = {}): Promise<void> {
    for (const warning of this.#command?.warnings ?? []) this.emit('warning', warning);
    return options.startsAtOnce === true ? Promise.resolve() : this.#writer.transition({});
  }

  // Changes what a Pending run says it waits for (queue slot, dependencies): not fsynced, a
  // restarted daemon schedules the run again and says it anew.
  async setPendingMessage(message: string): Promise<void> {
    if (this.journal.state !== 'Pending' || this.journal.message === message) return;
    await this.#writer.transition({ message }, { durable: false });
  }

  // Ends a Pending run that will never start (a dependency did not succeed or never appeared).
  async skip(reason: string): Promise<RunJournal> {
    if (this.journal.state !== 'Pending' || this.#launching) return this.done;
    return this.#finish({ kind: 'not-run', reason });
  }

  // Persists a run extension's progress (blob upload offsets) so that a restarted daemon resumes from it.
  saveUploads(uploads: NonNullable<RunJournal['uploads']>): Promise<void> {
    return this.#writer.transition({ uploads });
  }

  // Ends a run that never started because the handler failed before launching it.
  async fail(error: HandlerError): Promise<RunJournal> {
    return this.#finish({ kind: 'handler-error', code: error.code, message: error.message });
  }

  // The launch work, each step marked for the dispatch profile; undefined when the run was stopped
  // before its script started.
  async #startScript(command: RunCommand, profileKey: string): Promise<ScriptHandle | undefined> {
    // timeoutInSeconds covers the whole run from here: downloads, blob creation and launch too. The
    // launch attempt is journaled before launch work that reaches out (downloads) begins, and while
    // local work (writing an inline or built-in script) is done: the write overlaps it (issue 16).
    // The request leaves only once both are done (launchFenced checks the journal landed).
    const attempt = this.#startLaunch().then(() => markStep(profileKey, 'attempt'));
    attempt.catch(() => undefined); // awaited below, or the run fails of prepareLaunch's error first
    if (command.source.kind === 'scriptUri' || command.artifacts.length > 0) await attempt;
    const signal = this.#preparing.signal;
    const launch = await prepareLaunch(command, { runDir: this.runDir, journal: this.journal }, this.#deps, { warn: (message) => void this.emit('warning', message), signal });
    markStep(profileKey, 'prepared');
    await attempt;
    for (const extension of this.#extensions) {
      if (this.#stop) break;
      await untilAborted(extension.beforeLaunch?.(this, signal), signal);
    }
    const handle = await launchFenced(launch, this.#writer, this.#deps, { isStopped: () => this.#stop !== undefined, signal });
    if (handle === undefined) return undefined;
    mergeSteps(profileKey, `wrapper:${handle.identity.wrapperPid}`);
    markStep(profileKey, 'identity');
    await this.#markRunning(handle);
    markStep(profileKey, 'running');
    flushSteps(profileKey);
    return handle;
  }

  // Journals the run as Running (toRunningPatch says why without fsync).
  async #markRunning(handle: ScriptHandle): Promise<void> {
    this.#handle = handle;
    await this.#writer.transition(toRunningPatch(handle, this.#deps.clock), { durable: false });
  }

  // Journals the launch attempt (its nonce, the deadline: toLaunchAttempt) and arms the deadline now.
  // Not durable, unless it is the run's first write (JournalWriter): a run that starts at once is
  // not journaled Pending first (SettingsDecisions), so this one write is its Pending too.
  #startLaunch(): Promise<void> {
    const attempt = toLaunchAttempt(this.journal, this.#deps.clock);
    const written = this.#writer.transition(attempt, { durable: false });
    this.#armDeadline({ ...this.journal, ...attempt });
    return written;
  }

  #armDeadline(journal: RunJournal = this.journal): void {
    const timer = armDeadline(journal, this.#deps, (request) => void this.#requestStop(request));
    if (timer !== undefined) this.#timers.push(timer);
  }

  async #requestStop(request: StopRequest): Promise<void> {
    if (isTerminal(this.journal.state) || this.#stop) return;
    this.#stop = request;
    if (this.journal.state === 'Pending' && !this.#launching) {
      await this.#finish({ kind: 'canceled', reason: request.reason });
      return;
    }
    if (this.#launching) {
      // execute() signals the process once it exists; a download in progress stops now.
      this.#preparing.abort();
      return;
    }
    await this.#writer.transition({ stopRequest: request });
    this.#requestTermination();
  }

  // Asks the wrapper to kill the whole tree (run-end.ts), with a SIGKILL fallback.
  #requestTermination(): void {
    const identity = this.journal.process;
    if (identity === undefined) return;
    this.#timers.push(terminateTree(identity, this.runDir, this.#deps));
  }

  #finishFromStop(stop: StopRequest): Promise<RunJournal> {
    return this.#finish(toStopOutcome(stop, this.journal.timeoutInSeconds));
  }

  async #finishFromExit(record: ExitRecord): Promise<RunJournal> {
    if ((record.kind === 'exited' || record.kind === 'signaled') && record.output !== undefined) this.#outputNote = toTruncationNote(record.output);
    if (this.#stop) return this.#finishFromStop(this.#stop);
    return this.#finish(toExitOutcome(record));
  }

  async #finish(outcome: Outcome): Promise<RunJournal> {
    if (isTerminal(this.journal.state) || this.#finishing) return this.done;
    this.#finishing = true;
    for (const timer of this.#timers) timer.cancel();
    this.#timers = [];
    const notes: string[] = this.#outputNote !== undefined ? [this.#outputNote] : [];
    for (const extension of this.#extensions) {
      const note = await extension.beforeFinish?.(this).catch((error: unknown) => `(${toErrorMessage(error)})`);
      if (note) notes.push(note);
    }
    await this.#writer.transition(toTerminalPatch(outcome, notes, this.journal, this.#deps));
    // The wrapper has reaped the whole tree by now: a RunAs working directory can go.
    await this.#deps.platform.runAs.removeWorkDir(this.#deps.workRoot, this.journal.runId).catch((error: unknown) => {
      this.emit('warning', `could not remove the RunAs working directory: ${toErrorMessage(error)}`);
    });
    this.#resolveDone(this.journal);
    return this.journal;
  }
}
