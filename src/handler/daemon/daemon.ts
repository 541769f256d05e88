// The daemon's composition root: wires the watcher, the control endpoint, the scheduler, runs,
// status files and the log together. Decisions about one run command are serialised per name.
import { mkdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { RunCommand } from '../../config/run-command.js';
import { parseSettingsFileName, toSettingsFileName } from '../../config/settings-file.js';
import { errorCodes, HandlerError, toErrorMessage } from '../../errors.js';
import { toDependencyState, type DependencyState } from '../../runner/dependency-graph.js';
import { toAgentVariables } from '../../runner/parameters.js';
import { makeRunJournal } from '../../runner/journal.js';
import { Run, type RunExtension } from '../../runner/run.js';
import type { RunDeps } from '../../runner/run-deps.js';
import type { RunState } from '../../runner/run-state.js';
import { Scheduler } from '../../runner/scheduler.js';
import { markStep } from '../../util/dispatch-profile.js';
import { KeyedQueue } from '../../util/keyed-queue.js';
import type { Clock } from '../../util/time.js';
import { listCurrentSettings, SettingsFiles } from '../agent/settings-folder.js';
import { makeNotRunStatus, readStatusFile, reconcileStatusFile, writeStatusFileIfMissing } from '../agent/status-file.js';
import type { HandlerContext } from '../infra/context.js';
import { DaemonEndpoint, toHello } from '../infra/daemon-endpoint.js';
import { isPathnameSocket } from '../infra/ipc.js';
import { stopLegacyDaemons } from '../infra/legacy-daemon.js';
import type { Log } from '../infra/logger.js';
import type { Redactor } from '../infra/redact.js';
import { shouldRun, type Origin } from '../state/run-store.js';
import { carryForeignStatus, readForeignRuns, type ForeignRun } from '../state/takeover.js';
import { applyRetention, reconcileStatuses, retainLatestRun, takeOverRun } from './upkeep.js';
import { loadRunCommand, readDeploymentFailureFlag } from './intake.js';
import { recoverRuns } from './recovery.js';
import { RunRegistry } from './run-registry.js';
import { makeRunExtensions } from './run-extensions.js';
import { watchSettingsFolder, type SettingsWatcher } from './watcher.js';

// How often runs of deleted run commands are looked for while the daemon runs.
const retentionIntervalMs = 60 * 60 * 1000;

export interface DaemonDeps {
  readonly context: HandlerContext;
  readonly log: Log;
  readonly redactor: Redactor;
  readonly clock: Clock;
  readonly runDeps: RunDeps;
  // The control endpoint, when it was bound before the daemon loaded (daemon-endpoint.ts);
  // else start() binds it.
  readonly endpoint?: DaemonEndpoint;
}

export class Daemon {
  readonly #deps: DaemonDeps;
  // The runs' dependencies, with the agent's variables of the latest enable (run-command.md §4).
  readonly #runDeps: RunDeps;
  #agentEnv: Readonly<Record<string, string>>;
  readonly #decisions: KeyedQueue;
  readonly #runs: RunRegistry;
  readonly #scheduler: Scheduler;
  // Which settings files configFolder holds, by name (older ones go once a newer one is accepted).
  readonly #settingsFiles: SettingsFiles;
  #endpoint: DaemonEndpoint | undefined;
  #watcher: SettingsWatcher | undefined;
  #retention: NodeJS.Timeout | undefined;
  // What Microsoft's handler ran, when its install directory is next to ours (read at start).
  #foreignRuns: ReadonlyMap<string, ForeignRun> = new Map();
  #stopping = false;
  // Resolved once interrupted runs are recovered: requests served before then (the socket is up
  // first) wait for it, so an enable, disable or cancel never races recovery over the same run.
  #markRecovered!: () => void;
  readonly #recovered = new Promise<void>((resolve) => (this.#markRecovered = resolve));
  readonly stopped: Promise<void>;
  #resolveStopped!: () => void;

  constructor(deps: DaemonDeps) {
    this.#deps = deps;
    this.#agentEnv = toAgentVariables(process.env);
    this.#runDeps = { ...deps.runDeps, agentEnv: () => this.#agentEnv };
    this.#decisions = new KeyedQueue((name, error) => deps.log.error('unexpected error handling a run command', { name, error: toErrorMessage(error) }));
    this.#scheduler = new Scheduler({
      concurrency: deps.context.options.concurrency,
      dependencyWaitMs: deps.context.options.dependencyWaitMs,
      lookup: (name) => this.#lookupDependency(name),
      clock: deps.runDeps.clock,
    });
    this.#runs = new RunRegistry(deps, () => this.#scheduler.notify(), (name) => void this.#decisions.run(name, () => this.#retain(name)));
    this.#settingsFiles = new SettingsFiles(deps.context.paths.configFolder);
    this.stopped = new Promise((resolve) => (this.#resolveStopped = resolve));
  }

  // Takes the single-instance lock, recovers interrupted runs, then serves settings files.
  async start(): Promise<void> {
    const { context, log } = this.#deps;
    const { paths, store } = context;
    // The state folder first, root-only: the daemon's socket and lock live in it (ipc.ts).
    await store.ensure();
    this.#endpoint = this.#deps.endpoint ?? (await DaemonEndpoint.bind(context.daemonAddress, toHello(context)));
    this.#endpoint.attach({
      hello: async () => toHello(context),
      // Answered at once: `enable` must not wait for a superseded run to die.
      enable: async ({ name, seq, agentEnv }) => {
        if (agentEnv !== undefined) this.#agentEnv = agentEnv;
        void this.#onEnable(name, seq);
        return {};
      },
      disable: async ({ name }) => (await this.#recovered, await this.#disable(name), {}),
      cancel: async ({ name }) => (await this.#recovered, { canceled: await this.#cancel(name) }),
      shutdown: async ({ cancelRuns }) => (setImmediate(() => void this.stop(cancelRuns)), {}),
    });
    for (const folder of [paths.logFolder, paths.statusFolder, paths.configFolder]) await mkdir(folder, { recursive: true });
    // An older version's daemon (abstract socket) still serving this install during an update:
    // stopped, never talked to, before the runs are recovered (legacy-daemon.ts).
    if (isPathnameSocket(context.daemonAddress.endpoint)) {
      const legacy = await stopLegacyDaemons(paths.stateDir);
      if (legacy.length > 0) log.info('stopped the daemon of an older version', { pids: legacy.join(', ') });
    }
    log.info('daemon started', { version: context.version, configFolder: paths.configFolder, stateDir: paths.stateDir });
    this.#foreignRuns = await readForeignRuns(paths.configFolder);
    if (this.#foreignRuns.size > 0) log.info("taking over from Microsoft's handler", { runCommands: [...this.#foreignRuns].map(([name, run]) => `${name}@${run.seq}`).join(', ') });
    const recoveryStart = this.#deps.clock.now();
    const recovered = await recoverRuns(store, {
      adopt: (run, command) => this.#runs.adopt(run, command),
      schedule: (run, command) => this.#scheduler.schedule(run, command.dependsOn),
      load: (journal) => this.#load(journal.settingsFile, journal.name, journal.seq),
      extend: (command) => makeRunExtensions(command, { options: context.options, log, redactor: this.#deps.redactor }),
      runDeps: this.#runDeps,
      log,
    });
    this.#markRecovered();
    if (recovered > 0) log.info('interrupted runs recovered', { count: recovered, ms: this.#deps.clock.now() - recoveryStart });
    await reconcileStatuses(this.#deps);
    await this.#applyRetention();
    this.#retention = setInterval(() => void this.#applyRetention(), retentionIntervalMs);
    this.#retention.unref();
    this.#watcher = await watchSettingsFolder(paths.configFolder, (path) => this.#onSettingsFile(path, 'watch'), (error) => log.error('watcher error', { error: toErrorMessage(error) }));
    await this.#reconcile();
  }

  // Stops serving; running scripts keep running unless `cancelRuns` (uninstall).
  async stop(cancelRuns: boolean): Promise<void> {
    if (this.#stopping) return this.stopped;
    this.#stopping = true;
    await this.#watcher?.close();
    // An update's next daemon takes over at once; an uninstall, which removes the state once no
    // daemon answers, must not see this one gone while it still writes its canceled runs' state.
    if (!cancelRuns) this.#endpoint?.close();
    clearInterval(this.#retention);
    await this.#runs.stop(cancelRuns);
    if (cancelRuns) this.#endpoint?.close();
    this.#deps.log.info('daemon stopped', { cancelRuns });
    this.#resolveStopped();
  }

  #onSettingsFile(path: string, origin: Origin): void {
    if (this.#stopping) return;
    const parsed = parseSettingsFileName(basename(path));
    if (parsed.kind === 'other') return;
    if (parsed.kind === 'refused') {
      this.#deps.log.warn('settings file refused', { file: basename(path).slice(0, 200), reason: parsed.reason });
      return;
    }
    this.#settingsFiles.note(parsed.name, parsed.seq);
    markStep(`${parsed.name}.${parsed.seq}`, 'event');
    void this.#decisions.run(parsed.name, () => this.#consider(parsed.name, parsed.seq, path, origin));
  }

  async #onEnable(name: string, seq: number): Promise<void> {
    await this.#recovered;
    const path = join(this.#deps.context.paths.configFolder, toSettingsFileName(name, seq));
    this.#settingsFiles.note(name, seq);
    await this.#decisions.run(name, () => this.#consider(name, seq, path, 'enable'));
  }

  // The current settings file of each name is considered at start.
  async #reconcile(): Promise<void> {
    await this.#settingsFiles.refresh();
    for (const { path } of await listCurrentSettings(this.#deps.context.paths.configFolder)) this.#onSettingsFile(path, 'reconcile');
  }

  async #consider(name: string, seq: number, path: string, origin: Origin): Promise<void> {
    const { store } = this.#deps.context;
    markStep(`${name}.${seq}`, 'consider');
    const mtimeMs = await stat(path).then((s) => s.mtimeMs, () => undefined);
    if (mtimeMs === undefined || this.#stopping) return;
    const record = await store.readRecord(name);
    if (record.kind === 'corrupt') return this.#refuseUnknown(name, seq, record.reason, origin);
    const foreign = this.#foreignRuns.get(name);
    if (record.kind === 'absent' && foreign && seq <= foreign.seq) return this.#takeOver(name, seq, foreign);
    if (record.kind === 'present' && record.value.takenOver && seq <= record.value.seq) {
      if (foreign && origin === 'enable') await carryForeignStatus(foreign, name, seq, this.#deps.context.paths.statusFolder);
      return;
    }
    if (!shouldRun(record, seq, mtimeMs, origin)) {
      if (origin !== 'enable' || record.kind !== 'present') return;
      if (record.value.seq === seq) return this.#restoreStatus(name, record.value.runId);
      return this.#refuseOlder(name, seq, record.value.seq);
    }
    await this.#runs.get(name)?.cancel(`superseded by sequence number ${seq}`);
    const runId = store.newRunId(name, seq, this.#deps.clock.now());
    // The exactly-once record is fsynced while the settings are read and decrypted (issue 16): its
    // journal commit overlaps that work instead of adding to it. #accept awaits it before the run is
    // journaled, so it is durable before anything of the run is, as before — and a record that cannot
    // be written stops the run here, as before.
    const recorded = store.recordLaunch({ name, seq, runId });
    recorded.catch(() => undefined); // awaited by #accept
    await this.#accept(name, seq, runId, path, recorded);
    const settingsRemoved = await this.#settingsFiles.removeOlder(name, seq);
    if (settingsRemoved.length > 0) this.#deps.log.info('older settings files removed', { name, seq, files: settingsRemoved.join(', ') });
  }

  // Microsoft's handler already ran up to `foreign.seq` of this run command (upkeep.ts).
  #takeOver(name: string, seq: number, foreign: ForeignRun): Promise<void> {
    return takeOverRun(this.#deps, name, seq, foreign);
  }

  // Retention once a run of `name` has ended: its last status first, then older runs go (upkeep.ts).
  async #retain(name: string): Promise<void> {
    await this.#runs.statusSettled(name);
    await retainLatestRun(this.#deps, name);
  }

  // Retention for every name (at start and hourly); the settings files are listed again too.
  async #applyRetention(): Promise<void> {
    await applyRetention(this.#deps);
    await this.#settingsFiles.refresh();
  }

  // `recorded`: the exactly-once record being written, awaited before anything of the run is persisted.
  async #accept(name: string, seq: number, runId: string, settingsFile: string, recorded: Promise<void>): Promise<void> {
    const { store, options } = this.#deps.context;
    const identity = { name, seq, runId, settingsFile, bootId: this.#deps.runDeps.bootId };
    // The run's startTime (run-command.md §6): now, before its settings are read or decrypted.
    const acceptedMs = this.#deps.clock.now();
    let command: RunCommand | undefined;
    let extensions: RunExtension[] = [];
    let failure: HandlerError | undefined;
    const runDir = await store.makeRunDir(runId).catch((error: unknown) => {
      failure = new HandlerError(errorCodes.createDataDir, `could not create the run directory: ${toErrorMessage(error)}`);
      return store.toRunDir(runId);
    });
    markStep(`${name}.${seq}`, 'runDir');
    try {
      if (!failure) command = await this.#load(settingsFile, name, seq);
      if (command) extensions = makeRunExtensions(command, { options, log: this.#deps.log, redactor: this.#deps.redactor });
    } catch (error) {
      failure = error instanceof HandlerError ? error : new HandlerError(errorCodes.invalidSettings, toErrorMessage(error));
    }
    // Refused settings: treatFailureAsDeploymentFailure still decides the top-level status (§6).
    const flags = command ?? (failure ? { treatFailureAsDeploymentFailure: await readDeploymentFailureFlag(settingsFile) } : undefined);
    await recorded;
    markStep(`${name}.${seq}`, 'recorded');
    const run = new Run(runDir, makeRunJournal(identity, acceptedMs, flags), command, this.#runDeps, extensions);
    this.#runs.adopt(run, command);
    if (failure) {
      this.#deps.log.warn('run command refused', { name, seq, runId, error: failure.message, code: failure.code });
      await run.fail(failure);
      return;
    }
    await run.persist();
    markStep(`${name}.${seq}`, 'journaled');
    this.#scheduler.schedule(run, command?.dependsOn);
  }

  async #load(settingsFile: string, name: string, seq: number): Promise<RunCommand> {
    const { context, log, redactor } = this.#deps;
    const { paths, options, platform } = context;
    const command = await loadRunCommand(settingsFile, name, seq, { certDir: paths.certDir, settleMs: options.settingsSettleMs, decrypt: platform.decryptProtectedSettings });
    redactor.add(command.secrets);
    if (command.unknownKeys.length > 0) log.info('unknown settings keys ignored', { name, seq, keys: command.unknownKeys.join(', ') });
    return command;
  }

  // The agent enabled a sequence number older than one already run: it never runs, and says so.
  async #refuseOlder(name: string, seq: number, ranSeq: number): Promise<void> {
    const message = `sequence number ${seq} is older than ${ranSeq}, which already ran; it is not run (delete and re-create the run command to run it again)`;
    this.#deps.log.warn('older sequence number not run', { name, seq, ranSeq });
    await this.#runs.writeStatus({ ...makeNotRunStatus(name, seq, message, this.#deps.clock.now()), runId: `${name}.${seq}.not-run` });
  }

  // The exactly-once record cannot be read: which sequence number ran is unknown, so nothing runs
  // (running one twice is worse than not running it); the status says why and what to do.
  async #refuseUnknown(name: string, seq: number, reason: string, origin: Origin): Promise<void> {
    this.#deps.log.error('exactly-once record unreadable: not run', { name, seq, reason, origin });
    if (origin !== 'enable') return;
    const message = `the record of which sequence number of ${name} already ran ${reason}; to be safe it is not run (delete and re-create the run command to run it again)`;
    await this.#runs.writeStatusUnlessTerminal({ ...makeNotRunStatus(name, seq, message, this.#deps.clock.now()), runId: `${name}.${seq}.not-run` });
  }

  // Re-enable of a run already accepted: rewrite its status file if the agent lost it.
  async #restoreStatus(name: string, runId: string): Promise<void> {
    const { context } = this.#deps;
    const live = this.#runs.get(name);
    if (live?.journal.runId === runId) {
      await writeStatusFileIfMissing(context.paths.statusFolder, live.journal, live.runDir, this.#deps.clock.now());
      return;
    }
    // No live run: its journal is the truth, whatever an interrupted status write left behind.
    const read = await context.store.readJournal(runId);
    if (read.kind === 'present') await reconcileStatusFile(context.paths.statusFolder, read.value, context.store.toRunDir(runId), this.#deps.clock.now());
  }

  // The state of a run command's current run, for its dependents (an unreadable one did not succeed).
  async #lookupDependency(name: string): Promise<DependencyState> {
    const live = this.#runs.get(name)?.journal;
    if (live) return toDependencyState(live);
    const current = await this.#deps.context.store.currentRun(name);
    if (current.kind === 'none') return toDependencyState(undefined);
    if (current.kind === 'run' && current.record.takenOver) {
      // Microsoft's handler ran it: its carried status says how it ended.
      const view = (await readStatusFile(this.#deps.context.paths.statusFolder, name, current.record.seq))?.instanceView;
      return toDependencyState(view ? { state: view.executionState as RunState, exitCode: view.exitCode } : undefined);
    }
    if (current.kind === 'run' && current.journal.kind === 'present') return toDependencyState(current.journal.value);
    return current.kind === 'run' && current.journal.kind === 'absent' ? toDependencyState(undefined) : { kind: 'failed', state: 'Failed', exitCode: -1 };
  }

  async #cancel(name: string): Promise<boolean> {
    const run = this.#runs.get(name);
    if (!run) return false;
    await run.cancel('canceled by the operator');
    return true;
  }

  // The run command was deleted: silence its status, kill its tree, forget its record.
  async #disable(name: string): Promise<void> {
    const { store } = this.#deps.context;
    await this.#decisions.run(name, async () => {
      const run = this.#runs.get(name);
      const record = await store.readRecord(name);
      const recordedRunId = record.kind === 'present' ? record.value.runId : undefined;
      await this.#runs.silence(name, [run?.journal.runId, recordedRunId].filter((id): id is string => id !== undefined));
      if (run) await run.cancel('disable: the run command was deleted, or the handler is being updated or removed');
      await store.markDisabled(name, record, this.#deps.clock.now());
      this.#deps.log.info('run command disabled', { name, seq: record.kind === 'present' ? record.value.seq : undefined, runId: recordedRunId });
    });
  }
}
