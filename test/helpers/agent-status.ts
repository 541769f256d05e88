// Reads status files and validates them as the agent does (protocol.md §7), then against the
// exact shape Microsoft's Run Command handler writes (run-command.md §6).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { AgentLayout } from './agent-layout.js';

export const STATUS_VALUES = ['transitioning', 'success', 'error', 'warning'] as const;
export type StatusValue = (typeof STATUS_VALUES)[number];
export const EXECUTION_STATES = ['Pending', 'Running', 'Succeeded', 'Failed', 'TimedOut', 'Canceled', 'Unknown'] as const;
export type ExecutionState = (typeof EXECUTION_STATES)[number];

const TOP_KEYS = ['version', 'timestampUTC', 'status'];
const STATUS_KEYS = ['name', 'operation', 'status', 'formattedMessage'];
const INSTANCE_VIEW_KEYS = ['executionState', 'executionMessage', 'output', 'error', 'exitCode', 'startTime', 'endTime'];
// The agent truncates messages of larger files (its _MAX_STATUS_FILE_SIZE_IN_BYTES).
const MAX_STATUS_BYTES = 128 * 1024;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

export interface TopStatus {
  version: 1;
  timestampUTC: string;
  status: { name: string; operation: 'Enable'; status: StatusValue; formattedMessage: { lang: string; message: string } };
}

export interface InstanceView {
  executionState: ExecutionState;
  executionMessage: string;
  output: string;
  error: string;
  exitCode: number;
  startTime: string;
  endTime: string;
}

export interface StatusReport {
  readonly topStatus: TopStatus;
  readonly instanceView: InstanceView;
}

export class InvalidStatusError extends Error {
  override name = 'InvalidStatusError';
}

function check(condition: unknown, where: string, problem: string): asserts condition {
  if (!condition) throw new InvalidStatusError(`${where}: ${problem}`);
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function checkStatusValue(value: unknown, where: string, node: string): void {
  check(STATUS_VALUES.includes(value as StatusValue), where, `${node} must be one of ${STATUS_VALUES.join('|')}, got ${JSON.stringify(value)}`);
}

function checkFormattedMessage(value: unknown, where: string, node: string): void {
  if (value === undefined || value === null) return;
  check(isObject(value) && 'lang' in value && 'message' in value, where, `${node} needs lang and message`);
}

// The agent's own checks: what makes it report error 1012 or truncate.
function parseAsAgent(bytes: Buffer, where: string): Record<string, unknown> {
  check(bytes.length < MAX_STATUS_BYTES, where, `${bytes.length} bytes, the limit is ${MAX_STATUS_BYTES}`);
  check(!(bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf), where, 'starts with a UTF-8 BOM');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new InvalidStatusError(`${where}: not valid UTF-8`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new InvalidStatusError(`${where}: invalid JSON (${(error as Error).message}): ${text.slice(0, 300)}`);
  }
  check(Array.isArray(data) && data.length > 0, where, 'must be a non-empty JSON array');
  const top: unknown = data[0];
  check(isObject(top) && isObject(top.status), where, '[0].status must be an object');
  checkStatusValue(top.status.status, where, '[0].status.status');
  checkFormattedMessage(top.status.formattedMessage, where, '[0].status.formattedMessage');
  const substatus = top.status.substatus ?? [];
  check(Array.isArray(substatus), where, '[0].status.substatus must be an array');
  for (const item of substatus) {
    if (item === null) continue;
    check(isObject(item), where, 'a substatus must be an object');
    checkStatusValue(item.status, where, 'substatus.status');
    checkFormattedMessage(item.formattedMessage, where, 'substatus.formattedMessage');
  }
  return top;
}

function checkKeys(value: Record<string, unknown>, expected: readonly string[], where: string, node: string): void {
  const keys = Object.keys(value);
  check(keys.join(',') === expected.join(','), where, `${node} keys must be exactly ${expected.join(', ')} in this order, got ${keys.join(', ')}`);
}

// Our shape: Microsoft's handler's exactly (protocol.md §7).
function toTopStatus(top: Record<string, unknown>, name: string, where: string): TopStatus {
  checkKeys(top, TOP_KEYS, where, '[0]');
  check(top.version === 1, where, `version must be 1, got ${JSON.stringify(top.version)}`);
  check(typeof top.timestampUTC === 'string' && TIMESTAMP.test(top.timestampUTC), where, `bad timestampUTC ${JSON.stringify(top.timestampUTC)}`);
  const status = top.status as Record<string, unknown>;
  checkKeys(status, STATUS_KEYS, where, '[0].status');
  check(status.name === name, where, `status.name must be ${name}, got ${JSON.stringify(status.name)}`);
  check(status.operation === 'Enable', where, `status.operation must be Enable, got ${JSON.stringify(status.operation)}`);
  const message = status.formattedMessage as Record<string, unknown>;
  check(message.lang === 'en' && typeof message.message === 'string', where, 'formattedMessage must be {lang: "en", message: string}');
  return top as unknown as TopStatus;
}

function toInstanceView(message: string, where: string): InstanceView {
  let view: unknown;
  try {
    view = JSON.parse(message);
  } catch {
    throw new InvalidStatusError(`${where}: formattedMessage.message is not JSON: ${message.slice(0, 300)}`);
  }
  check(isObject(view), where, 'the instance view must be an object');
  checkKeys(view, INSTANCE_VIEW_KEYS, where, 'instance view');
  check(EXECUTION_STATES.includes(view.executionState as ExecutionState), where, `bad executionState ${JSON.stringify(view.executionState)}`);
  for (const key of ['executionMessage', 'output', 'error'] as const) {
    check(typeof view[key] === 'string', where, `instance view ${key} must be a string`);
  }
  check(Number.isInteger(view.exitCode), where, `exitCode must be an integer, got ${JSON.stringify(view.exitCode)}`);
  for (const key of ['startTime', 'endTime'] as const) {
    const time = view[key];
    check(time === '' || (typeof time === 'string' && TIMESTAMP.test(time)), where, `bad ${key} ${JSON.stringify(time)}`);
  }
  return view as unknown as InstanceView;
}

// Validates status file bytes for run command `name`; throws InvalidStatusError saying what is wrong.
export function validateStatus(bytes: Buffer, name: string, where = 'status file'): StatusReport {
  const topStatus = toTopStatus(parseAsAgent(bytes, where), name, where);
  return { topStatus, instanceView: toInstanceView(topStatus.status.formattedMessage.message, where) };
}

// Path of a run command's status file: `<name>.<seq>.status`, or `<seq>.status` for the single
// configuration (name '', which is also what its status reports as `name`).
export function toStatusPath(layout: Pick<AgentLayout, 'statusFolder'>, name: string, seq: number): string {
  return path.join(layout.statusFolder, name === '' ? `${seq}.status` : `${name}.${seq}.status`);
}

// Reads and validates `status/<name>.<seq>.status` (`status/<seq>.status`); undefined when there is none.
export async function readStatus(layout: Pick<AgentLayout, 'statusFolder'>, name: string, seq: number): Promise<StatusReport | undefined> {
  const file = toStatusPath(layout, name, seq);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return validateStatus(bytes, name, file);
}

// Polls every 50 ms until `predicate` holds on a valid status; an invalid one fails at once.
// True for a status whose run has ended (the predicate most waits use).
export function isTerminalReport(report: StatusReport): boolean {
  return ['Succeeded', 'Failed', 'TimedOut', 'Canceled'].includes(report.instanceView.executionState);
}

export async function waitForStatus(
  layout: AgentLayout,
  name: string,
  seq: number,
  predicate: (report: StatusReport) => boolean,
  timeoutMs = 30_000,
): Promise<StatusReport> {
  const deadline = Date.now() + timeoutMs;
  let last: StatusReport | undefined;
  for (;;) {
    last = await readStatus(layout, name, seq);
    if (last && predicate(last)) return last;
    if (Date.now() >= deadline) {
      const seen = last ? JSON.stringify({ status: last.topStatus.status.status, instanceView: last.instanceView }) : 'no status file';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${path.basename(toStatusPath(layout, name, seq))}; last seen: ${seen}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
