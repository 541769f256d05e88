// What the daemon does with one settings file of a run command (the daemon serialises these per
// name): run it as a new run (accepted, journaled, scheduled), refuse it (an older sequence number,
// an unreadable exactly-once record), restore the status of a run already accepted, or leave it to
// what Microsoft's handler ran (take-over).
import { stat } from 'node:fs/promises';
import type { RunCommand } from '../../config/run-command.js';
import { errorCodes, HandlerError, toErrorMessage } from '../../errors.js';
import { makeRunJournal } from '../../runner/journal.js';
import { Run, type RunExtension } from '../../runner/run.js';
import type { RunDeps } from '../../runner/run-deps.js';
import type { Scheduler } from '../../runner/scheduler.js';
import { markStep } from '../../util/dispatch-profile.js';
import type { Clock } from '../../util/time.js';
import type { SettingsFiles } from '../agent/settings-folder.js';
import { makeNotRunStatus, reconcileStatusFile, writeStatusFileIfMissing } from '../agent/status-file.js';
import type { HandlerContext } from '../infra/context.js';
import type { Log } from '../infra/logger.js';
import type { Redactor } from '../infra/redact.js';
import { shouldRun, type Origin } from '../state/run-store.js';
import { carryForeignStatus, type ForeignRun } from '../state/takeover.js';
import { loadRunCommand, readDeploymentFailureFlag } from './intake.js';
import type { RunRegistry } from './run-registry.js';
import { makeRunExtensions } from './run-extensions.js';
import { takeOverRun } from './upkeep.js';

export interface DecisionDeps {
  readonly context: HandlerContext;
  readonly log: Log;
  readonly redactor: Redactor;
  readonly clock: Clock;
  // The runs' dependencies, with the agent's variables of the latest enable (run-command.md §4).
  readonly runDeps: RunDeps;
  readonly runs: RunRegistry;
  readonly scheduler: Scheduler;
  // Which settings files configFolder holds, by name (older ones go once a newer one is accepted).
  readonly settingsFiles: SettingsFiles;
  // What Microsoft's handler ran, when its install directory is next to ours (read at start).
  foreignRuns(): ReadonlyMap<string, ForeignRun>;
  isStopping(): boolean;
}

export class SettingsDecisions {
  readonly #deps: DecisionDeps;

  constructor(deps: DecisionDeps) {
    this.#deps = deps;
  }

  async consider(name: string, seq: number, path: string, origin: Origin): Promise<void> {
    const { store } = this.#deps.context;
    markStep(`${name}.${seq}`, 'consider');
    const mtimeMs = await stat(path).then((s) => s.mtimeMs, () => undefined);
    if (mtimeMs === undefined || this.#deps.isStopping()) return;
    const record = await store.readRecord(name);
    if (record.kind === 'corrupt') return this.#refuseUnknown(name, seq, record.reason, origin);
    const foreign = this.#deps.foreignRuns().get(name);
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
    await this.#deps.runs.get(name)?.cancel(`superseded by sequence number ${seq}`);
    const runId = store.newRunId(name, seq, this.#deps.clock.now());
    // The exactly-once record is fsynced while the settings are read and decrypted (issue 16): its
    // journal commit overlaps that work instead of adding to it. #accept awaits it before the run is
    // journaled, so it is durable before anything of the run is, as before — and a record that cannot
    // be written stops the run here, as before.
    const recorded = store.recordLaunch({ name, seq, runId });
    recorded.catch(() => undefined); // awaited by #accept
    await this.#accept(name, seq, runId, path, recorded);
    const settingsRemoved = await this.#deps.settingsFiles.removeOlder(name, seq);
    if (settingsRemoved.length > 0) this.#deps.log.info('older settings files removed', { name, seq, files: settingsRemoved.join(', ') });
  }

  // Reads a run command's settings file; its secrets are masked from then on.
  async load(settingsFile: string, name: string, seq: number): Promise<RunCommand> {
    const { context, log, redactor } = this.#deps;
    const { paths, options, platform } = context;
    const command = await loadRunCommand(settingsFile, name, seq, { certDir: paths.certDir, settleMs: options.settingsSettleMs, decrypt: platform.decryptProtectedSettings });
    redactor.add(command.secrets);
    if (command.unknownKeys.length > 0) log.info('unknown settings keys ignored', { name, seq, keys: command.unknownKeys.join(', ') });
    return command;
  }

  // Microsoft's handler already ran up to `foreign.seq` of this run command (upkeep.ts).
  #takeOver(name: string, seq: number, foreign: ForeignRun): Promise<void> {
    return takeOverRun(this.#deps, name, seq, foreign);
  }

  // `recorded`: the exactly-once record being written, awaited before anything of the run is persisted.
  async #accept(name: string, seq: number, runId: string, settingsFile: string, recorded: Promise<void>): Promise<void> {
    const { store } = this.#deps.context;
    const identity = { name, seq, runId, settingsFile, bootId: this.#deps.runDeps.bootId };
    // The run's startTime (run-command.md §6): now, before its settings are read or decrypted.
    const acceptedMs = this.#deps.clock.now();
    // The run directory is made while the settings are read and decrypted (issue 16: the mkdir
    // overlaps that work); a directory that cannot be made fails the run whatever the settings say.
    const runDir = store.toRunDir(runId);
    const [dirFailure, loaded] = await Promise.all([
      store.makeRunDir(runId).then(
        () => void markStep(`${name}.${seq}`, 'runDir'),
        (error: unknown) => new HandlerError(errorCodes.createDataDir, `could not create the run directory: ${toErrorMessage(error)}`),
      ),
      this.#loadWithExtensions(settingsFile, name, seq),
    ]);
    const failure = dirFailure ?? loaded.failure;
    // Settings read for a run that fails anyway: their secrets are not kept for masking (the run
    // registry forgets only those of the command it is given).
    if (dirFailure && loaded.command) this.#deps.redactor.remove(loaded.command.secrets);
    const command = dirFailure ? undefined : loaded.command;
    const extensions = dirFailure ? [] : loaded.extensions;
    // Refused settings: treatFailureAsDeploymentFailure still decides the top-level status (§6).
    const flags = command ?? (failure ? { treatFailureAsDeploymentFailure: await readDeploymentFailureFlag(settingsFile) } : undefined);
    await recorded;
    markStep(`${name}.${seq}`, 'recorded');
    const run = new Run(runDir, makeRunJournal(identity, acceptedMs, flags), command, this.#deps.runDeps, extensions);
    this.#deps.runs.adopt(run, command);
    if (failure) {
      this.#deps.log.warn('run command refused', { name, seq, runId, error: failure.message, code: failure.code });
      await run.fail(failure);
      return;
    }
    const { scheduler } = this.#deps;
    // A run that starts at once is journaled with its launch attempt, one durable write (Run.execute).
    const startsAtOnce = scheduler.startsAtOnce(command?.dependsOn);
    await run.persist({ startsAtOnce });
    if (!startsAtOnce) markStep(`${name}.${seq}`, 'journaled');
    scheduler.schedule(run, command?.dependsOn);
  }

  // The run command of a settings file and its run extensions, or why it is refused.
  async #loadWithExtensions(settingsFile: string, name: string, seq: number): Promise<{ command?: RunCommand; extensions: RunExtension[]; failure?: HandlerError }> {
    try {
      const command = await this.load(settingsFile, name, seq);
      const { context, log, redactor } = this.#deps;
      return { command, extensions: makeRunExtensions(command, { options: context.options, log, redactor }) };
    } catch (error) {
      return { extensions: [], failure: error instanceof HandlerError ? error : new HandlerError(errorCodes.invalidSettings, toErrorMessage(error)) };
    }
  }

  // The agent enabled a sequence number older than one already run: it never runs, and says so.
  async #refuseOlder(name: string, seq: number, ranSeq: number): Promise<void> {
    const message = `sequence number ${seq} is older than ${ranSeq}, which already ran; it is not run (delete and re-create the run command to run it again)`;
    this.#deps.log.warn('older sequence number not run', { name, seq, ranSeq });
    await this.#deps.runs.writeStatus({ ...makeNotRunStatus(name, seq, message, this.#deps.clock.now()), runId: `${name}.${seq}.not-run` });
  }

  // The exactly-once record cannot be read: which sequence number ran is unknown, so nothing runs
  // (running one twice is worse than not running it); the status says why and what to do.
  async #refuseUnknown(name: string, seq: number, reason: string, origin: Origin): Promise<void> {
    this.#deps.log.error('exactly-once record unreadable: not run', { name, seq, reason, origin });
    if (origin !== 'enable') return;
    const message = `the record of which sequence number of ${name} already ran ${reason}; to be safe it is not run (delete and re-create the run command to run it again)`;
    await this.#deps.runs.writeStatusUnlessTerminal({ ...makeNotRunStatus(name, seq, message, this.#deps.clock.now()), runId: `${name}.${seq}.not-run` });
  }

  // Re-enable of a run already accepted: rewrite its status file if the agent lost it.
  async #restoreStatus(name: string, runId: string): Promise<void> {
    const { context } = this.#deps;
    const live = this.#deps.runs.get(name);
    if (live?.journal.runId === runId) {
      await writeStatusFileIfMissing(context.paths.statusFolder, live.journal, live.runDir, this.#deps.clock.now());
      return;
    }
    // No live run: its journal is the truth, whatever an interrupted status write left behind.
    const read = await context.store.readJournal(runId);
    if (read.kind === 'present') await reconcileStatusFile(context.paths.statusFolder, read.value, context.store.toRunDir(runId), this.#deps.clock.now());
  }
}
