// `status [NAME] [--json]`: a table of run commands, or one run command in full.
import type { HandlerContext } from '../context.js';
import { readStatusEntries, type StatusEntry } from '../status-reader.js';

function toDuration(entry: StatusEntry, nowMs: number): string {
  const { startTime, endTime } = entry.instanceView;
  if (!startTime) return '';
  const end = endTime ? Date.parse(endTime) : nowMs;
  return `${Math.max(0, Math.round((end - Date.parse(startTime)) / 1000))}s`;
}

// Lays out rows as fixed-width columns.
export function toTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd()).join('\n');
}

// Prints the status of every run command (or of NAME); returns the exit code.
export async function runStatus(context: HandlerContext, name: string | undefined, json: boolean): Promise<number> {
  const all = await readStatusEntries(context.paths.statusFolder);
  const entries = name === undefined ? all : all.filter((entry) => entry.name === name);
  if (name !== undefined && entries.length === 0) throw new Error(`no status for run command ${name}`);
  if (json) {
    process.stdout.write(`${JSON.stringify(name === undefined ? entries : entries[0], null, 2)}\n`);
    return 0;
  }
  if (name !== undefined && entries[0]) {
    process.stdout.write(`${JSON.stringify(entries[0], null, 2)}\n`);
    return 0;
  }
  const now = Date.now();
  const rows = [['NAME', 'SEQ', 'STATE', 'EXIT', 'STARTED', 'DURATION', 'STATUS']];
  for (const entry of entries) {
    const view = entry.instanceView;
    rows.push([entry.name, String(entry.seq), view.executionState, String(view.exitCode), view.startTime, toDuration(entry, now), entry.status]);
  }
  process.stdout.write(`${toTable(rows)}\n`);
  return 0;
}
