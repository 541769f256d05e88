// Starts run scripts under the rch-exec wrapper, re-attaches to them after a daemon restart and
// kills them (run-command.md §4 Execution, §8 Restart). The wrapper records the script's identity
// (process.json) and its outcome (exit-status.json) in the run directory, so neither is lost when
// the daemon dies; this module is the only reader of those two files.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, openSync, readFileSync, readdirSync, watch, type FSWatcher } from 'node:fs';
import type { Readable } from 'node:stream';
import { HandlerError, errorCodes } from '../errors.js';
import { join } from 'node:path';
import { packageRoot } from '../util/package-root.js';
import { waitForClaimHolder } from './launch-fence.js';
import { WrapperLauncher } from './launcher.linux.js';
import {
  parseProcessIdentity, readExitRecord, toMaxOutputArg, toRecordedExit, type ExitRecord, type ProcessIdentity, type ProcessLayer, type ScriptHandle, type ScriptLaunch,
} from './process-contract.js';
import { runFiles } from './run-directory.js';

// scripts/build-native.mjs puts it there; the package ships it at the same place.
const defaultWrapperPath = join(packageRoot, 'dist', 'native', 'rch-exec');
// What a run the daemon itself killed (killRunNow) met when its wrapper left no record.
const killedRecord: ExitRecord = { kind: 'signaled', signal: 9 };
// Wrappers killRunNow SIGKILLed (pid:start time): only for them is a missing record a known kill.
const killedByUs = new Set<string>();
const toKey = (pid: number, startTime: string): string => `${pid}:${startTime}`;

// A wrapper gone without a record: a kill only when the daemon killed it; otherwise (OOM killer, an
// operator's kill, a disk too full for the record) how the script ended is unknown — never guessed.
function toMissingRecord(identity: ProcessIdentity, wrapperStatus?: number): ExitRecord {
  if (killedByUs.delete(toKey(identity.wrapperPid, identity.wrapperStartTime))) return killedRecord;
  const how = wrapperStatus === undefined ? '' : describeWaitStatus(wrapperStatus);
  return { kind: 'unreadable', reason: `the script wrapper ended${how} without recording how the script ended (${runFiles.exitStatus} is missing)` };
}

function describeWaitStatus(status: number): string {
  const signal = status & 0x7f;
  if (signal === 0) return ` with exit status ${(status >> 8) & 0xff}`;
  return signal === 0x7f ? '' : ` by signal ${signal}`;
}

const launchers = new Map<string, WrapperLauncher>();

// Starts a script under the wrapper; resolves once the wrapper has reported the script's identity.
// The wrapper is forked by the long-lived launcher; spawned directly if the launcher fails.
export async function launchScript(launch: ScriptLaunch): Promise<ScriptHandle> {
  const wrapperPath = launch.wrapperPath ?? defaultWrapperPath;
  let launcher = launchers.get(wrapperPath);
  if (!launcher) launchers.set(wrapperPath, (launcher = new WrapperLauncher(wrapperPath)));
  const launched = await launcher.launch(launch).catch(() => undefined);
  if (launched === undefined) return spawnDirectly(launch);
  const identity = parseProcessIdentity(await launched.identity.catch(() => ''));
  if (identity === undefined) throw new HandlerError(errorCodes.startExecution, 'The script wrapper did not report the script process');
  const exited = launched.exit.then((status) =>
    // A launcher that went away no longer reaps: follow the run through its files instead.
    status === undefined ? attachScript(launch.runDir, identity).exited : readExitRecord(launch.runDir).then((read) => toRecordedExit(read) ?? toMissingRecord(identity, status)),
  );
  return { identity, exited };
}

// The launcher that failed may have forked this launch's wrapper before it went, its reply lost:
// the two wrappers race for the one claim (same nonce), so exactly one starts the script. When the
// other won (this one exits fenced, unreported), the run follows the claim's holder, as recovery does.
async function spawnDirectly(launch: ScriptLaunch): Promise<ScriptHandle> {
  const child = spawnWrapper(launch);
  let known: ProcessIdentity | undefined;
  const exited = watchWrapper(child, launch.runDir, () => known);
  const identity = (known = await readIdentityFromPipe(child).catch(async (error: unknown) => {
    const holder = launch.launchNonce === undefined ? undefined : await waitForClaimHolder(launch.runDir, launch.launchNonce, isSameProcess);
    if (holder === undefined) throw error;
    return holder;
  }));
  return identity.wrapperPid === child.pid ? { identity, exited } : attachScript(launch.runDir, identity);
}

function spawnWrapper(launch: ScriptLaunch): ChildProcess {
  const flags = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT;
  const fds: number[] = [];
  try {
    fds.push(openSync(launch.stdoutPath, flags, 0o600));
    fds.push(openSync(launch.stderrPath, flags, 0o600));
    const graceMs = String(Math.max(0, Math.round(launch.graceMs)));
    const maxOutput = toMaxOutputArg(launch);
    const cap = maxOutput > 0 ? ['--max-output', String(maxOutput)] : [];
    const nonce = launch.launchNonce === undefined ? [] : ['--launch-nonce', launch.launchNonce];
    const child = spawn(launch.wrapperPath ?? defaultWrapperPath, [...nonce, '--grace-ms', graceMs, ...cap, launch.runDir, launch.program, ...launch.args], {
      cwd: launch.cwd ?? launch.runDir,
      env: { ...launch.env },
      stdio: ['ignore', fds[0], fds[1], 'pipe'],
      detached: true,
    });
    child.unref();
    return child;
  } catch (cause) {
    throw new HandlerError(errorCodes.startExecution, 'Failed to start the script wrapper', { cause });
  } finally {
    // The wrapper has its own copies now; the daemon keeps none.
    for (const fd of fds) closeSync(fd);
  }
}

// The wrapper writes one JSON line on fd 3 once the script runs, then closes it.
function readIdentityFromPipe(child: ChildProcess): Promise<ProcessIdentity> {
  return new Promise((resolve, reject) => {
    const pipe = child.stdio[3] as Readable | null | undefined;
    let text = '';
    const settle = (cause?: unknown): void => {
      child.off('error', settle);
      pipe?.destroy();
      const identity = parseProcessIdentity(text.split('\n')[0] ?? '');
      if (identity !== undefined && cause === undefined) resolve(identity);
      else reject(new HandlerError(errorCodes.startExecution, 'The script wrapper did not report the script process', { cause }));
    };
    child.once('error', settle);
    if (!pipe) return settle(new Error('no pipe on fd 3'));
    pipe.setEncoding('utf8');
    pipe.on('error', () => undefined);
    pipe.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('\n')) settle();
    });
    pipe.once('close', () => settle());
  });
}

function watchWrapper(child: ChildProcess, runDir: string, identity: () => ProcessIdentity | undefined): Promise<ExitRecord> {
  const missing = (): ExitRecord => {
    const known = identity();
    return known === undefined ? { kind: 'unreadable', reason: 'the script wrapper ended before it reported the script' } : toMissingRecord(known);
  };
  return new Promise((resolve) => {
    child.on('error', () => {
      if (child.pid === undefined) resolve(missing());
    });
    child.once('exit', () => {
      void readExitRecord(runDir).then((read) => resolve(toRecordedExit(read) ?? missing()));
    });
  });
}

// Follows a script started by an earlier daemon: its wrapper is not our child, so watch the files.
export function attachScript(runDir: string, identity: ProcessIdentity, options: { pollMs?: number } = {}): ScriptHandle {
  const exited = new Promise<ExitRecord>((resolve) => {
    let watcher: FSWatcher | undefined;
    let settled = false;
    const finish = (record: ExitRecord): void => {
      if (settled) return;
      settled = true;
      watcher?.close();
      clearInterval(timer);
      resolve(record);
    };
    const check = async (): Promise<void> => {
      // Liveness first: a wrapper gone *before* the read without a record never wrote one.
      const wrapperGone = !isSameProcess(identity.wrapperPid, identity.wrapperStartTime);
      const record = toRecordedExit(await readExitRecord(runDir));
      if (record !== undefined) finish(record);
      else if (wrapperGone) finish(toMissingRecord(identity));
    };
    const timer = setInterval(() => void check(), options.pollMs ?? 1000);
    try {
      watcher = watch(runDir, (_event, name) => {
        if (name === null || name === runFiles.exitStatus) void check();
      });
      watcher.on('error', () => watcher?.close());
    } catch {
      // The poll alone still gets there.
    }
    void check();
  });
  return { identity, exited };
}

// Asks the wrapper to terminate the run (SIGTERM to the tree, SIGKILL after grace); false if it is gone.
export function requestTermination(identity: ProcessIdentity): boolean {
  if (!isSameProcess(identity.wrapperPid, identity.wrapperStartTime)) return false;
  return sendSignal(identity.wrapperPid, 'SIGUSR1');
}

// Last resort: SIGKILL the script's group, everything in its wrapper's session or re-parented to
// the wrapper, then the wrapper itself.
export function killRunNow(identity: ProcessIdentity): void {
  // A pid whose start time still matches (even as a zombie) is held, so its group id is ours.
  if (readProcessStartTime(identity.pid) === identity.startTime) sendSignal(-identity.pgid, 'SIGKILL');
  if (readProcessStartTime(identity.wrapperPid) !== identity.wrapperStartTime) return;
  // Each death re-parents the victim's children (setsid escapees too) to the wrapper, so scan again
  // until a pass finds nothing alive; bounded in case something is stuck in the kernel.
  let passes = 0;
  while (killWrapperDescendants(identity.wrapperPid) > 0 && ++passes < 200);
  if (sendSignal(identity.wrapperPid, 'SIGKILL')) killedByUs.add(toKey(identity.wrapperPid, identity.wrapperStartTime));
}

// SIGKILLs the live processes in the wrapper's session or parented by it; returns how many.
function killWrapperDescendants(wrapperPid: number): number {
  const wrapper = String(wrapperPid);
  let alive = 0;
  for (const pid of listProcesses()) {
    const fields = readStatFields(pid);
    if (pid === wrapperPid || fields === undefined || fields[0] === 'Z' || fields[0] === 'X') continue;
    // fields[1] = ppid, fields[3] = session (proc(5) fields 4 and 6); the wrapper leads its session.
    if (fields[1] === wrapper || fields[3] === wrapper) alive += sendSignal(pid, 'SIGKILL') ? 1 : 0;
  }
  return alive;
}

// Tells a process apart from a later one that reuses its pid (proc(5) field 22, clock ticks since boot).
export function readProcessStartTime(pid: number): string | undefined {
  return readStatFields(pid)?.[19];
}

// True while pid is still the very process that started at startTime (and has not exited).
export function isSameProcess(pid: number, startTime: string): boolean {
  const fields = readStatFields(pid);
  return fields !== undefined && fields[19] === startTime && fields[0] !== 'Z' && fields[0] !== 'X';
}

// Identifies the boot, so a restarted daemon knows whether recorded processes can still exist.
export function readBootId(): string {
  return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
}

// Fields of /proc/<pid>/stat from field 3 (state) on, split after the last ')' since the command
// name may hold spaces and parentheses: index i is proc(5) field i + 3.
function readStatFields(pid: number): string[] | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 1).trim().split(/\s+/);
  } catch {
    return undefined;
  }
}

function listProcesses(): number[] {
  return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number);
}

function sendSignal(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

// The Linux process layer: rch-exec wrappers forked by the long-lived launcher.
export const linuxProcessLayer: ProcessLayer = { launchScript, attachScript, requestTermination, killRunNow, readBootId, isProcessAlive: isSameProcess };
