// The lifecycle commands ⇄ daemon channel: newline-delimited JSON over a local socket whose
// name is derived from the state dir. On Linux it is an abstract socket: binding it is an
// atomic single-instance lock that vanishes with the daemon (no stale files).
import { createHash } from 'node:crypto';
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export type IpcRequest =
  | { op: 'hello' }
  | { op: 'enable'; name: string; seq: number }
  | { op: 'disable'; name: string }
  | { op: 'cancel'; name: string }
  | { op: 'shutdown'; cancelRuns: boolean };

export type IpcResponse = { ok: true; [key: string]: unknown } | { ok: false; error: string };

export class DaemonAlreadyRunning extends Error {}

// The socket address for the daemon that owns `stateDir`.
export function toIpcEndpoint(stateDir: string): string {
  const hash = createHash('sha256').update(stateDir).digest('hex').slice(0, 24);
  return process.platform === 'win32' ? `\\\\.\\pipe\\runcommand-handler-${hash}` : `\0runcommand-handler-${hash}`;
}

function serve(socket: Socket, handle: (request: IpcRequest) => Promise<IpcResponse>): void {
  let buffer = '';
  socket.setEncoding('utf8');
  socket.on('error', () => undefined);
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    if (buffer.length > 64 * 1024) {
      socket.destroy();
      return;
    }
    const newline = buffer.indexOf('\n');
    if (newline < 0) return;
    const line = buffer.slice(0, newline);
    buffer = '';
    let request: IpcRequest;
    try {
      request = JSON.parse(line) as IpcRequest;
    } catch {
      socket.end(`${JSON.stringify({ ok: false, error: 'malformed request' })}\n`);
      return;
    }
    handle(request)
      .catch((error: unknown) => ({ ok: false as const, error: error instanceof Error ? error.message : String(error) }))
      .then((response) => socket.end(`${JSON.stringify(response)}\n`));
  });
}

// Binds the daemon's endpoint; throws DaemonAlreadyRunning when another daemon holds it.
export function startIpcServer(endpoint: string, handle: (request: IpcRequest) => Promise<IpcResponse>): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => serve(socket, handle));
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(error.code === 'EADDRINUSE' ? new DaemonAlreadyRunning('another daemon owns this state dir') : error);
    });
    server.listen(endpoint, () => resolve(server));
  });
}

// Sends one request; undefined when no daemon listens (or it did not answer in time).
export function sendIpcRequest(endpoint: string, request: IpcRequest, timeoutMs: number): Promise<IpcResponse | undefined> {
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
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
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
