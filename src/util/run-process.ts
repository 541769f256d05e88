// Runs a short helper program (openssl) with its input on stdin and collects its output. Plain
// node:child_process: the daemon's hot path and idle footprint are measured (targets.md), and
// loading execa for this one call costs ~15 MB of resident memory.
import { spawn } from 'node:child_process';

export interface ProcessResult {
  // null when the process was killed (or did not start).
  readonly exitCode: number | null;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
  readonly timedOut: boolean;
  // Set when the program could not be started (e.g. ENOENT).
  readonly error?: Error;
}

// Runs `command args` with `input` on stdin; never rejects.
export function runProcess(command: string, args: readonly string[], options: { input: Uint8Array; timeoutMs: number; env?: NodeJS.ProcessEnv }): Promise<ProcessResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? process.env });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    let startError: Error | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.stdin.on('error', () => undefined);
    child.on('error', (error) => (startError = error));
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      resolve({ exitCode, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr), timedOut, ...(startError ? { error: startError } : {}) });
    });
    child.stdin.end(options.input);
  });
}
