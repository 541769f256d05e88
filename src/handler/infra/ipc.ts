// The transport between the lifecycle commands and the daemon: newline-delimited JSON over a local
// socket (the Platform value names it: an abstract Unix socket on Linux, a named pipe on Windows),
// one request per connection. Any local user can connect to an abstract socket, so every request
// carries a token the daemon writes into its root-only state folder: only root can read it, so only
// root can cancel, disable or stop runs. What the requests mean is daemon-client.ts's business.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../../util/atomic-file.js';

// One request: an operation and its fields (the token is added and checked here).
export type IpcRequest = { readonly op: string } & Readonly<Record<string, unknown>>;
export type IpcResponse = { ok: true; [key: string]: unknown } | { ok: false; error: string };

export class DaemonAlreadyRunning extends Error {}

export interface IpcAddress {
  // The socket (abstract on Linux, a named pipe on Windows).
  readonly endpoint: string;
  // The file holding the current daemon's token, in the root-only state folder.
  readonly tokenPath: string;
}

function isAuthorised(request: { token?: unknown }, token: Buffer): boolean {
  const given = Buffer.from(typeof request.token === 'string' ? request.token : '');
  return given.length === token.length && timingSafeEqual(given, token);
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

function serve(socket: Socket, token: Buffer, handle: (request: IpcRequest) => Promise<IpcResponse>, limits: IpcLimits): void {
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
    if (!isAuthorised(request, token)) {
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
// DaemonAlreadyRunning when another daemon holds the endpoint.
export async function startIpcServer(
  address: IpcAddress,
  handle: (request: IpcRequest) => Promise<IpcResponse>,
  limits: IpcLimits = defaultIpcLimits,
): Promise<Server> {
  const token = Buffer.from(randomBytes(32).toString('hex'));
  const server = await new Promise<Server>((resolve, reject) => {
    const created = createServer((socket) => serve(socket, token, handle, limits));
    // Node closes a connection beyond this at once, before any of it is read.
    created.maxConnections = limits.maxConnections;
    created.once('error', (error: NodeJS.ErrnoException) => {
      reject(error.code === 'EADDRINUSE' ? new DaemonAlreadyRunning('another daemon owns this state dir') : error);
    });
    created.listen(address.endpoint, () => resolve(created));
  });
  await mkdir(dirname(address.tokenPath), { recursive: true, mode: 0o700 });
  await writeFileAtomic(address.tokenPath, token, { mode: 0o600 });
  return server;
}

// Sends one request with the daemon's token; undefined when no daemon listens (or it did not
// answer in time, or the token cannot be read: then the caller is not root, or no daemon ran yet).
export async function sendIpcRequest(address: IpcAddress, request: IpcRequest, timeoutMs: number): Promise<IpcResponse | undefined> {
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
