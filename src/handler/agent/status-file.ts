// The status file the agent reads (protocol.md §7) with the run's instance view (run-command.md §6).
// No other module knows this file's name or format.
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { singleConfigName } from '../../config/run-command.js';
import { isActiveJournal, type RunJournal } from '../../runner/journal.js';
import { readOutputTail } from '../../runner/output-tail.js';
import { toRunFilePath } from '../../runner/run-directory.js';
import { createFileAtomic, writeFileAtomic } from '../../util/atomic-file.js';
import { toRfc3339 } from '../../util/time.js';
import type { HandlerContext } from '../infra/context.js';

export type TopLevelStatus = 'transitioning' | 'success' | 'error';

// Key order is Microsoft's; callers parse it by position in some tools.
export interface InstanceView {
  executionState: string;
  executionMessage: string;
  output: string;
  error: string;
  exitCode: number;
  startTime: string;
  endTime: string;
}

// What the status needs to know about a run.
export type StatusInput = Pick<
  RunJournal,
  'name' | 'seq' | 'state' | 'message' | 'exitCode' | 'startTime' | 'endTime' | 'asyncExecution' | 'treatFailureAsDeploymentFailure' | 'handlerFailure'
>;

// The agent truncates messages of files above 128 KiB; stay well below.
const maxStatusBytes = 120 * 1024;
const maxMessageChars = 4096;

// `<name>.<seq>.status`, or `<seq>.status` for the single configuration (no name).
const statusFileName = /^(?:(.+)\.)?(\d+)\.status$/;

// Path of a run command's status file: `<name>.<seq>.status`, or `<seq>.status` for the single
// configuration (protocol.md §7).
export function toStatusPath(statusFolder: string, name: string, seq: number): string {
  return join(statusFolder, name === singleConfigName ? `${seq}.status` : `${name}.${seq}.status`);
}

// The `name` the agent reads in the status: the run command's, or '' for the single configuration
// (Microsoft's handler writes its empty ConfigExtensionName there).
function toReportedName(name: string): string {
  return name === singleConfigName ? '' : name;
}

// Top-level status (run-command.md §6): transitioning while active (success once started with
// asyncExecution); at the end success however the run ended — script exit, timeout, or a handler
// failure (download, blob, RunAs, invalid settings, artifact) — as Microsoft's handler reports it
// (Compat: the instance view says Failed); error only when treatFailureAsDeploymentFailure is set
// and the run did not succeed.
export function toTopLevelStatus(run: StatusInput): TopLevelStatus {
  if (run.state === 'Pending') return 'transitioning';
  if (run.state === 'Running') return run.asyncExecution ? 'success' : 'transitioning';
  if (run.state === 'Succeeded') return 'success';
  return run.treatFailureAsDeploymentFailure ? 'error' : 'success';
}

// The instance view, keys in Microsoft's order.
export function toInstanceView(run: StatusInput, output: string, error: string): InstanceView {
  return {
    executionState: run.state,
    executionMessage: run.message.length > maxMessageChars ? `${run.message.slice(0, maxMessageChars)}…` : run.message,
    output,
    error,
    exitCode: run.exitCode,
    startTime: run.startTime,
    endTime: run.endTime,
  };
}

// The status file's text for a run: a one-element JSON array, never a BOM, under 128 KiB.
export function toStatusDocument(run: StatusInput, output: string, error: string, nowMs: number): string {
  let view = toInstanceView(run, output, error);
  let text = render(run, view, nowMs);
  // Tails of control characters expand sixfold when escaped twice; shrink them until it fits.
  while (Buffer.byteLength(text) > maxStatusBytes && (view.output.length > 0 || view.error.length > 0)) {
    view = { ...view, output: view.output.slice(Math.floor(view.output.length / 2)), error: view.error.slice(Math.floor(view.error.length / 2)) };
    text = render(run, view, nowMs);
  }
  return text;
}

function render(run: StatusInput, view: InstanceView, nowMs: number): string {
  return JSON.stringify([
    {
      version: 1,
      timestampUTC: toRfc3339(nowMs),
      status: {
        name: toReportedName(run.name),
        operation: 'Enable',
        status: toTopLevelStatus(run),
        formattedMessage: { lang: 'en', message: JSON.stringify(view) },
      },
    },
  ]);
}

// Reads the run's output tails from its directory ('' when the run has none yet).
export async function readTails(runDir: string | undefined): Promise<{ output: string; error: string }> {
  if (runDir === undefined) return { output: '', error: '' };
  const [output, error] = await Promise.all([readOutputTail(toRunFilePath(runDir, 'stdout')), readOutputTail(toRunFilePath(runDir, 'stderr'))]);
  return { output: output.text, error: error.text };
}

// A Pending run's script has not started: it has no output to read (two opens less per status).
function readRunTails(run: StatusInput, runDir: string | undefined): Promise<{ output: string; error: string }> {
  return readTails(run.state === 'Pending' ? undefined : runDir);
}

// Runs a write into statusFolder, creating the folder only when it turns out to be missing (not a
// mkdir per status write: issue 16).
async function inStatusFolder<T>(statusFolder: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    await mkdir(statusFolder, { recursive: true });
    return write();
  }
}

// Writes (replaces) a run's status file.
export async function writeStatusFile(statusFolder: string, run: StatusInput, runDir: string | undefined, nowMs: number): Promise<void> {
  const tails = await readRunTails(run, runDir);
  const text = toStatusDocument(run, tails.output, tails.error, nowMs);
  await inStatusFolder(statusFolder, () => writeFileAtomic(toStatusPath(statusFolder, run.name, run.seq), text, { mode: 0o644, sync: false }));
}

// Writes a status file only when none exists yet for (name, seq); never replaces a newer one.
export async function writeStatusFileIfMissing(statusFolder: string, run: StatusInput, runDir: string | undefined, nowMs: number): Promise<boolean> {
  const tails = await readRunTails(run, runDir);
  const text = toStatusDocument(run, tails.output, tails.error, nowMs);
  return inStatusFolder(statusFolder, () => createFileAtomic(toStatusPath(statusFolder, run.name, run.seq), text, { mode: 0o644, sync: false }));
}

// The terminal status of settings the agent enabled but that will never run (an older sequence
// number, an unreadable exactly-once record). They ended without running: top-level success with
// the instance view Failed, as for every other run that ended (run-command.md §6); accepted and
// ended now, so startTime = endTime.
export function makeNotRunStatus(name: string, seq: number, message: string, nowMs: number): StatusInput {
  const now = toRfc3339(nowMs);
  return { ...makePendingStatus(name, seq), state: 'Failed', message: `Execution failed: ${message}`, exitCode: -1, startTime: now, endTime: now, handlerFailure: true };
}

// The status of a run the daemon has not picked up yet.
export function makePendingStatus(name: string, seq: number, message = 'Execution pending'): StatusInput {
  return {
    name,
    seq,
    state: 'Pending',
    message,
    exitCode: 0,
    startTime: '',
    endTime: '',
    asyncExecution: false,
    treatFailureAsDeploymentFailure: false,
    handlerFailure: false,
  };
}

// A status file read back: its top-level status and instance view.
export interface StatusEntry {
  readonly name: string;
  readonly seq: number;
  readonly status: TopLevelStatus;
  readonly instanceView: InstanceView;
}

// Reads the status file of (name, seq); undefined when it is absent or not a status document.
export async function readStatusFile(statusFolder: string, name: string, seq: number): Promise<StatusEntry | undefined> {
  const text = await readFile(toStatusPath(statusFolder, name, seq), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const document = JSON.parse(text) as [{ status: { status: TopLevelStatus; formattedMessage: { message: string } } }];
    const status = document[0].status;
    return { name, seq, status: status.status, instanceView: JSON.parse(status.formattedMessage.message) as InstanceView };
  } catch {
    return undefined;
  }
}

// True when the status file of (name, seq) already reports how the run ended.
export async function isTerminalStatusFile(statusFolder: string, name: string, seq: number): Promise<boolean> {
  const entry = await readStatusFile(statusFolder, name, seq);
  return entry !== undefined && !['Pending', 'Running'].includes(entry.instanceView.executionState);
}

// The highest-sequence status of every run command in `statusFolder`, sorted by name.
export async function readStatusEntries(statusFolder: string): Promise<StatusEntry[]> {
  const newest = new Map<string, number>();
  for (const file of await readdir(statusFolder).catch(() => [] as string[])) {
    const match = statusFileName.exec(file);
    // `_single.<seq>.status` is no one's: the single configuration's file is `<seq>.status`.
    if (!match || match[1] === singleConfigName) continue;
    const [, name = singleConfigName, seqText = ''] = match;
    if ((newest.get(name) ?? -1) < Number(seqText)) newest.set(name, Number(seqText));
  }
  const entries = await Promise.all([...newest].map(([name, seq]) => readStatusFile(statusFolder, name, seq)));
  return entries.filter((entry): entry is StatusEntry => entry !== undefined).sort((a, b) => a.name.localeCompare(b.name));
}

// Makes the status file of a run that has ended agree with its journal: written when it is missing
// or reports anything else (a daemon killed between its terminal journal write and its status
// write left `Running`); true when it was (re)written.
export async function reconcileStatusFile(statusFolder: string, journal: StatusInput, runDir: string, nowMs: number): Promise<boolean> {
  const entry = await readStatusFile(statusFolder, journal.name, journal.seq);
  if (entry !== undefined && entry.instanceView.executionState === journal.state && entry.instanceView.endTime === journal.endTime) return false;
  await writeStatusFile(statusFolder, journal, runDir, nowMs);
  return true;
}

// Writes the run's status file if the agent has none: from the journal if the run is known, else
// Pending (what `enable` does, in node or, for the native client, in the daemon).
export async function ensureStatusFile(context: HandlerContext, name: string, seq: number): Promise<void> {
  const { paths, store } = context;
  const current = await store.currentRun(name);
  if (current.kind === 'run' && current.record.seq === seq && current.journal.kind === 'present') {
    const journal = current.journal.value;
    // A run that ended: its status must say so, even if a killed daemon never wrote it (issue 13).
    if (isActiveJournal(journal)) await writeStatusFileIfMissing(paths.statusFolder, journal, current.runDir, Date.now());
    else await reconcileStatusFile(paths.statusFolder, journal, current.runDir, Date.now());
    return;
  }
  await writeStatusFileIfMissing(paths.statusFolder, makePendingStatus(name, seq), undefined, Date.now());
}
