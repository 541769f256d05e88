// The transport between the lifecycle commands and the daemon: newline-delimited JSON over a local
// socket (the Platform value names it: a pathname Unix socket in the root-only state folder on
// Linux, a named pipe on Windows), one request per connection.
// Who can talk to whom (issue: hardening #1): on Linux the socket is `<stateDir>/daemon.sock` and
// the state folder is 0700 root, so only root can connect to it or bind it — reaching the socket
// is itself the proof that the peer is root, and no other user can pose as the daemon (an abstract
// socket has no permissions: any user could bind its name while no daemon held it). The client
// sends nothing unless the socket is in a root-only folder next to the token file. One daemon per
// install is decided by a lock file (daemon-lock.ts), never by whether the socket name is taken.
// Every request still carries a token the daemon writes into the state folder (0600), read only by
// root. What the requests mean is daemon-client.ts's business.
import { chmod, lstat, mkdir, readFile, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { constantTimeEqual, randomBytesOf } from '../../util/random.js';
import { writeFileAtomic } from '../../util/atomic-file.js';
import { acquireDaemonLock } from './daemon-lock.js';

// One request: an operation and its fields (the token is added and checked here).
export type IpcRequest = { readonly op: string } & Readonly<Record<string, unknown>>;
export type IpcResponse = { ok: true; [key: string]: unknown } | { ok: false; error: string };

export class DaemonAlreadyRunning extends Error {}

export interface IpcAddress {
  // The socket (a pathname socket in the state folder on Linux, a named pipe on Windows).
  readonly endpoint: string;
  // The file holding the current daemon's token, in the root-only state folder.
  readonly tokenPath: string;
  // The daemon's single-instance lock, in the state folder (used with a pathname socket).
  readonly lockPath: string;
}

// sun_path holds 108 bytes, NUL included (unix(7)): a longer path would be cut, silently or not.
export const maxSocketPathBytes = 107;

// A filesystem socket (Linux), as opposed to a Windows named pipe (`\\.\pipe\...`).
export function isPathnameSocket(endpoint: string): boolean {
  return endpoint.startsWith('/');
}

// Whether a client may talk to `address`: a named pipe (under a prefix only administrators can
// create names in: platform/windows.ts), or a socket that is in a directory owned
// by this (root) user that no one else can enter, the one holding the token file. Only root can
// reach a socket in a 0700 root folder, so whoever listens there is root; anything else (a socket
// elsewhere, a folder another user could enter or replace) gets nothing, token included.
export async function isTrustedEndpoint(address: IpcAddress): Promise<boolean> {
  const { endpoint } = address;
  if (!isPathnameSocket(endpoint)) return true;
  const folder = dirname(endpoint);
  if (folder !== dirname(address.tokenPath) || Buffer.byteLength(endpoint) > maxSocketPathBytes) return false;
  const uid = process.getuid?.();
  try {
    const [folderStat, socketStat] = await Promise.all([lstat(folder), lstat(endpoint)]);
    return folderStat.isDirectory() && folderStat.uid === uid && (folderStat.mode & 0o077) === 0 && socketStat.isSocket() && socketStat.uid === uid;
  } catch {
    return false;
  }
}

// The daemon's side, without node:crypto (util/random.ts: the daemon makes its token before it can
// answer the `enable` that started it).
async function makeToken(): Promise<{ token: Buffer; isAuthorised(request: { token?: unknown }): boolean }> {
  const token = Buffer.from(randomBytesOf(32).toString('hex'));
  return {
    token,
    isAuthorised: (request) => constantTimeEqual(Buffer.from(typeof request.token === 'string' ? request.token : ''), token),
  };
}

// What one local user can make the daemon hold (issue: hardening #4). Every connection is
// unauthenticated until its request line, token included, has been read, so the line is small and
// must come quickly; and there are only so many connections at once.
export interface IpcLimits {
  // Connections open at once; more are closed as soon as they are accepted.
  readonly maxConnections: number;
  // Bytes of a request line (requests are a few fields and a 64-character token).
  readonly maxRequestBytes: number;
  // Time from connecting to a complete request line; a connection still without one is closed.
  readonly requestTimeoutMs: number;
}

export const defaultIpcLimits: IpcLimits = Object.freeze({ maxConnections: 32, maxRequestBytes: 4 * 1024, requestTimeoutMs: 5000 });

function serve(socket: Socket, isAuthorised: (request: { token?: unknown }) => boolean, handle: (request: IpcRequest) => Promise<IpcResponse>, limits: IpcLimits): void {
  const chunks: Buffer[] = [];
  let received = 0;
  let answered = false;
  const timer = setTimeout(() => socket.destroy(), limits.requestTimeoutMs);
  timer.unref();
  socket.on('error', () => undefined);
  socket.on('close', () => clearTimeout(timer));
  socket.on('data', (chunk: Buffer) => {
    if (answered) return;
    const newline = chunk.indexOf(0x0a);
    const kept = newline < 0 ? chunk : chunk.subarray(0, newline);
    received += kept.length;
    if (received > limits.maxRequestBytes) {
      socket.destroy();
      return;
    }
    chunks.push(kept);
    if (newline < 0) return;
    answered = true;
    const line = Buffer.concat(chunks).toString('utf8');
    chunks.length = 0;
    let request: IpcRequest & { token?: unknown };
    try {
      request = JSON.parse(line) as IpcRequest & { token?: unknown };
    } catch {
      socket.end(`${JSON.stringify({ ok: false, error: 'malformed request' })}\n`);
      return;
    }
    if (!isAuthorised(request)) {
      socket.end(`${JSON.stringify({ ok: false, error: 'not authorised' })}\n`);
      return;
    }
    // Authorised: the request may take as long as it needs (a cancel waits for the kill).
    clearTimeout(timer);
    const { token: _token, ...command } = request;
    handle(command as IpcRequest)
      .catch((error: unknown) => ({ ok: false as const, error: error instanceof Error ? error.message : String(error) }))
      .then((response) => socket.end(`${JSON.stringify(response)}\n`));
  });
}

// Binds the daemon's endpoint, then publishes a fresh token for its clients; throws
// DaemonAlreadyRunning when another live daemon serves this install. With a pathname socket, the
// lock is taken first and the socket of a dead daemon is removed by the lock's holder only; the
// lock is released when the server closes.
export async function startIpcServer(
  address: IpcAddress,
  handle: (request: IpcRequest) => Promise<IpcResponse>,
  limits: IpcLimits = defaultIpcLimits,
): Promise<Server> {
  const { token, isAuthorised } = await makeToken();
  let release = (): void => undefined;
  if (isPathnameSocket(address.endpoint)) {
    if (Buffer.byteLength(address.endpoint) > maxSocketPathBytes) {
      throw new Error(`the daemon's socket path ${address.endpoint} is longer than the ${maxSocketPathBytes} bytes a Unix socket path may have: choose a shorter state folder (RUNCOMMAND_HANDLER_STATE_DIR)`);
    }
    const folder = dirname(address.endpoint);
    await mkdir(folder, { recursive: true, mode: 0o700 });
    await chmod(folder, 0o700);
    const lock = await acquireDaemonLock(address.lockPath);
    if (lock === undefined) throw new DaemonAlreadyRunning('another daemon owns this state dir');
    release = () => lock.release();
    await unlink(address.endpoint).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') {
        release();
        throw error;
      }
    });
  }
  const server = await new Promise<Server>((resolve, reject) => {
    const created = createServer((socket) => serve(socket, isAuthorised, handle, limits));
    // Node closes a connection beyond this at once, before any of it is read.
    created.maxConnections = limits.maxConnections;
    created.once('error', (error: NodeJS.ErrnoException) => {
      release();
      reject(error.code === 'EADDRINUSE' ? new DaemonAlreadyRunning('another daemon owns this state dir') : error);
    });
    created.listen(address.endpoint, () => resolve(created));
  });
  // The lock goes with the listening socket: close() unbinds (and unlinks) it at once, before
  // open connections drain, so a daemon started right after a stop can take over. A daemon that
  // exits without closing (process.exit) still leaves no lock behind.
  process.once('exit', release);
  const close = server.close.bind(server);
  server.close = (callback?: (error?: Error) => void): Server => {
    close(callback);
    process.removeListener('exit', release);
    release();
    return server;
  };
  if (isPathnameSocket(address.endpoint)) await chmod(address.endpoint, 0o600);
  await mkdir(dirname(address.tokenPath), { recursive: true, mode: 0o700 });
  // Not fsynced: a token is good for this daemon only, and after a power loss there is none to reach.
  await writeFileAtomic(address.tokenPath, token, { mode: 0o600, sync: false });
  return server;
}

// Sends one request with the daemon's token; undefined when no daemon listens (or it did not
// answer in time, or the token cannot be read: then the caller is not root, or no daemon ran yet),
// and without sending anything when the endpoint is not a root-only one (isTrustedEndpoint).
export async function sendIpcRequest(address: IpcAddress, request: IpcRequest, timeoutMs: number): Promise<IpcResponse | undefined> {
  if (!(await isTrustedEndpoint(address))) return undefined;
  const token = await readFile(address.tokenPath, 'utf8').catch(() => undefined);
  if (token === undefined) return undefined;
  return exchange(address.endpoint, `${JSON.stringify({ ...request, token })}\n`, timeoutMs);
}

function exchange(endpoint: string, line: string, timeoutMs: number): Promise<IpcResponse | undefined> {
  return new Promise((resolve) => {
    const socket = createConnection(endpoint);
    let reply = '';
    const finish = (value: IpcResponse | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(value);
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(line));
    socket.on('data', (chunk: string) => {
      reply += chunk;
      const newline = reply.indexOf('\n');
      if (newline < 0) return;
      try {
        finish(JSON.parse(reply.slice(0, newline)) as IpcResponse);
      } catch {
        finish(undefined);
      }
    });
    socket.on('error', () => finish(undefined));
    socket.on('close', () => finish(undefined));
  });
}
