// `status [NAME] [--json] [--watch]`: a table of run commands (redrawn live with --watch on a
// terminal), or one run command in full.
import type { HandlerContext } from '../infra/context.js';
import { readRunOverviews, toElapsed, toSize, toUploadState, type RunOverview } from './run-overview.js';
import { toRunFilePath } from '../../runner/run-directory.js';
import { sleep } from '../../util/time.js';

// Control characters a script could use to drive the operator's terminal (C0 but newline and tab,
// DEL, C1: ESC sequences, CSI, OSC, carriage returns that overwrite a line), shown as `\xHH`.
const controlCharacters = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

// `text` with every control character but newline and tab escaped as `\xHH`.
export function escapeControlCharacters(text: string): string {
  return text.replace(controlCharacters, (char) => `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

// JSON with DEL and C1 escaped too (JSON.stringify leaves them raw; C0 it escapes already).
function toSafeJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/[\u007f-\u009f]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

// Lays out rows as fixed-width columns.
export function toTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd()).join('\n');
}

// The table of every run command.
export function toStatusTable(overviews: readonly RunOverview[], nowMs: number): string {
  const rows = [['NAME', 'SEQ', 'STATE', 'EXIT', 'ELAPSED', 'OUTPUT', 'UPLOAD', 'STATUS']];
  for (const overview of overviews) {
    const view = overview.instanceView;
    const exit = ['Pending', 'Running'].includes(view.executionState) ? '' : String(view.exitCode);
    const output = `${toSize(overview.stdoutBytes)} / ${toSize(overview.stderrBytes)}`;
    const row = [overview.name, String(overview.seq), view.executionState, exit, toElapsed(overview, nowMs), output, toUploadState(overview), overview.status];
    rows.push(row.map(escapeControlCharacters));
  }
  return toTable(rows);
}

// One run command in full: instance view, where its files are, upload state.
export function toStatusDetail(overview: RunOverview): string {
  const view = overview.instanceView;
  const lines = [
    `name:              ${overview.name} (sequence number ${overview.seq})`,
    `status:            ${overview.status}`,
    `executionState:    ${view.executionState}`,
    `executionMessage:  ${view.executionMessage}`,
    `exitCode:          ${view.exitCode}`,
    `startTime:         ${view.startTime}`,
    `endTime:           ${view.endTime}`,
    `timeoutInSeconds:  ${overview.journal?.timeoutInSeconds ?? ''}`,
    `run directory:     ${overview.runDir ?? '(unknown)'}`,
    `stdout:            ${overview.runDir ? toRunFilePath(overview.runDir, 'stdout') : ''} (${toSize(overview.stdoutBytes)})`,
    `stderr:            ${overview.runDir ? toRunFilePath(overview.runDir, 'stderr') : ''} (${toSize(overview.stderrBytes)})`,
    `blob upload:       ${toUploadState(overview)}`,
    '--- output (last 4096 bytes) ---',
    view.output,
    '--- error (last 4096 bytes) ---',
    view.error,
  ];
  // Everything here may come from the script (its output, a message quoting it): escaped always,
  // on a terminal or not, so a pipe into `less -R` or a later `cat` is as safe as the terminal.
  return `${escapeControlCharacters(lines.join('\n'))}\n`;
}

async function render(context: HandlerContext, name: string | undefined, json: boolean): Promise<string> {
  const all = await readRunOverviews(context);
  const selected = name === undefined ? all : all.filter((overview) => overview.name === name);
  if (name !== undefined && selected.length === 0) throw new Error(`no status for run command ${name}`);
  if (json) {
    const plain = selected.map(({ name: n, seq, status, instanceView }) => ({ name: n, seq, status, instanceView }));
    return `${toSafeJson(name === undefined ? plain : plain[0])}\n`;
  }
  return name === undefined || selected[0] === undefined ? `${toStatusTable(selected, Date.now())}\n` : toStatusDetail(selected[0]);
}

// Prints the status once, or (`watch`) every second until interrupted: redrawn in place on a
// terminal, appended as plain text otherwise.
export async function runStatus(context: HandlerContext, name: string | undefined, options: { json: boolean; watch: boolean }): Promise<number> {
  const tty = process.stdout.isTTY === true;
  let previous = '';
  do {
    const text = await render(context, name, options.json);
    if (tty && options.watch) process.stdout.write(`\x1b[H\x1b[2J${new Date().toISOString()}  (Ctrl-C to stop)\n${text}`);
    else if (text !== previous) process.stdout.write(options.watch && previous ? `\n${text}` : text);
    previous = text;
    if (options.watch) await sleep(1000);
  } while (options.watch);
  return 0;
}
