// The daemon's composition root: wires the watcher, the control endpoint (requests.ts), the
// scheduler, runs, status files and the log together, and owns the start and stop sequence.
// Decisions about one run command (settings-decisions.ts) are serialised per name.
import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { parseSettingsFileName, toSettingsFileName } from '../../config/settings-file.js';
import { toErrorMessage } from '../../errors.js';
import { toAgentVariables } from '../../runner/parameters.js';
import type { RunDeps } from '../../runner/run-deps.js';
import { Scheduler } from '../../runner/scheduler.js';
import { markStep } from '../../util/dispatch-profile.js';
import { KeyedQueue } from '../../util/keyed-queue.js';
import type { Clock } from '../../util/time.js';
import { listCurrentSettings, SettingsFiles } from '../agent/settings-folder.js';
import type { HandlerContext } from '../infra/context.js';
import { DaemonEndpoint } from '../infra/daemon-endpoint.js';
import { isPathnameSocket } from '../infra/ipc.js';
import { stopLegacyDaemons } from '../infra/legacy-daemon.js';
import type { Log } from '../infra/logger.js';
import type { Redactor } from '../infra/redact.js';
import type { Origin } from '../state/run-store.js';
import { readForeignRuns, type ForeignRun } from '../state/takeover.js';
import { lookupDependency } from './dependency-lookup.js';
import { recoverRuns } from './recovery.js';
import { attachRequests } from './requests.js';
import { makeRunExtensions } from './run-extensions.js';
import { RunRegistry } from './run-registry.js';
import { SettingsDecisions } from './settings-decisions.js';
import { applyRetention, reconcileStatuses, retainLatestRun } from './upkeep.js';
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
  // What to do with a settings file: run it, refuse it, restore its status, leave it to a take-over.
  readonly #settings: SettingsDecisions;
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
      lookup: (name) => lookupDependency(name, { context: deps.context, runs: this.#runs }),
      clock: deps.runDeps.clock,
    });
    this.#runs = new RunRegistry(deps, () => this.#scheduler.notify(), (name) => void this.#decisions.run(name, () => this.#retain(name)));
    this.#settingsFiles = new SettingsFiles(deps.context.paths.configFolder);
    this.#settings = new SettingsDecisions({
      ...deps,
      runDeps: this.#runDeps,
      runs: this.#runs,
      scheduler: this.#scheduler,
      settingsFiles: this.#settingsFiles,
      foreignRuns: () => this.#foreignRuns,
      isStopping: () => this.#stopping,
    });
    this.stopped = new Promise((resolve) => (this.#resolveStopped = resolve));
  }

  // Takes the single-instance lock, recovers interrupted runs, then serves settings files.
  async start(): Promise<void> {
    const { context, log } = this.#deps;
    const { paths, store } = context;
    // The state folder first, root-only: the daemon's socket and lock live in it (ipc.ts).
    await store.ensure();
    this.#endpoint = this.#deps.endpoint ?? (await DaemonEndpoint.bind(context));
    attachRequests(this.#endpoint, {
      ...this.#deps,
      runs: this.#runs,
      decisions: this.#decisions,
      recovered: this.#recovered,
      setAgentEnv: (agentEnv) => (this.#agentEnv = agentEnv),
      enable: (name, seq) => this.#onEnable(name, seq),
      stop: (cancelRuns) => this.stop(cancelRuns),
    });
    for (const folder of [paths.logFolder, paths.statusFolder, paths.configFolder]) await mkdir(folder, { recursive: true });
    // An older version's daemon (abstract socket) still serving this install during an update:
    // stopped, never talked to, before the runs are recovered (legacy-daemon.ts).
    if (isPathnameSocket(context.daemonAddress.endpoint)) {
      const legacy = await stopLegacyDaemons(paths.stateDir);
      if (legacy.length > 0) log.info('stopped the daemon of an older version', { pids: legacy.join(', ') });
    }
    log.info('daemon started', { version: context.version, configFolder: paths.configFolder, stateDir: paths.stateDir });
    await this.#recover();
    await reconcileStatuses(this.#deps);
    await this.#applyRetention();
    this.#retention = setInterval(() => void this.#applyRetention(), retentionIntervalMs);
    this.#retention.unref();
    this.#watcher = await watchSettingsFolder(paths.configFolder, (path) => this.#onSettingsFile(path, 'watch'), (error) => log.error('watcher error', { error: toErrorMessage(error) }));
    await this.#reconcile();
  }

  // Reads what Microsoft's handler ran, then resumes or finishes the interrupted runs (recovery.ts).
  async #recover(): Promise<void> {
    const { context, log } = this.#deps;
    const { paths, store } = context;
    this.#foreignRuns = await readForeignRuns(paths.configFolder);
    if (this.#foreignRuns.size > 0) log.info("taking over from Microsoft's handler", { runCommands: [...this.#foreignRuns].map(([name, run]) => `${name}@${run.seq}`).join(', ') });
    const recoveryStart = this.#deps.clock.now();
    const recovered = await recoverRuns(store, {
      adopt: (run, command) => this.#runs.adopt(run, command),
      schedule: (run, command) => this.#scheduler.schedule(run, command.dependsOn),
      load: (journal) => this.#settings.load(journal.settingsFile, journal.name, journal.seq),
      extend: (command) => makeRunExtensions(command, { options: context.options, log, redactor: this.#deps.redactor }),
      runDeps: this.#runDeps,
      log,
    });
    this.#markRecovered();
    if (recovered > 0) log.info('interrupted runs recovered', { count: recovered, ms: this.#deps.clock.now() - recoveryStart });
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
    void this.#decisions.run(parsed.name, () => this.#settings.consider(parsed.name, parsed.seq, path, origin));
  }

  async #onEnable(name: string, seq: number): Promise<void> {
    await this.#recovered;
    const path = join(this.#deps.context.paths.configFolder, toSettingsFileName(name, seq));
    this.#settingsFiles.note(name, seq);
    await this.#decisions.run(name, () => this.#settings.consider(name, seq, path, 'enable'));
  }

  // The current settings file of each name is considered at start.
  async #reconcile(): Promise<void> {
    await this.#settingsFiles.refresh();
    for (const { path } of await listCurrentSettings(this.#deps.context.paths.configFolder)) this.#onSettingsFile(path, 'reconcile');
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
}
