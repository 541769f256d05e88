// The client of `rch-crypto` (src/runner/native/rch-crypto.c): one long-lived helper decrypts
// protected settings with libcrypto, so a run with protected settings starts no `openssl` process
// (targets.md: spawn_overhead_ratio, dispatch latency). Frames are length-prefixed binary both ways
// (a plaintext may hold any byte); the plaintext only exists in the two processes' memory, never in
// a file, an argv or an environment. The helper starts on first use, is unref'd while idle (like
// the launcher), answers requests in order (they are pipelined) and is restarted when it dies.
import { spawn, type ChildProcess } from 'node:child_process';

export type FastDecryption = { readonly ok: true; readonly plaintext: Buffer } | { readonly ok: false; readonly cause: string };

// The fast path cannot answer (helper missing, no libcrypto, helper crashed or hung): the caller
// decrypts another way. A decryption that fails is not this: it is a FastDecryption with a cause.
export class FastPathUnavailable extends Error {}

// The operators' and tests' switch, read here and nowhere else.
const switchName = 'RUNCOMMAND_HANDLER_CMS_FAST_PATH';

// Why the fast path is switched off in `env`, or undefined when it is on (the default).
export function fastPathDisabledBy(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env[switchName] === '0' ? `${switchName}=0` : undefined;
}

const maxRequestBytes = 64 * 1024 * 1024; // the helper's own limit
const maxFailedStarts = 3;
const statusOk = 0;

interface Request {
  readonly frame: Buffer;
  resolve(result: FastDecryption): void;
  reject(error: Error): void;
  retried: boolean;
  timer?: NodeJS.Timeout;
}

// One helper process and what is waiting on it.
interface Session {
  readonly child: ChildProcess;
  readonly ready: Promise<string>;
  readonly pending: Request[];
  chunks: Buffer[];
  received: number;
  hello: { resolve(library: string): void; reject(error: Error): void } | undefined;
  // What the hello named: set once the helper is working.
  library?: string;
  gone: boolean;
  startError?: Error;
  killedBecause?: string;
}

// Encodes a request: u32 LE length, certificate path NUL, key path NUL, the DER bytes.
export function toDecryptRequest(der: Uint8Array, crtPath: string, prvPath: string): Buffer {
  if (crtPath.includes('\0') || prvPath.includes('\0')) throw new FastPathUnavailable('a certificate path holds a NUL byte');
  const paths = Buffer.from(`${crtPath}\0${prvPath}\0`, 'utf8');
  const size = paths.length + der.length;
  if (size > maxRequestBytes) throw new FastPathUnavailable(`${der.length} bytes of CMS data is more than the helper takes`);
  const header = Buffer.alloc(4);
  header.writeUInt32LE(size);
  return Buffer.concat([header, paths, der]);
}

export class CmsDecryptor {
  readonly #helperPath: string;
  readonly #timeoutMs: number;
  #session: Session | undefined;
  #failedStarts = 0;
  #unavailable: string | undefined;

  constructor(helperPath: string, options: { timeoutMs?: number } = {}) {
    this.#helperPath = helperPath;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  // The running helper's pid (tests kill it).
  get pid(): number | undefined {
    return this.#session?.child.pid;
  }

  // Starts the helper if needed and resolves with the libcrypto it loaded ("libcrypto.so.3: OpenSSL
  // 3.0.x …"); rejects with FastPathUnavailable saying why there is none.
  probe(): Promise<string> {
    try {
      return this.#current().ready;
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  // Decrypts DER CMS EnvelopedData for the recipient `crtPath` with key `prvPath`, like
  // `openssl cms -decrypt -recip crt -inkey prv`. Rejects only with FastPathUnavailable.
  decrypt(der: Uint8Array, crtPath: string, prvPath: string): Promise<FastDecryption> {
    return new Promise((resolve, reject) => {
      try {
        this.#submit({ frame: toDecryptRequest(der, crtPath, prvPath), resolve, reject, retried: false });
      } catch (error) {
        reject(error instanceof FastPathUnavailable ? error : new FastPathUnavailable(`rch-crypto: ${String(error)}`));
      }
    });
  }

  // Ends the helper (it exits on EOF); requests it has not answered fall back, the next one starts
  // a new helper.
  close(): void {
    const session = this.#session;
    if (!session) return;
    this.#session = undefined;
    session.killedBecause ??= 'was closed';
    session.child.stdin?.end();
  }

  #submit(request: Request): void {
    const session = this.#current();
    session.pending.push(request);
    request.timer = setTimeout(() => this.#kill(session, `gave no reply within ${this.#timeoutMs} ms`), this.#timeoutMs);
    this.#updateRef(session);
    session.child.stdin?.write(request.frame);
  }

  #current(): Session {
    if (this.#unavailable !== undefined) throw new FastPathUnavailable(this.#unavailable);
    this.#session ??= this.#start();
    return this.#session;
  }

  #start(): Session {
    const child = spawn(this.#helperPath, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    let hello: Session['hello'];
    const ready = new Promise<string>((resolve, reject) => (hello = { resolve, reject }));
    ready.catch(() => undefined); // nobody may be waiting for it
    const session: Session = { child, ready, pending: [], chunks: [], received: 0, hello, gone: false };
    child.stdout?.on('data', (chunk: Buffer) => this.#onData(session, chunk));
    child.stdin?.on('error', () => undefined); // a dead helper: 'close' says so
    child.on('error', (error) => {
      session.startError = error;
      this.#onGone(session, `could not start (${error.message})`);
    });
    // 'close', not 'exit': every frame the helper wrote has been read by then.
    child.on('close', (code, signal) => this.#onGone(session, signal ? `was killed by ${signal}` : `exited with code ${String(code)}`));
    return session;
  }

  // The helper keeps the process alive only while something waits for it, never when idle.
  #updateRef(session: Session): void {
    const busy = session.pending.length > 0 || session.hello !== undefined;
    const child = session.child;
    for (const handle of [child, child.stdin, child.stdout] as unknown as ({ ref?: () => void; unref?: () => void } | null)[]) {
      if (busy) handle?.ref?.();
      else handle?.unref?.();
    }
  }

  #onData(session: Session, chunk: Buffer): void {
    session.chunks.push(chunk);
    session.received += chunk.length;
    for (;;) {
      if (session.received < 4) return;
      if (session.chunks.length > 1) session.chunks = [Buffer.concat(session.chunks)];
      const data = session.chunks[0] as Buffer;
      const size = data.readUInt32LE(0);
      if (session.received < 4 + size) return;
      const rest = data.subarray(4 + size);
      session.chunks = rest.length > 0 ? [rest] : [];
      session.received = rest.length;
      this.#onFrame(session, data.subarray(4, 4 + size));
    }
  }

  // The first frame is the hello; every later one answers the oldest pending request.
  #onFrame(session: Session, frame: Buffer): void {
    const ok = frame[0] === statusOk;
    const body = frame.subarray(1);
    if (session.hello) {
      const hello = session.hello;
      session.hello = undefined;
      this.#updateRef(session);
      if (ok) {
        this.#failedStarts = 0;
        session.library = toPrintable(body);
        hello.resolve(session.library);
      } else {
        this.#unavailable = `rch-crypto: ${toPrintable(body)}`; // no libcrypto on this machine: it will not appear
        hello.reject(new FastPathUnavailable(this.#unavailable));
      }
      return;
    }
    const request = session.pending.shift();
    if (!request) return this.#kill(session, 'sent a reply nobody asked for');
    clearTimeout(request.timer);
    this.#updateRef(session);
    if (ok) {
      request.resolve({ ok: true, plaintext: Buffer.from(body) });
      body.fill(0); // the copy above is the only one left in this process
    } else {
      request.resolve({ ok: false, cause: toPrintable(body) });
    }
  }

  #kill(session: Session, why: string): void {
    session.killedBecause ??= why;
    session.child.kill('SIGKILL');
  }

  // The helper is gone: requests it had not answered go once to a new helper when it had been
  // working (a crash or a kill between requests), otherwise the caller falls back.
  #onGone(session: Session, how: string): void {
    if (session.gone) return;
    session.gone = true;
    if (this.#session === session) this.#session = undefined;
    const why = `rch-crypto ${session.killedBecause ?? how}`;
    if (session.hello) {
      this.#failedStarts += 1;
      const missing = (session.startError as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
      if (missing || this.#failedStarts >= maxFailedStarts) this.#unavailable ??= missing ? `${this.#helperPath} is missing` : `${why} (${this.#failedStarts} times before it was ready)`;
      session.hello.reject(new FastPathUnavailable(this.#unavailable ?? why));
      session.hello = undefined;
    }
    for (const request of session.pending.splice(0)) {
      clearTimeout(request.timer);
      if (session.library !== undefined && !request.retried && session.killedBecause === undefined && this.#unavailable === undefined) {
        request.retried = true;
        this.#submit(request);
      } else {
        request.reject(new FastPathUnavailable(this.#unavailable ?? why));
      }
    }
    this.#updateRef(session);
  }
}

function toPrintable(bytes: Uint8Array): string {
  const text = Buffer.from(bytes).toString('utf8').trim().replace(/[^\x20-\x7e]/g, '?');
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
