// The client of `rch-exec --launcher`: one long-lived helper forks each run's wrapper, so the daemon
// (a large process whose every fork copies its page tables, ≈ 2 ms at 100 MB) never forks per run
// (targets.md: dispatch latency, burst, spawn overhead). Requests carry the run's environment over
// a pipe to our own child: never an argv, never the daemon's environment.
import { spawn, type ChildProcess } from 'node:child_process';
import { markStep } from '../util/dispatch-profile.js';
import { toMaxOutputArg, type ScriptLaunch } from './process-contract.js';

export interface LaunchedWrapper {
  readonly wrapperPid: number;
  // The wrapper's identity line (process.json's content), sent once the script runs.
  readonly identity: Promise<string>;
  // The wrapper's raw wait status; undefined when the launcher went away before reaping it.
  readonly exit: Promise<number | undefined>;
}

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

// Encodes a launch request: native (little-endian) u32 length, then NUL-terminated fields, the
// launch nonce last ('' for none).
export function toLaunchRequest(id: string, launch: ScriptLaunch): Buffer {
  const env = Object.entries(launch.env).map(([key, value]) => `${key}=${value}`);
  const argv = [launch.program, ...launch.args];
  const fields = [id, String(Math.max(0, Math.round(launch.graceMs))), String(toMaxOutputArg(launch)), launch.runDir, launch.cwd ?? launch.runDir, launch.stdoutPath, launch.stderrPath,
    String(argv.length), ...argv, String(env.length), ...env, launch.launchNonce ?? ''];
  const payload = Buffer.from(fields.map((field) => `${field}\0`).join(''), 'utf8');
  const header = Buffer.alloc(4);
  header.writeUInt32LE(payload.length);
  return Buffer.concat([header, payload]);
}

export class WrapperLauncher {
  readonly #wrapperPath: string;
  #child: ChildProcess | undefined;
  #buffer = '';
  #nextId = 0;
  readonly #started = new Map<string, Waiter<number>>();
  readonly #identities = new Map<number, string>();
  readonly #identityWaiters = new Map<number, Waiter<string> & { child: ChildProcess | undefined }>();
  readonly #exits = new Map<number, number | undefined>();
  readonly #exitWaiters = new Map<number, (status: number | undefined) => void>();

  constructor(wrapperPath: string) {
    this.#wrapperPath = wrapperPath;
  }

  // Forks a wrapper for `launch`; rejects when the launcher cannot (the caller falls back).
  async launch(launch: ScriptLaunch): Promise<LaunchedWrapper> {
    const child = this.#ensureChild();
    const id = String((this.#nextId += 1));
    const wrapperPid = await new Promise<number>((resolve, reject) => {
      this.#started.set(id, { resolve, reject });
      this.#updateRef();
      child.stdin?.write(toLaunchRequest(id, launch), (error) => {
        if (error) this.#settleStart(id, error);
      });
    });
    const identity = this.#waitIdentity(wrapperPid);
    this.#updateRef();
    void identity.catch(() => undefined).finally(() => this.#updateRef());
    return { wrapperPid, identity, exit: this.#waitExit(wrapperPid) };
  }

  #ensureChild(): ChildProcess {
    if (this.#child) return this.#child;
    const child = spawn(this.#wrapperPath, ['--launcher'], { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
    this.#child = child;
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => this.#onData(chunk));
    child.stdout?.on('close', () => this.#onOutputClosed(child));
    child.on('error', (error) => this.#onGone(child, error));
    child.on('exit', () => this.#onGone(child, new Error('the launcher exited')));
    child.stdin?.on('error', () => undefined);
    return child;
  }

  // The launcher keeps the process alive only while a launch waits for it, never when idle.
  #updateRef(): void {
    const child = this.#child;
    if (!child) return;
    const busy = this.#started.size > 0 || this.#identityWaiters.size > 0;
    for (const handle of [child, child.stdin, child.stdout] as unknown as ({ ref?: () => void; unref?: () => void } | null)[]) {
      if (busy) handle?.ref?.();
      else handle?.unref?.();
    }
  }

  #onData(chunk: string): void {
    this.#buffer += chunk;
    let newline: number;
    while ((newline = this.#buffer.indexOf('\n')) >= 0) {
      const line = this.#buffer.slice(0, newline);
      this.#buffer = this.#buffer.slice(newline + 1);
      this.#onLine(line);
    }
  }

  #onLine(line: string): void {
    if (line.startsWith('{')) {
      const wrapperPid = Number(/"wrapperPid":(\d+)/.exec(line)?.[1]);
      const waiter = this.#identityWaiters.get(wrapperPid);
      if (waiter) {
        this.#identityWaiters.delete(wrapperPid);
        waiter.resolve(line);
      } else {
        this.#identities.set(wrapperPid, line);
      }
      return;
    }
    const [kind, first = '', second = ''] = line.split(' ');
    if (kind === 'S') this.#settleStart(first, undefined, Number(second));
    else if (kind === 'F') this.#settleStart(first, new Error(`the launcher could not fork (errno ${second})`));
    else if (kind === 'X') this.#onReaped(Number(first), Number(second));
    // The bench's dispatch profile (RCH_DISPATCH_PROFILE): "T <wrapper pid> <step> <epoch µs>".
    else if (kind === 'T') markStep(`wrapper:${first}`, second, Number(line.split(' ')[3]) / 1000);
  }

  // A wrapper reaped before it reported the script (it could not set up, or its launch was fenced)
  // never will: its launch fails rather than waiting forever. (Its identity line, written before
  // it exited, comes before this reply on the same pipe.)
  #onReaped(pid: number, status: number): void {
    const identityWaiter = this.#identityWaiters.get(pid);
    if (identityWaiter) {
      this.#identityWaiters.delete(pid);
      identityWaiter.reject(new Error(`the script wrapper ended (wait status ${status}) before it reported the script`));
      this.#updateRef();
    }
    this.#settleExit(pid, status);
  }

  #settleStart(id: string, error: Error | undefined, pid?: number): void {
    const waiter = this.#started.get(id);
    if (!waiter) return;
    this.#started.delete(id);
    if (error || pid === undefined) waiter.reject(error ?? new Error('no pid'));
    else waiter.resolve(pid);
    this.#updateRef();
  }

  #settleExit(pid: number, status: number | undefined): void {
    const waiter = this.#exitWaiters.get(pid);
    if (waiter) {
      this.#exitWaiters.delete(pid);
      waiter(status);
    } else {
      this.#exits.set(pid, status);
    }
  }

  #waitIdentity(wrapperPid: number): Promise<string> {
    const early = this.#identities.get(wrapperPid);
    this.#identities.delete(wrapperPid);
    if (early !== undefined) return Promise.resolve(early);
    // Reaped already (its reply came with the fork's), without an identity line before it.
    if (this.#exits.has(wrapperPid)) return Promise.reject(new Error(`the script wrapper ended (wait status ${this.#exits.get(wrapperPid)}) before it reported the script`));
    const child = this.#child;
    return new Promise((resolve, reject) => this.#identityWaiters.set(wrapperPid, { resolve, reject, child }));
  }

  #waitExit(wrapperPid: number): Promise<number | undefined> {
    if (this.#exits.has(wrapperPid)) {
      const status = this.#exits.get(wrapperPid);
      this.#exits.delete(wrapperPid);
      return Promise.resolve(status);
    }
    return new Promise((resolve) => this.#exitWaiters.set(wrapperPid, resolve));
  }

  // The launcher is gone: pending forks fail, running wrappers are followed another way.
  #onGone(child: ChildProcess, error: Error): void {
    if (this.#child !== child) return;
    this.#child = undefined;
    for (const id of [...this.#started.keys()]) this.#settleStart(id, error);
    for (const pid of [...this.#exitWaiters.keys()]) this.#settleExit(pid, undefined);
  }

  // No wrapper can report an identity any more once every writer of the pipe is gone.
  #onOutputClosed(child: ChildProcess): void {
    for (const [pid, waiter] of this.#identityWaiters) {
      if (waiter.child !== child) continue;
      this.#identityWaiters.delete(pid);
      waiter.reject(new Error('the launcher pipe closed before the wrapper reported'));
    }
  }
}
