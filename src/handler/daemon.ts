// The daemon's composition root: wires the watcher, the IPC channel, the scheduler, runs,
// status files and the log together. Decisions about one run command are serialised per name.
import { mkdir, stat } from 'node:fs/promises';
import type { Server } from 'node:net';
import { basename, join } from 'node:path';
import type { Options } from '../config/options.js';
import { isValidName, type RunCommand } from '../config/run-command.js';
import { parseSettingsFileName } from '../config/settings-file.js';
import { errorCodes, HandlerError, toErrorMessage } from '../errors.js';
import type { DependencyState } from '../runner/dependency-graph.js';
import { readJournal, type RunJournal } from '../runner/journal.js';
import { makeRunJournal, Run, type RunDeps, type RunExtension } from '../runner/run.js';
import { isTerminal } from '../runner/run-state.js';
import { Scheduler } from '../runner/scheduler.js';
import type { Clock } from '../util/time.js';
import { readCurrentJournal, toDependencyState } from './current-run.js';
import { EventWriter } from './events.js';
import { toEndEvent, toStartEvent } from './run-events.js';
import { listCurrentSettings } from './settings-folder.js';
import { loadRunCommand } from './intake.js';
import { startIpcServer, toIpcEndpoint, type IpcRequest, type IpcResponse } from './ipc.js';
import type { Log } from './logger.js';
import { ensureStateDirs, makeRunId, toRunDir, type HandlerPaths } from './paths.js';
import { recoverRuns } from './recovery.js';
import { makeRunExtensions } from './run-extensions.js';
import type { Redactor } from './redact.js';
import { readRecord, shouldRun, writeRecord, type Origin } from './sequence-records.js';
import { makeNotRunStatus, writeStatusFileIfMissing } from './status-file.js';
import { StatusWriter } from './status-writer.js';
import { watchSettingsFolder, type SettingsWatcher } from './watcher.js';

export interface DaemonDeps {
  readonly paths: HandlerPaths;
  readonly options: Options;
  readonly log: Log;
  readonly redactor: Redactor;
  readonly clock: Clock;
  readonly runDeps: RunDeps;
  readonly version: string;
}

export class Daemon {
  readonly #deps: DaemonDeps;
  readonly #runs = new Map<string, Run>();
  readonly #chains = new Map<string, Promise<void>>();
  readonly #statusWriter: StatusWriter;
  readonly #events: EventWriter;
  readonly #scheduler: Scheduler;
  #server: Server | undefined;
  #watcher: SettingsWatcher | undefined;
  #ticker: NodeJS.Timeout | undefined;
  #stopping = false;
  readonly stopped: Promise<void>;
  #resolveStopped!: () => void;

  constructor(deps: DaemonDeps) {
    this.#deps = deps;
    this.#statusWriter = new StatusWriter(deps.paths.statusFolder, deps.clock, deps.log, deps.redactor);
    this.#events = new EventWriter(deps.paths.eventsFolder, deps.version, deps.clock, deps.redactor);
    this.#scheduler = new Scheduler({
      concurrency: deps.options.concurrency,
      dependencyWaitMs: deps.options.dependencyWaitMs,
      lookup: (name) => this.#lookupDependency(name),
    });
    this.stopped = new Promise((resolve) => (this.#resolveStopped = resolve));
  }

  // Takes the single-instance lock, recovers interrupted runs, then serves settings files.
  async start(): Promise<void> {
    const { paths, log } = this.#deps;
    this.#server = await startIpcServer(toIpcEndpoint(paths.stateDir), (request) => this.#handle(request));
    await ensureStateDirs(paths);
    await mkdir(paths.statusFolder, { recursive: true });
    // The agent creates it with the first settings; watching needs it to exist already.
    await mkdir(paths.configFolder, { recursive: true });
    log.info('daemon started', { version: this.#deps.version, configFolder: paths.configFolder, stateDir: paths.stateDir });
    const recoveryStart = this.#deps.clock.now();
    const recovered = await recoverRuns(paths, {
      adopt: (run) => this.#adopt(run),
      schedule: (run, command) => this.#scheduler.schedule(run, command.dependsOn),
      load: (journal) => this.#load(journal.settingsFile, journal.name, journal.seq),
      extend: (command) => makeRunExtensions(command, this.#deps),
      runDeps: this.#deps.runDeps,
      log,
    });
    if (recovered > 0) log.info('interrupted runs recovered', { count: recovered, ms: this.#deps.clock.now() - recoveryStart });
    this.#watcher = await watchSettingsFolder(
      paths.configFolder,
      (path) => this.#onSettingsFile(path, 'watch'),
      (error) => log.error('watcher error', { error: toErrorMessage(error) }),
    );
    await this.#reconcile();
  }

  // Stops serving; running scripts keep running unless `cancelRuns` (uninstall).
  async stop(cancelRuns: boolean): Promise<void> {
    if (this.#stopping) return this.stopped;
    this.#stopping = true;
    await this.#watcher?.close();
    this.#server?.close();
    if (cancelRuns) await Promise.all([...this.#runs.values()].map((run) => run.cancel('the handler is being uninstalled')));
    clearInterval(this.#ticker);
    await this.#statusWriter.drain();
    this.#deps.log.info('daemon stopped', { cancelRuns });
    this.#resolveStopped();
  }

  async #handle(request: IpcRequest): Promise<IpcResponse> {
    // Names become paths: the CLI validates them, the daemon does not trust that it did.
    if ('name' in request && (typeof request.name !== 'string' || !isValidName(request.name))) return { ok: false, error: 'invalid run command name' };
    if (request.op === 'enable' && !(Number.isSafeInteger(request.seq) && request.seq >= 0)) return { ok: false, error: 'invalid sequence number' };
    switch (request.op) {
      case 'hello':
        return { ok: true, pid: process.pid, version: this.#deps.version, configFolder: this.#deps.paths.configFolder };
      case 'enable':
        // Answer at once: `enable` must not wait for a superseded run to die.
        void this.#onEnable(request.name, request.seq);
        return { ok: true };
      case 'disable':
        await this.#disable(request.name);
        return { ok: true };
      case 'cancel':
        return { ok: true, canceled: await this.#cancel(request.name) };
      case 'shutdown':
        setImmediate(() => void this.stop(request.cancelRuns));
        return { ok: true };
    }
  }

  // Serialises every decision about one run command.
  #serialise(name: string, task: () => Promise<void>): Promise<void> {
    const next = (this.#chains.get(name) ?? Promise.resolve()).then(task).catch((error: unknown) => {
      this.#deps.log.error('unexpected error handling a run command', { name, error: toErrorMessage(error) });
    });
    this.#chains.set(name, next);
    void next.then(() => {
      if (this.#chains.get(name) === next) this.#chains.delete(name);
    });
    return next;
  }

  #onSettingsFile(path: string, origin: Origin): void {
    if (this.#stopping) return;
    const parsed = parseSettingsFileName(basename(path));
    if (parsed.kind === 'other') return;
    if (parsed.kind === 'refused') {
      this.#deps.log.warn('settings file refused', { file: basename(path).slice(0, 200), reason: parsed.reason });
      return;
    }
    void this.#serialise(parsed.name, () => this.#consider(parsed.name, parsed.seq, path, origin));
  }

  async #onEnable(name: string, seq: number): Promise<void> {
    await this.#serialise(name, () => this.#consider(name, seq, join(this.#deps.paths.configFolder, `${name}.${seq}.settings`), 'enable'));
  }

  // The current settings file of each name is considered at start.
  async #reconcile(): Promise<void> {
    for (const { path } of await listCurrentSettings(this.#deps.paths.configFolder)) this.#onSettingsFile(path, 'reconcile');
  }

  async #consider(name: string, seq: number, path: string, origin: Origin): Promise<void> {
    const { paths } = this.#deps;
    const mtimeMs = await stat(path).then((s) => s.mtimeMs, () => undefined);
    if (mtimeMs === undefined || this.#stopping) return;
    const record = await readRecord(paths.recordsDir, name);
    if (!shouldRun(record, seq, mtimeMs, origin)) {
      if (origin === 'enable' && record?.seq === seq) await this.#restoreStatus(name, record.runId);
      else if (origin === 'enable' && record !== undefined) await this.#refuseOlder(name, seq, record.seq);
      return;
    }
    const previous = this.#runs.get(name);
    if (previous) await previous.cancel(`superseded by sequence number ${seq}`);
    const runId = makeRunId(name, seq, this.#deps.clock.now());
    await writeRecord(paths.recordsDir, { name, seq, runId });
    await this.#accept(name, seq, runId, path);
  }

  async #accept(name: string, seq: number, runId: string, settingsFile: string): Promise<void> {
    const runDir = toRunDir(this.#deps.paths, runId);
    const identity = { name, seq, runId, settingsFile, bootId: this.#deps.runDeps.bootId };
    let command: RunCommand | undefined;
    let extensions: RunExtension[] = [];
    let failure: HandlerError | undefined;
    try {
      await mkdir(runDir, { recursive: true, mode: 0o700 });
    } catch (error) {
      failure = new HandlerError(errorCodes.createDataDir, `could not create the run directory: ${toErrorMessage(error)}`);
    }
    if (!failure) {
      try {
        command = await this.#load(settingsFile, name, seq);
        extensions = makeRunExtensions(command, this.#deps);
      } catch (error) {
        failure = error instanceof HandlerError ? error : new HandlerError(errorCodes.invalidSettings, toErrorMessage(error));
      }
    }
    const run = new Run(runDir, makeRunJournal(identity, command), command, this.#deps.runDeps, extensions);
    this.#adopt(run, command);
    if (failure) {
      this.#deps.log.warn('run command refused', { name, seq, runId, error: failure.message, code: failure.code });
      await run.fail(failure);
      return;
    }
    await run.persist();
    this.#scheduler.schedule(run, command?.dependsOn);
  }

  async #load(settingsFile: string, name: string, seq: number): Promise<RunCommand> {
    const { paths, options, log, redactor } = this.#deps;
    const command = await loadRunCommand(settingsFile, name, seq, { certDir: paths.certDir, settleMs: options.settingsSettleMs });
    redactor.add(command.secrets);
    if (command.unknownKeys.length > 0) log.info('unknown settings keys ignored', { name, seq, keys: command.unknownKeys.join(', ') });
    return command;
  }

  // Registers a run: its changes go to the status file and the log; it is forgotten when terminal.
  #adopt(run: Run, command?: RunCommand): void {
    const { log, redactor } = this.#deps;
    const meta = { name: run.journal.name, seq: run.journal.seq, runId: run.journal.runId };
    this.#runs.set(run.journal.name, run);
    run.on('warning', (message) => log.warn(message, meta));
    let previousState = run.journal.state;
    // A re-attached run is already Running: its status is rewritten at the cadence from now on.
    if (previousState === 'Running') this.#startTicker();
    run.on('change', (journal) => {
      void this.#statusWriter.write(journal, run.runDir);
      const entered = journal.state !== previousState;
      previousState = journal.state;
      if (!entered) return;
      this.#scheduler.notify();
      if (journal.state === 'Running') {
        this.#startTicker();
        void this.#events.write(toStartEvent(journal));
      }
      if (!isTerminal(journal.state)) return;
      log.info('run finished', { ...meta, state: journal.state, exitCode: journal.exitCode, executionMessage: journal.message });
      void this.#events.write(toEndEvent(journal));
      if (command) redactor.remove(command.secrets);
      if (this.#runs.get(journal.name) === run) this.#runs.delete(journal.name);
    });
  }

  // While any script runs, rewrite running runs' status files at the configured cadence.
  #startTicker(): void {
    if (this.#ticker) return;
    this.#ticker = setInterval(() => {
      const running = [...this.#runs.values()].filter((run) => run.journal.state === 'Running');
      for (const run of running) void this.#statusWriter.write(run.journal, run.runDir);
      if (running.length === 0) {
        clearInterval(this.#ticker);
        this.#ticker = undefined;
      }
    }, this.#deps.options.statusIntervalMs);
  }

  // The agent enabled a sequence number older than one already run: it never runs, and says so.
  async #refuseOlder(name: string, seq: number, ranSeq: number): Promise<void> {
    const message = `sequence number ${seq} is older than ${ranSeq}, which already ran; it is not run (delete and re-create the run command to run it again)`;
    this.#deps.log.warn('older sequence number not run', { name, seq, ranSeq });
    await this.#statusWriter.write({ ...makeNotRunStatus(name, seq, message, this.#deps.clock.now()), runId: `${name}.${seq}.not-run` }, undefined);
  }

  // Re-enable of a run already accepted: rewrite its status file if the agent lost it.
  async #restoreStatus(name: string, runId: string): Promise<void> {
    const runDir = toRunDir(this.#deps.paths, runId);
    const live = this.#runs.get(name);
    const journal: RunJournal | undefined = live?.journal.runId === runId ? live.journal : await readJournal(runDir);
    if (journal) await writeStatusFileIfMissing(this.#deps.paths.statusFolder, journal, runDir, this.#deps.clock.now());
  }

  // The state of a run command's current run, for its dependents.
  async #lookupDependency(name: string): Promise<DependencyState> {
    return toDependencyState(this.#runs.get(name)?.journal ?? (await readCurrentJournal(this.#deps.paths, name)));
  }

  async #cancel(name: string): Promise<boolean> {
    const run = this.#runs.get(name);
    if (!run) return false;
    await run.cancel('canceled by the operator');
    return true;
  }

  // The run command was deleted: silence its status, kill its tree, forget its record.
  async #disable(name: string): Promise<void> {
    await this.#serialise(name, async () => {
      const run = this.#runs.get(name);
      const record = await readRecord(this.#deps.paths.recordsDir, name);
      await this.#statusWriter.silence(name, [run?.journal.runId, record?.runId].filter((id): id is string => id !== undefined));
      if (run) await run.cancel('disable: the run command was deleted, or the handler is being updated or removed');
      if (record) await writeRecord(this.#deps.paths.recordsDir, { ...record, disabledAt: this.#deps.clock.now() });
      this.#deps.log.info('run command disabled', { name, seq: record?.seq, runId: record?.runId });
    });
  }
}
