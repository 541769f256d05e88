// What the operator sees of each run command: its status file joined with its current run's journal
// and the sizes of its output files (operator CLI: `status`, `status NAME`, `status --watch`).
import { stat } from 'node:fs/promises';
import type { RunJournal } from '../../runner/journal.js';
import { toRunFilePath } from '../../runner/run-directory.js';
import { readStatusEntries, type StatusEntry } from '../agent/status-file.js';
import type { HandlerContext } from '../infra/context.js';

export interface RunOverview extends StatusEntry {
  readonly runDir?: string;
  readonly journal?: RunJournal;
  readonly stdoutBytes: number;
  readonly stderrBytes: number;
}

const sizeOf = (path: string): Promise<number> => stat(path).then((s) => s.size, () => 0);

// Joins one status entry with its run's journal and output sizes (when the run is the current one).
async function toOverview(context: HandlerContext, entry: StatusEntry): Promise<RunOverview> {
  const current = await context.store.currentRun(entry.name);
  if (current.kind !== 'run' || current.record.seq !== entry.seq) return { ...entry, stdoutBytes: 0, stderrBytes: 0 };
  const { runDir, journal } = current;
  const [stdoutBytes, stderrBytes] = await Promise.all([sizeOf(toRunFilePath(runDir, 'stdout')), sizeOf(toRunFilePath(runDir, 'stderr'))]);
  return { ...entry, runDir, ...(journal.kind === 'present' ? { journal: journal.value } : {}), stdoutBytes, stderrBytes };
}

// Every run command's newest status with its run details, sorted by name.
export async function readRunOverviews(context: HandlerContext): Promise<RunOverview[]> {
  const entries = await readStatusEntries(context.paths.statusFolder);
  return Promise.all(entries.map((entry) => toOverview(context, entry)));
}

// A human size: 0 B, 12.3 KiB, 4.0 MiB.
export function toSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

// Elapsed time against the timeout: `12s/60s [####------]`, or `12s` without a timeout.
export function toElapsed(overview: RunOverview, nowMs: number, width = 10): string {
  const { startTime, endTime } = overview.instanceView;
  if (!startTime) return '';
  const elapsed = Math.max(0, Math.round(((endTime ? Date.parse(endTime) : nowMs) - Date.parse(startTime)) / 1000));
  const timeout = overview.journal?.timeoutInSeconds ?? 0;
  if (timeout <= 0) return `${elapsed}s`;
  const filled = Math.min(width, Math.round((elapsed / timeout) * width));
  return `${elapsed}s/${timeout}s [${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

// Upload state of the output blobs: `-` when the run does not stream, else uploaded/written bytes.
export function toUploadState(overview: RunOverview): string {
  const uploads = overview.journal?.uploads;
  if (uploads === undefined) return '-';
  const parts: string[] = [];
  if (uploads.stdout !== undefined) parts.push(`out ${toSize(uploads.stdout)}/${toSize(overview.stdoutBytes)}`);
  if (uploads.stderr !== undefined) parts.push(`err ${toSize(uploads.stderr)}/${toSize(overview.stderrBytes)}`);
  return parts.join(', ') || '-';
}
