// The process layer on Windows (run-command.md §4, §8): every script runs under rch-exec.exe
// (docs/windows-wrapper.md), which confines its whole tree to a Job Object with KILL_ON_JOB_CLOSE,
// writes the script's stdout/stderr to the run's files, records its identity (process.json) and its
// outcome (exit-status.json) in the run directory, and ends the tree on <run-dir>\terminate-request.
// So Windows has what Linux has: the outcome survives the daemon, and a later daemon re-attaches
// through the same files. Platform-neutral imports only: tests load it on Linux, and under Wine.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { watch, writeFileSync, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { uptime } from 'node:os';
import { join } from 'node:path';
import { errorCodes, HandlerError } from '../errors.js';
import { packageRoot } from '../util/package-root.js';
import {
  parseProcessIdentity, readExitRecord, toMaxOutputArg, toRecordedExit, type ExitRecord, type ProcessIdentity, type ProcessLayer, type ScriptHandle, type ScriptLaunch,
} from './process-contract.js';
import { runFiles, toRunFilePath } from './run-directory.js';

// scripts/build-native.mjs puts it there; the Windows package ships it at the same place.
export const defaultWrapperPath = join(packageRoot, 'dist', 'native', 'rch-exec.exe');
// What a wrapper that vanished without a record (TerminateProcess, killRunNow) most likely met.
const killedRecord: ExitRecord = { kind: 'signaled', signal: 9 };
// The wrapper each launched run uses, so probes and kills use the same binary (tests inject one).
const wrapperByPid = new Map<number, string>();

export interface FollowOptions {
  pollMs?: number;
  wrapperPath?: string;
}

// Starts `rch-exec.exe --grace-ms N [--max-output BYTES] <runDir> <program> [args…]` detached and
// hidden; resolves once the wrapper has written process.json. The wrapper opens <runDir>\stdout and
// \stderr itself (the run's stdoutPath/stderrPath are those files; with a cap it relays the script's
// pipes into them, keeping head and tail as on Linux): node must pass no fds, or libuv drops
// CREATE_NO_WINDOW and console hosts (pwsh) die without a console (windows-under-wine.md §1).
export async function launchScript(launch: ScriptLaunch, options: { pollMs?: number } = {}): Promise<ScriptHandle> {
  const wrapperPath = launch.wrapperPath ?? defaultWrapperPath;
  const graceMs = String(Math.max(0, Math.round(launch.graceMs)));
  const maxOutput = toMaxOutputArg(launch);
  const cap = maxOutput > 0 ? ['--max-output', String(maxOutput)] : [];
  let child: ChildProcess;
  let gone: Promise<void>;
  try {
    const nonce = launch.launchNonce === undefined ? [] : ['--launch-nonce', launch.launchNonce];
    child = spawn(wrapperPath, [...nonce, '--grace-ms', graceMs, ...cap, launch.runDir, launch.program, ...launch.args], {
      cwd: launch.cwd ?? launch.runDir,
      env: { ...launch.env },
      stdio: 'ignore',
      detached: true,
      windowsHide: true,
    });
    gone = new Promise((resolve) => child.once('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => child.once('spawn', resolve).once('error', reject));
  } catch (cause) {
    throw new HandlerError(errorCodes.startExecution, 'Failed to start the script wrapper', { cause });
  }
  // The wrapper outlives this daemon; only the files tell how the run goes from here on.
  child.unref();
  let wrapperExited = false;
  void gone.then(() => (wrapperExited = true));
  const identity = await follow(launch.runDir, runFiles.process, options.pollMs ?? 250, gone, async () => {
    // process.json first: a short script may be over, and its wrapper gone, by the time we look.
    const found = parseProcessIdentity(await readFile(toRunFilePath(launch.runDir, 'process'), 'utf8').catch(() => ''));
    if (found !== undefined) return found;
    if (!wrapperExited) return undefined;
    const record = toRecordedExit(await readExitRecord(launch.runDir));
    const why = record?.kind === 'exec-failed' ? `Windows error ${record.errno}` : 'the script wrapper ended without reporting the script process';
    throw new HandlerError(errorCodes.startExecution, `could not start the script (${why})`);
  });
  wrapperByPid.set(identity.wrapperPid, wrapperPath);
  return { identity, exited: attachScript(launch.runDir, identity, { ...options, wrapperPath }).exited };
}

// Follows a script through exit-status.json, whoever started its wrapper: for the daemon that
// launched it and for a later one alike. A wrapper gone without a record was killed.
export function attachScript(runDir: string, identity: ProcessIdentity, options: FollowOptions = {}): ScriptHandle {
  const wrapperPath = options.wrapperPath ?? wrapperByPid.get(identity.wrapperPid) ?? defaultWrapperPath;
  // A probe is a process start: once it has confirmed the wrapper, plain liveness does for a while;
  // a pid reused within that while delays the verdict by at most reprobeMs, never forever.
  const reprobeMs = 30_000;
  let confirmedAt = -Infinity;
  const exited = follow(runDir, runFiles.exitStatus, options.pollMs ?? 1000, undefined, async () => {
    // Liveness first: a wrapper gone *before* the read without a record never wrote one.
    let wrapperGone = !isAlive(identity.wrapperPid);
    if (!wrapperGone && Date.now() - confirmedAt > reprobeMs) {
      wrapperGone = !(await isSameProcess(identity.wrapperPid, identity.wrapperStartTime, wrapperPath));
      if (!wrapperGone) confirmedAt = Date.now();
    }
    const record = toRecordedExit(await readExitRecord(runDir));
    if (record !== undefined || wrapperGone) wrapperByPid.delete(identity.wrapperPid);
    return record ?? (wrapperGone ? killedRecord : undefined);
  });
  return { identity, exited };
}

// Runs `check` when `file` in `dir` changes, every pollMs, and once `wake` settles, until it gives a
// value (or throws). The poll is the safety net: fs.watch may miss events or be unavailable.
function follow<T>(dir: string, file: string, pollMs: number, wake: Promise<void> | undefined, check: () => Promise<T | undefined>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let watcher: FSWatcher | undefined;
    let settled = false;
    let running: Promise<void> | undefined;
    let again = false;
    const settle = (finish: () => void): void => {
      if (settled) return;
      settled = true;
      watcher?.close();
      clearInterval(timer);
      finish();
    };
    // One check at a time (a probe may spawn a process); a wake-up meanwhile runs one more after it.
    const run = (): void => {
      if (settled) return;
      if (running) return void (again = true);
      running = check().then(
        (value) => (value === undefined ? undefined : settle(() => resolve(value))),
        (error: unknown) => settle(() => reject(error instanceof Error ? error : new Error(String(error)))),
      ).finally(() => {
        running = undefined;
        if (!again) return;
        again = false;
        run();
      });
    };
    const timer = setInterval(run, pollMs);
    try {
      watcher = watch(dir, (_event, name) => {
        if (name === null || name === file) run();
      });
      watcher.on('error', () => watcher?.close());
    } catch {
      // The poll alone still gets there.
    }
    void wake?.then(run);
    run();
  });
}

// Asks the wrapper to end the run by creating <runDir>\terminate-request: it sends CTRL_BREAK to the
// script's group, waits the grace period, then terminates the job. False if the wrapper is gone.
export function requestTermination(identity: ProcessIdentity, runDir: string): boolean {
  if (!isSameProcessSync(identity.wrapperPid, identity.wrapperStartTime)) return false;
  try {
    writeFileSync(toRunFilePath(runDir, 'terminateRequest'), `${new Date().toISOString()}\n`);
    return true;
  } catch {
    return false;
  }
}

// Last resort: terminates the wrapper (TerminateProcess); the system then closes its job handle and
// KILL_ON_JOB_CLOSE takes the whole tree down. No exit-status.json is written: followers see a kill.
export function killRunNow(identity: ProcessIdentity): void {
  if (!isSameProcessSync(identity.wrapperPid, identity.wrapperStartTime)) return;
  try {
    process.kill(identity.wrapperPid, 'SIGKILL');
  } catch {
    // already gone
  }
}

// Identity check: node on Windows cannot read a process's creation time, and process.kill(pid, 0)
// only says whether *some* process has that pid, maybe a later one reusing it. The wrapper answers
// instead: `rch-exec.exe --probe <pid> <creationTime>` exits 0 while that very process runs, 1
// otherwise. Any other answer (no wrapper binary, a wrapper without --probe) falls back to plain
// liveness, which can mistake a reused pid for the wrapper: then a kill may hit a stranger, so
// killRunNow and requestTermination are only as safe as the probe.
export function isSameProcessSync(pid: number, creationTime: string, wrapperPath = wrapperByPid.get(pid) ?? defaultWrapperPath): boolean {
  if (!isAlive(pid)) return false;
  const probe = spawnSync(wrapperPath, ['--probe', String(pid), creationTime], { stdio: 'ignore', windowsHide: true, timeout: 15_000 });
  return interpretProbe(probe.error === undefined ? probe.status : null, pid);
}

export async function isSameProcess(pid: number, creationTime: string, wrapperPath = wrapperByPid.get(pid) ?? defaultWrapperPath): Promise<boolean> {
  if (!isAlive(pid)) return false;
  const status = await new Promise<number | null>((resolve) => {
    const child = spawn(wrapperPath, ['--probe', String(pid), creationTime], { stdio: 'ignore', windowsHide: true });
    child.once('error', () => resolve(null));
    child.once('exit', (code) => resolve(code));
  });
  return interpretProbe(status, pid);
}

function interpretProbe(status: number | null, pid: number): boolean {
  if (status === 0) return true;
  if (status === 1) return false;
  return isAlive(pid);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// This boot, as the boot time rounded to the minute (Windows has no boot id file). Good enough for
// its one use, telling whether recorded processes may still exist: two boots less than a minute
// apart are not told apart (a reboot takes longer than that), and clock adjustments smaller than
// half a minute do not change it. Weak spots, left as they are: a boot time that falls near a
// half-minute boundary can round either way as the clock and the uptime counter drift apart, and a
// clock step larger than that (NTP at startup) makes one boot look like two; either way the daemon
// then takes its running scripts for gone and reports them killed while their wrappers still run
// (and still write exit-status.json). Exact sources (the event log's boot record, the registry)
// would need a helper process too.
export function readBootId(nowMs: number = Date.now(), uptimeSeconds: number = uptime()): string {
  return `boot-${Math.round((nowMs / 1000 - uptimeSeconds) / 60)}`;
}

// The Windows process layer: rch-exec.exe wrappers, followed through the run directory's files.
export const windowsProcessLayer: ProcessLayer = {
  launchScript: (launch) => launchScript(launch),
  attachScript: (runDir, identity) => attachScript(runDir, identity),
  requestTermination,
  killRunNow,
  readBootId: () => readBootId(),
};
