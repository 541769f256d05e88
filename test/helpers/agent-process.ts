// How the agent runs a handler command (protocol.md §4): `/bin/sh -c` in a new session, output
// captured to anonymous files, a time limit enforced by SIGKILLing the whole process group, and
// done as soon as the shell exits — whatever it left behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, statSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface AgentProcessRequest {
  readonly commandLine: string;
  // Program and arguments to run instead of `/bin/sh -c commandLine` (another platform's agent).
  readonly argv?: readonly string[];
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  readonly timeLimitMs: number;
}

export interface AgentProcessResult {
  // The shell's exit code; -N when killed by signal N (Python's Popen.returncode, which the agent sees).
  readonly exitCode: number;
  readonly signal: NodeJS.Signals | null;
  // The time limit elapsed and the process group was SIGKILLed.
  readonly timedOut: boolean;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
  // Another process (a daemon) still held the capture files open once the shell had exited.
  readonly captureHeldOpen: boolean;
  // Who held them: process, descriptor number, which capture file.
  readonly captureHolders: readonly CaptureHolder[];
}

export interface CaptureHolder {
  readonly pid: number;
  readonly fd: number;
  readonly capture: 'stdout' | 'stderr';
}

interface CaptureFile {
  readonly fd: number;
  readonly dev: number;
  readonly ino: number;
}

// Like the agent's tempfile.TemporaryFile(dir=base_dir): created in `dir`, unlinked at once.
function openCaptureFile(dir: string): CaptureFile {
  const file = path.join(dir, `.agent-capture-${randomUUID()}`);
  const fd = openSync(file, 'w+');
  unlinkSync(file);
  const { dev, ino } = fstatSync(fd);
  return { fd, dev, ino };
}

function readCaptureFile(capture: CaptureFile): string {
  const size = fstatSync(capture.fd).size;
  const buffer = Buffer.alloc(size);
  let offset = 0;
  while (offset < size) {
    const read = readSync(capture.fd, buffer, offset, size - offset, offset);
    if (read === 0) break;
    offset += read;
  }
  return buffer.subarray(0, offset).toString('utf8');
}

function listOtherPids(): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => pid !== process.pid);
}

// The descriptors other processes have on the capture files (stdout first, then stderr).
export function listCaptureHolders(captures: readonly [CaptureFile, CaptureFile]): CaptureHolder[] {
  const holders: CaptureHolder[] = [];
  for (const pid of listOtherPids()) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const { dev, ino } = statSync(`/proc/${pid}/fd/${fd}`);
        const index = captures.findIndex((capture) => capture.dev === dev && capture.ino === ino);
        if (index >= 0) holders.push({ pid, fd: Number(fd), capture: index === 0 ? 'stdout' : 'stderr' });
      } catch {
        // The process or descriptor went away while we looked.
      }
    }
  }
  return holders;
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // The group is already gone.
  }
}

// Waits for the shell itself only, as the agent polls Popen.poll() on it.
function waitForShell(child: ChildProcess, timeLimitMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, timeLimitMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut });
    });
  });
}

function toExitCode(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return -(signal ? os.constants.signals[signal] : 1);
}

function toCaptureFacts(holders: CaptureHolder[]): Pick<AgentProcessResult, 'captureHeldOpen' | 'captureHolders'> {
  return { captureHeldOpen: holders.length > 0, captureHolders: holders };
}

// Runs one handler command line the way the agent does.
export async function runAgentProcess(request: AgentProcessRequest): Promise<AgentProcessResult> {
  const stdout = openCaptureFile(request.cwd);
  const stderr = openCaptureFile(request.cwd);
  const started = performance.now();
  try {
    const [program, ...args] = request.argv ?? ['/bin/sh', '-c', request.commandLine];
    const child = spawn(program ?? '/bin/sh', args, {
      cwd: request.cwd,
      env: request.env,
      detached: true,
      stdio: ['ignore', stdout.fd, stderr.fd],
    });
    const { code, signal, timedOut } = await waitForShell(child, request.timeLimitMs);
    const durationMs = performance.now() - started;
    return {
      exitCode: toExitCode(code, signal),
      signal,
      timedOut,
      stdout: readCaptureFile(stdout),
      stderr: readCaptureFile(stderr),
      durationMs,
      ...toCaptureFacts(listCaptureHolders([stdout, stderr])),
    };
  } finally {
    closeSync(stdout.fd);
    closeSync(stderr.fd);
  }
}

// SIGKILLs every process whose cwd, executable or command line is under `root`, until none is left.
// `spellings`: other names of root in a command line (Windows programs under Wine show `Z:\...`).
export async function killProcessesUnder(root: string, spellings: readonly string[] = []): Promise<number[]> {
  const killed: number[] = [];
  for (let round = 0; round < 20; round += 1) {
    const found = listOtherPids().filter((pid) => isProcessUnder(pid, root, spellings));
    if (found.length === 0) return killed;
    for (const pid of found) {
      try {
        process.kill(pid, 'SIGKILL');
        killed.push(pid);
      } catch {
        // Already gone.
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return killed;
}

function readLinkOrEmpty(link: string): string {
  try {
    return readlinkSync(link).replace(/ \(deleted\)$/, '');
  } catch {
    return '';
  }
}

function isProcessUnder(pid: number, root: string, spellings: readonly string[]): boolean {
  const under = (target: string): boolean => target === root || target.startsWith(`${root}/`);
  try {
    // A zombie cannot be killed and goes once reaped; waiting on it would never end.
    if (/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))) return false;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return under(readLinkOrEmpty(`/proc/${pid}/cwd`)) || under(readLinkOrEmpty(`/proc/${pid}/exe`)) || [root, ...spellings].some((name) => cmdline.includes(name));
  } catch {
    return false;
  }
}
