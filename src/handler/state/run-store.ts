// The run store: the one module that owns the handler's state folder (run-command.md §2, §8) —
// the exactly-once record of each run command (which sequence number was accepted, written before
// its script starts), every run's own directory and its journal. It answers "the current run of
// NAME", "every run" and "record this launch"; nothing else builds a path in the state folder.
// Absent, present and corrupt are three different answers: a corrupt record or journal is never
// taken for "never ran", so nothing runs twice because a file could not be read.
import { chmod, mkdir, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { isRunKey } from '../../config/run-command.js';
import { isActiveJournal, journalSchema, type JournalWriteOptions, type RunJournal } from '../../runner/journal.js';
import { toRunFilePath } from '../../runner/run-directory.js';
import { readDurableJson, writeFileAtomic, type Read } from '../../util/atomic-file.js';
import * as z from '../../util/schema.js';

const recordSchema = z.object({
  name: z.string(),
  seq: z.int(),
  runId: z.string(),
  // Epoch ms when `disable` forgot this run command; absent while it is live.
  disabledAt: z.optional(z.number()),
  // Microsoft's handler ran `seq` (takeover.ts): there is no run directory, and none is needed.
  takenOver: z.optional(z.literal(true)),
});

export type SequenceRecord = z.infer<typeof recordSchema>;

// Who asks for a settings file to be considered.
export type Origin = 'enable' | 'watch' | 'reconcile';

// A run command's current run: none (never accepted, or deleted), a record that cannot be read,
// or the run its record names with what its journal says.
export type CurrentRun =
  | { readonly kind: 'none' }
  | { readonly kind: 'corrupt-record'; readonly reason: string }
  | { readonly kind: 'run'; readonly record: SequenceRecord; readonly runDir: string; readonly journal: Read<RunJournal> };

// How long the runs of a deleted run command are kept: an update's old `disable` marks every record
// deleted and the new `update` restores them (and rewrites their status from the journal) within
// the hour its mark lasts (update-marker.ts).
export const deletedRunsKeptMs = 60 * 60 * 1000;

// The state folder's other files: the daemon's control token, socket (Linux: the platform names it
// `daemon.sock` in this folder) and single-instance lock, and the mark an update leaves.
export type StateFile = 'ipc-token' | 'daemon.sock' | 'daemon.lock' | 'update-in-progress.json';

let runCounter = 0;
// How long a run directory without a journal counts as being set up (see #isYoung).
const unjournaledRunGraceMs = 10 * 60 * 1000;

export class RunStore {
  readonly stateDir: string;
  readonly #runsDir: string;
  readonly #recordsDir: string;
  // Run ids by run command name: listed once, then kept up to date with every run directory this
  // store makes or removes, so that retention after each ended run does not list the runs folder —
  // one entry per run of every run command (issue 16). Only the daemon makes run directories; the
  // full pass at start and hourly (applyRetention) adds whatever its listing finds.
  #runIndex: Promise<Map<string, Set<string>>> | undefined;
  // Run directories this store made whose journal is not written yet: a run starting, not a
  // leftover — retention (which may list the folder while a run is being accepted) keeps them.
  readonly #unjournaled = new Set<string>();

  constructor(stateDir: string) {
    this.stateDir = stateDir;
    this.#runsDir = join(stateDir, 'runs');
    this.#recordsDir = join(stateDir, 'records');
  }

  // Creates the state folders, root-only (0700, also when they existed with another mode: run
  // directories hold scripts and output, and RunAs users must not reach them); idempotent.
  async ensure(): Promise<void> {
    for (const dir of [this.stateDir, this.#runsDir, this.#recordsDir]) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await chmod(dir, 0o700);
    }
  }

  // The path of one of the state folder's own files.
  toStateFile(file: StateFile): string {
    return join(this.stateDir, file);
  }

  // A new run's id: name, sequence number and a time-based suffix, unique within this process.
  newRunId(name: string, seq: number, nowMs: number): string {
    runCounter = (runCounter + 1) % 1296;
    return `${name}.${seq}.${nowMs.toString(36)}${runCounter.toString(36).padStart(2, '0')}`;
  }

  // A run's own directory.
  toRunDir(runId: string): string {
    return join(this.#runsDir, runId);
  }

  // Creates a new run's directory (root-only).
  async makeRunDir(runId: string): Promise<string> {
    const runDir = this.toRunDir(runId);
    await mkdir(runDir, { recursive: true, mode: 0o700 });
    this.#unjournaled.add(runId);
    const name = toRunName(runId);
    if (this.#runIndex !== undefined && name !== undefined) addTo(await this.#runIndex, name, runId);
    return runDir;
  }

  // The run ids of `name`'s run directories, from the index (listing the folder the first time).
  async #indexedRunIds(name: string): Promise<string[]> {
    this.#runIndex ??= this.listRunIds().then(toRunIndex);
    return [...((await this.#runIndex).get(name) ?? [])];
  }

  // The run ids of every run directory on disk.
  async listRunIds(): Promise<string[]> {
    return readdir(this.#runsDir).catch(() => [] as string[]);
  }

  // Retention (run-command.md §8): removes the run directories of `name` other than `keepRunId`
  // (all of them without one) whose run is over — a run still Pending or Running is never removed.
  // Returns the run ids removed.
  async removeOlderRuns(name: string, keepRunId?: string): Promise<string[]> {
    const removed: string[] = [];
    for (const runId of await this.#indexedRunIds(name)) {
      if (runId === keepRunId) continue;
      if (this.#unjournaled.has(runId)) continue;
      const journal = await this.readJournal(runId);
      if (journal.kind === 'present' && isActiveJournal(journal.value)) continue;
      if (journal.kind === 'absent' && (await this.#isYoung(runId))) continue;
      await rm(this.toRunDir(runId), { recursive: true, force: true });
      (await this.#runIndex)?.get(name)?.delete(runId);
      removed.push(runId);
    }
    return removed;
  }

  // A run directory without a journal made in the last minutes is a run being set up (by whichever
  // process made it), not a leftover: retention leaves it to a later pass.
  async #isYoung(runId: string): Promise<boolean> {
    const made = await stat(this.toRunDir(runId)).catch(() => undefined);
    return made !== undefined && Date.now() - made.mtimeMs < unjournaledRunGraceMs;
  }

  // Retention for every name: a live run command keeps its current run only, a deleted one (after
  // deletedRunsKeptMs) and a run without any record keep nothing; a corrupt record keeps everything.
  async applyRetention(nowMs: number): Promise<string[]> {
    const records = new Map((await this.listRecords()).map(({ name, record }) => [name, record]));
    const listed = await this.listRunIds();
    const index = await (this.#runIndex ??= Promise.resolve(new Map<string, Set<string>>()));
    for (const [name, runIds] of toRunIndex(listed)) for (const runId of runIds) addTo(index, name, runId);
    const names = new Set(listed.map(toRunName).filter((name): name is string => name !== undefined));
    const removed: string[] = [];
    for (const name of names) {
      const read = records.get(name) ?? { kind: 'absent' };
      if (read.kind === 'corrupt') continue;
      if (read.kind === 'absent') {
        removed.push(...(await this.removeOlderRuns(name)));
        continue;
      }
      const { disabledAt, runId } = read.value;
      if (disabledAt === undefined) removed.push(...(await this.removeOlderRuns(name, runId)));
      else if (nowMs - disabledAt >= deletedRunsKeptMs) removed.push(...(await this.removeOlderRuns(name)));
    }
    return removed;
  }

  // A run command's exactly-once record.
  readRecord(name: string): Promise<Read<SequenceRecord>> {
    return readDurableJson(this.#recordPath(name), recordSchema);
  }

  // Records that (name, seq) was accepted as run `runId` (fsynced: exactly-once depends on it).
  async recordLaunch(record: SequenceRecord): Promise<void> {
    await writeFileAtomic(this.#recordPath(record.name), JSON.stringify(record));
  }

  // Marks a run command deleted: a later enable or a newer settings file may run it again, and an
  // update can restore the record (protocol.md §8). A corrupt record is set aside: nothing to keep.
  async markDisabled(name: string, record: Read<SequenceRecord>, atMs: number): Promise<void> {
    if (record.kind === 'present') await this.recordLaunch({ ...record.value, disabledAt: atMs });
    if (record.kind === 'corrupt') await this.setAsideRecord(name);
  }

  // Moves a corrupt record out of the way (kept for diagnosis as `<name>.json.corrupt`).
  async setAsideRecord(name: string): Promise<void> {
    await rename(this.#recordPath(name), `${this.#recordPath(name)}.corrupt`).catch(() => undefined);
  }

  // Deletes a run command's record; idempotent.
  async removeRecord(name: string): Promise<void> {
    await unlink(this.#recordPath(name)).catch(() => undefined);
  }

  // Every record on disk, each as read (corrupt ones included: callers must not take them for absent).
  async listRecords(): Promise<Array<{ readonly name: string; readonly record: Read<SequenceRecord> }>> {
    const entries = await readdir(this.#recordsDir).catch(() => [] as string[]);
    const names = entries.filter((entry) => entry.endsWith('.json')).map((entry) => entry.slice(0, -'.json'.length)).filter(isRunKey);
    return Promise.all(names.map(async (name) => ({ name, record: await this.readRecord(name) })));
  }

  // A run's journal.
  readJournal(runId: string): Promise<Read<RunJournal>> {
    return readDurableJson(toRunFilePath(this.toRunDir(runId), 'journal'), journalSchema);
  }

  // Persists a run's journal atomically (fsynced unless `durable: false`: it is what recovery trusts).
  async writeJournal(journal: RunJournal, options: JournalWriteOptions = {}): Promise<void> {
    await writeFileAtomic(toRunFilePath(this.toRunDir(journal.runId), 'journal'), JSON.stringify(journal), { sync: options.durable !== false });
    this.#unjournaled.delete(journal.runId);
  }

  // The current run of `name`: its record's run and journal. A deleted run command (disabled
  // record) has none, unless `includeDisabled` (an update restoring it, the operator's view).
  async currentRun(name: string, options: { includeDisabled?: boolean } = {}): Promise<CurrentRun> {
    const read = await this.readRecord(name);
    if (read.kind === 'absent') return { kind: 'none' };
    if (read.kind === 'corrupt') return { kind: 'corrupt-record', reason: read.reason };
    const record = read.value;
    if (record.disabledAt !== undefined && options.includeDisabled !== true) return { kind: 'none' };
    return { kind: 'run', record, runDir: this.toRunDir(record.runId), journal: await this.readJournal(record.runId) };
  }

  #recordPath(name: string): string {
    return join(this.#recordsDir, `${name}.json`);
  }
}

// The run command name of a run id (`<name>.<seq>.<suffix>`; names may hold dots).
export function toRunName(runId: string): string | undefined {
  const match = /^(.+)\.\d+\.[0-9a-z]+$/.exec(runId);
  return match?.[1];
}

function addTo(index: Map<string, Set<string>>, name: string, runId: string): void {
  const runIds = index.get(name);
  if (runIds === undefined) index.set(name, new Set([runId]));
  else runIds.add(runId);
}

// Run ids (directory names) grouped by run command name; names that are no run id are left out.
function toRunIndex(runIds: readonly string[]): Map<string, Set<string>> {
  const index = new Map<string, Set<string>>();
  for (const runId of runIds) {
    const name = toRunName(runId);
    if (name !== undefined) addTo(index, name, runId);
  }
  return index;
}

// Whether settings (seq, mtime) for a name with this record must run: a newer seq runs; an older
// or equal one never does; after a disable, an explicit enable or a file written since runs. A
// corrupt record never runs anything: which sequence number ran is unknown.
export function shouldRun(read: Read<SequenceRecord>, seq: number, mtimeMs: number, origin: Origin): boolean {
  if (read.kind === 'absent') return true;
  if (read.kind === 'corrupt') return false;
  const record = read.value;
  if (record.disabledAt !== undefined) return origin === 'enable' || mtimeMs > record.disabledAt;
  return seq > record.seq;
}
