// The process layer on Windows (run-command.md §4): a script starts hidden and detached, with its
// output in the run's files; a timeout or cancel asks its whole tree to close with `taskkill /T`,
// then forces it with `taskkill /T /F` after the grace period. Windows has no rch-exec wrapper: the
// daemon records the exit code in the same exit-status.json, so a script that ends while no daemon
// watches it is reported as killed (−1).
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { closeSync, constants, openSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { uptime } from 'node:os';
import { errorCodes, HandlerError } from '../errors.js';
import { readExitRecord, toRecordedExit, type ExitRecord, type ProcessIdentity, type ProcessLayer, type ScriptHandle, type ScriptLaunch } from './process-contract.js';
import { toRunFilePath } from './run-directory.js';

export type Spawn = (program: string, args: readonly string[], options: SpawnOptions) => ChildProcess;
// Runs taskkill with these arguments (tests record them instead).
export type RunTaskkill = (args: readonly string[]) => void;

const killedRecord: ExitRecord = { kind: 'signaled', signal: 9 };
const graceByPid = new Map<number, number>();

// taskkill's arguments for the tree rooted at `pid`: /T the tree, /F without asking.
export function toTaskkillArgs(pid: number, force: boolean): string[] {
  return ['/PID', String(pid), '/T', ...(force ? ['/F'] : [])];
}

const runTaskkill: RunTaskkill = (args) => {
  spawnSync('taskkill.exe', args, { stdio: 'ignore', windowsHide: true, timeout: 30_000 });
};

function watchExit(child: ChildProcess, runDir: string): Promise<ExitRecord> {
  return new Promise<ExitRecord>((resolve) => {
    child.once('exit', (code) => {
      graceByPid.delete(child.pid ?? 0);
      writeFileSync(toRunFilePath(runDir, 'exitStatus'), JSON.stringify(code === null ? { signal: 9 } : { exitCode: code }));
      resolve(code === null ? killedRecord : { kind: 'exited', exitCode: code });
    });
  });
}

// Starts a script hidden, in its own process group; resolves once it runs.
export async function launchScript(launch: ScriptLaunch, spawnProcess: Spawn = spawn): Promise<ScriptHandle> {
  const flags = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT;
  const fds = [openSync(launch.stdoutPath, flags, 0o600), openSync(launch.stderrPath, flags, 0o600)];
  let child: ChildProcess;
  let exited: Promise<ExitRecord>;
  try {
    child = spawnProcess(launch.program, launch.args, {
      cwd: launch.cwd ?? launch.runDir,
      env: { ...launch.env },
      stdio: ['ignore', fds[0], fds[1]],
      detached: true,
      windowsHide: true,
    });
    // Watched at once: a short script may be gone before the next line runs.
    exited = watchExit(child, launch.runDir);
    await new Promise<void>((resolve, reject) => child.once('spawn', resolve).once('error', reject));
  } catch (cause) {
    throw new HandlerError(errorCodes.startExecution, `could not start ${launch.program}`, { cause });
  } finally {
    for (const fd of fds) closeSync(fd);
  }
  child.unref();
  const pid = child.pid ?? 0;
  const startTime = String(Date.now());
  const identity: ProcessIdentity = { wrapperPid: pid, pid, pgid: pid, startTime, wrapperStartTime: startTime };
  if (child.exitCode === null && child.signalCode === null) graceByPid.set(pid, launch.graceMs);
  await writeFile(toRunFilePath(launch.runDir, 'process'), JSON.stringify(identity));
  return { identity, exited };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// Follows a script started by an earlier daemon by polling its exit record and its pid.
export function attachScript(runDir: string, identity: ProcessIdentity, options: { pollMs?: number } = {}): ScriptHandle {
  const exited = new Promise<ExitRecord>((resolve) => {
    const check = async (): Promise<void> => {
      const gone = !isAlive(identity.pid);
      const record = toRecordedExit(await readExitRecord(runDir));
      if (record === undefined && !gone) return;
      clearInterval(timer);
      resolve(record ?? killedRecord);
    };
    const timer = setInterval(() => void check(), options.pollMs ?? 1000);
    void check();
  });
  return { identity, exited };
}

// Asks the tree to close, then forces it after the launch's grace period; false if it is gone.
export function requestTermination(identity: ProcessIdentity, run: RunTaskkill = runTaskkill): boolean {
  if (!isAlive(identity.pid)) return false;
  run(toTaskkillArgs(identity.pid, false));
  const grace = graceByPid.get(identity.pid) ?? 5000;
  setTimeout(() => run(toTaskkillArgs(identity.pid, true)), grace).unref();
  return true;
}

// Forces the whole tree down at once.
export function killRunNow(identity: ProcessIdentity, run: RunTaskkill = runTaskkill): void {
  run(toTaskkillArgs(identity.pid, true));
}

// This boot, as the minute-rounded boot time (Windows has no boot id file).
export function readBootId(nowMs: number = Date.now(), uptimeSeconds: number = uptime()): string {
  return `boot-${Math.round((nowMs / 1000 - uptimeSeconds) / 60)}`;
}

// The Windows process layer: hidden detached processes, taskkill for the tree.
export const windowsProcessLayer: ProcessLayer = { launchScript: (launch) => launchScript(launch), attachScript, requestTermination: (identity) => requestTermination(identity), killRunNow: (identity) => killRunNow(identity), readBootId: () => readBootId() };
