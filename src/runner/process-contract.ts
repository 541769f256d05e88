// What every platform's process layer does and the records its wrapper leaves in the run directory
// (run-command.md §4, §8): the platform-neutral contract. The Linux and Windows layers implement it
// side by side (process.linux.ts, process.windows.ts); the readers here are the only code that
// parses process.json and exit-status.json, which both wrappers write in the same shape.
import { readFile } from 'node:fs/promises';
import * as z from '../util/schema.js';
import { runFiles, toRunFilePath } from './run-directory.js';
import { readSmallFile, type Read } from '../util/atomic-file.js';

export interface ScriptLaunch {
  runDir: string;
  program: string;
  args: readonly string[];
  env: Readonly<Record<string, string>>;
  stdoutPath: string;
  stderrPath: string;
  graceMs: number;
  wrapperPath?: string;
  // The script's working directory (RunAs: the user's own); default runDir.
  cwd?: string;
  // Per-stream output cap (issue #6): the wrapper relays stdout and stderr through pipes and keeps
  // the head and the tail of each; unset, the script writes its output files directly.
  maxOutputBytes?: number;
  // The launch's nonce (launch-fence.ts): the wrapper claims rch-launch-<nonce> before it starts the
  // script and starts nothing if the name is taken (both wrappers, rch-exec and rch-exec.exe).
  launchNonce?: string;
}

// The wrappers' --max-output (both platforms): 0 (no relay) when the launch sets no cap.
export function toMaxOutputArg(launch: ScriptLaunch): number {
  const max = launch.maxOutputBytes;
  return max === undefined || !Number.isFinite(max) || max < 1 ? 0 : Math.floor(max);
}

// What the wrapper's relay dropped of the script's output (bytes per stream), and whether the file
// system's reserve stopped it (rather than the cap alone).
export interface OutputTruncation {
  stdoutDropped: number;
  stderrDropped: number;
  lowSpace: boolean;
}

// Who runs the script: the wrapper and the script, each a pid with its start time, so a later
// daemon can tell them from processes that reuse the pids.
export interface ProcessIdentity {
  wrapperPid: number;
  pid: number;
  pgid: number;
  startTime: string;
  wrapperStartTime: string;
}

export type ExitRecord =
  | { kind: 'exited'; exitCode: number; output?: OutputTruncation }
  | { kind: 'signaled'; signal: number; output?: OutputTruncation }
  | { kind: 'exec-failed'; errno: number }
  // The wrapper's record exists but cannot be read: how the script ended is unknown.
  | { kind: 'unreadable'; reason: string };

export interface ScriptHandle {
  identity: ProcessIdentity;
  exited: Promise<ExitRecord>;
}

// Starts, follows and tree-kills scripts; identifies the boot.
export interface ProcessLayer {
  // Starts a script under the platform's wrapper; resolves once the script runs.
  launchScript(launch: ScriptLaunch): Promise<ScriptHandle>;
  // Follows a script started by an earlier daemon.
  attachScript(runDir: string, identity: ProcessIdentity): ScriptHandle;
  // Asks the wrapper to end the whole tree (grace period, then forced); false if it is gone. The
  // run directory is where the Windows wrapper looks for the request (runFiles.terminateRequest);
  // the Linux wrapper is signalled instead and needs only the identity.
  requestTermination(identity: ProcessIdentity, runDir: string): boolean;
  // Forces the whole tree down at once.
  killRunNow(identity: ProcessIdentity): void;
  // This boot: a recorded process can only still exist within the same boot.
  readBootId(): string;
  // True while that very process (pid and start time, so not a later one reusing the pid) runs:
  // a launch's claim names its wrapper so (launch-fence.ts). Absent where claims name none (the
  // Windows wrapper's): a claimed launch is then waited for a bounded time only.
  isProcessAlive?(pid: number, startTime: string): boolean;
}

const pidSchema = z.int().check(z.positive());
const startTimeSchema = z.string().check(z.regex(/^\d+$/));
export const processIdentitySchema = z.object({ wrapperPid: pidSchema, pid: pidSchema, pgid: pidSchema, startTime: startTimeSchema, wrapperStartTime: startTimeSchema });
const outputSchema = z.object({ stdoutDropped: z.int().check(z.nonnegative()), stderrDropped: z.int().check(z.nonnegative()), lowSpace: z.boolean() });
const exitStatusSchema = z.union([
  z.object({ exitCode: z.int(), output: z.optional(outputSchema) }),
  z.object({ signal: z.int(), output: z.optional(outputSchema) }),
  z.object({ execError: z.int() }),
]);

// The wrapper's record of how the script ended: absent while there is none.
export async function readExitRecord(runDir: string): Promise<Read<ExitRecord>> {
  let text: string | undefined;
  try {
    text = readSmallFile(toRunFilePath(runDir, 'exitStatus'));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    text = code === 'ENOENT' ? undefined : `\0${code ?? 'error'}`;
  }
  if (text === undefined) return { kind: 'absent' };
  const parsed = exitStatusSchema.safeParse(parseJson(text));
  if (!parsed.success) return { kind: 'corrupt', reason: text.startsWith('\0') ? `cannot be read (${text.slice(1)})` : 'is not a valid exit record' };
  const value = parsed.data;
  const output = 'output' in value && value.output !== undefined ? { output: value.output } : {};
  if ('exitCode' in value) return { kind: 'present', value: { kind: 'exited', exitCode: value.exitCode, ...output } };
  if ('signal' in value) return { kind: 'present', value: { kind: 'signaled', signal: value.signal, ...output } };
  return { kind: 'present', value: { kind: 'exec-failed', errno: value.execError } };
}

// The exit record as an outcome: a corrupt record is an unreadable outcome, never a guess.
export function toRecordedExit(read: Read<ExitRecord>): ExitRecord | undefined {
  if (read.kind === 'absent') return undefined;
  if (read.kind === 'corrupt') return { kind: 'unreadable', reason: `${runFiles.exitStatus} ${read.reason}` };
  return read.value;
}

// The script's identity as the wrapper recorded it; undefined if absent or unreadable.
export async function readProcessIdentity(runDir: string): Promise<ProcessIdentity | undefined> {
  return parseProcessIdentity(await readFile(toRunFilePath(runDir, 'process'), 'utf8').catch(() => ''));
}

// One identity line as the wrapper writes it; undefined when it is not one.
export function parseProcessIdentity(line: string): ProcessIdentity | undefined {
  const parsed = processIdentitySchema.safeParse(parseJson(line));
  return parsed.success ? parsed.data : undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
