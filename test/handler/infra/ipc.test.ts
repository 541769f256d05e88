import { chmod, lstat, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DaemonAlreadyRunning, defaultIpcLimits, sendIpcRequest, startIpcServer, type IpcAddress, type IpcRequest, type IpcResponse } from '../../../src/handler/infra/ipc.js';
import { RunStore } from '../../../src/handler/state/run-store.js';
import { linuxPlatform } from '../../../src/platform/linux.js';

// The daemon's address for an install whose state is in `stateDir`, as the handler context builds it.
function toIpcEndpoint(stateDir: string): IpcAddress {
  const store = new RunStore(stateDir);
  return { endpoint: linuxPlatform.toDaemonEndpoint(stateDir), tokenPath: store.toStateFile('ipc-token'), lockPath: store.toStateFile('daemon.lock') };
}
import { useTempDir } from '../../helpers/temp-dir.js';

const tempDir = useTempDir('ipc');
let servers: Server[] = [];

afterEach(async () => {
  await Promise.all(servers.map((server) => closeServer(server)));
  servers = [];
});

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
  });
}

async function serve(endpoint: IpcAddress, handle: (request: IpcRequest) => Promise<IpcResponse>): Promise<Server> {
  const server = await startIpcServer(endpoint, handle);
  servers.push(server);
  return server;
}

// Sends raw bytes on a plain connection and collects everything the server sends until it closes.
// `$TOKEN` in a chunk stands for the daemon's current token.
// Connects, sends `chunks` (no newline) and resolves with how many ms passed until the server closed it.
async function closedAfter(address: IpcAddress, chunks: readonly string[]): Promise<number> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = createConnection(address.endpoint);
    socket.on('error', () => undefined);
    socket.on('connect', () => {
      for (const chunk of chunks) socket.write(chunk);
    });
    socket.resume();
    socket.on('close', () => resolve(Date.now() - started));
  });
}

async function exchangeRaw(address: IpcAddress, rawChunks: readonly string[], gapMs = 0): Promise<string> {
  const token = await readFile(address.tokenPath, 'utf8');
  const chunks = rawChunks.map((chunk) => chunk.replace('$TOKEN', token));
  return new Promise((resolve, reject) => {
    const socket = createConnection(address.endpoint);
    let reply = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      reply += chunk;
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(reply));
    socket.on('connect', () => {
      void (async () => {
        for (const chunk of chunks) {
          if (socket.destroyed) return;
          socket.write(chunk);
          if (gapMs > 0) await new Promise((done) => setTimeout(done, gapMs));
        }
      })();
    });
  });
}

describe('the daemon address on Linux', () => {
  it('is a pathname socket in the root-only state dir, next to the token and the lock (never an abstract socket)', () => {
    const { endpoint, tokenPath, lockPath } = toIpcEndpoint('/var/lib/runcommand-handler');
    expect(endpoint).toBe('/var/lib/runcommand-handler/daemon.sock');
    expect(tokenPath).toBe('/var/lib/runcommand-handler/ipc-token');
    expect(lockPath).toBe('/var/lib/runcommand-handler/daemon.lock');
    expect(toIpcEndpoint('/var/lib/runcommand-handler-2').endpoint).not.toBe(endpoint);
  });

  it('the server makes the state dir and the socket root-only; a socket path over 107 bytes is a clear error', async () => {
    const stateDir = join(tempDir(), 'state');
    const address = toIpcEndpoint(stateDir);
    await serve(address, async () => ({ ok: true }));
    expect((await stat(stateDir)).mode & 0o777).toBe(0o700);
    expect((await lstat(address.endpoint)).isSocket()).toBe(true);
    expect((await stat(address.endpoint)).mode & 0o777).toBe(0o600);
    const long = toIpcEndpoint(join(tempDir(), 'x'.repeat(120)));
    await expect(startIpcServer(long, async () => ({ ok: true }))).rejects.toThrow(/longer than the 107 bytes/);
  });

  it('sends nothing (not even the token) to a socket outside a root-only folder, or not next to the token', async () => {
    const address = toIpcEndpoint(tempDir());
    await serve(address, async () => ({ ok: true, served: true }));
    expect(await sendIpcRequest(address, { op: 'hello' }, 2000)).toEqual({ ok: true, served: true });
    await chmod(tempDir(), 0o755);
    expect(await sendIpcRequest(address, { op: 'hello' }, 2000)).toBeUndefined();
    await chmod(tempDir(), 0o700);
    expect(await sendIpcRequest({ ...address, tokenPath: join(tempDir(), 'elsewhere', 'ipc-token') }, { op: 'hello' }, 2000)).toBeUndefined();
  });
});

describe('IPC server and client', () => {
  it('delivers a request to the handler and its response back to the client', async () => {
    const endpoint = toIpcEndpoint(tempDir());
    const received: IpcRequest[] = [];
    await serve(endpoint, async (request) => {
      received.push(request);
      return { ok: true, accepted: 'yes', count: received.length };
    });
    const response = await sendIpcRequest(endpoint, { op: 'enable', name: 'hello', seq: 3 }, 5000);
    expect(response).toEqual({ ok: true, accepted: 'yes', count: 1 });
    expect(received).toEqual([{ op: 'enable', name: 'hello', seq: 3 }]);
  });

  it('serves one request per connection, many connections in turn', async () => {
    const endpoint = toIpcEndpoint(tempDir());
    await serve(endpoint, async (request) => ({ ok: true, op: request.op }));
    const ops: IpcRequest[] = [{ op: 'hello' }, { op: 'disable', name: 'a' }, { op: 'cancel', name: 'b' }, { op: 'shutdown', cancelRuns: true }];
    const responses = await Promise.all(ops.map((request) => sendIpcRequest(endpoint, request, 5000)));
    expect(responses).toEqual([
      { ok: true, op: 'hello' },
      { ok: true, op: 'disable' },
      { ok: true, op: 'cancel' },
      { ok: true, op: 'shutdown' },
    ]);
  });

  it('answers ok:false with the message when the handler throws', async () => {
    const endpoint = toIpcEndpoint(tempDir());
    await serve(endpoint, async () => {
      throw new Error('settings for hello not found');
    });
    expect(await sendIpcRequest(endpoint, { op: 'hello' }, 5000)).toEqual({ ok: false, error: 'settings for hello not found' });
  });

  it('answers a malformed request with ok:false and closes the connection', async () => {
    const endpoint = toIpcEndpoint(tempDir());
    const received: IpcRequest[] = [];
    await serve(endpoint, async (request) => {
      received.push(request);
      return { ok: true };
    });
    expect(await exchangeRaw(endpoint, ['{"op": "hello"\n'])).toBe('{"ok":false,"error":"malformed request"}\n');
    expect(received).toEqual([]);
  });

  it('refuses a request without the token from the root-only state dir, without calling the handler', async () => {
    const endpoint = toIpcEndpoint(tempDir());
    let calls = 0;
    await serve(endpoint, async () => {
      calls += 1;
      return { ok: true };
    });
    expect(await exchangeRaw(endpoint, ['{"op":"shutdown","cancelRuns":true}\n'])).toBe('{"ok":false,"error":"not authorised"}\n');
    expect(await exchangeRaw(endpoint, ['{"op":"shutdown","cancelRuns":true,"token":"guess"}\n'])).toBe('{"ok":false,"error":"not authorised"}\n');
    expect(calls).toBe(0);
    expect((await stat(endpoint.tokenPath)).mode & 0o777).toBe(0o600);
    expect(await sendIpcRequest({ ...endpoint, tokenPath: `${endpoint.tokenPath}.missing` }, { op: 'hello' }, 2000)).toBeUndefined();
  });

  it('reassembles a request line that arrives in several chunks', async () => {
    const endpoint = toIpcEndpoint(tempDir());
    await serve(endpoint, async (request) => ({ ok: true, echo: request }));
    const reply = await exchangeRaw(endpoint, ['{"op":"ena', 'ble","name":"hel', 'lo","seq":9,"token":"$TOKEN"}\n'], 20);
    expect(reply).toBe('{"ok":true,"echo":{"op":"enable","name":"hello","seq":9}}\n');
  });

  it('drops a connection that sends more than 64 KiB without a newline, without calling the handler', async () => {
    const endpoint = toIpcEndpoint(tempDir());
    let calls = 0;
    await serve(endpoint, async () => {
      calls += 1;
      return { ok: true };
    });
    const reply = await exchangeRaw(endpoint, ['x'.repeat(70 * 1024)]).catch(() => '');
    expect(reply).toBe('');
    expect(calls).toBe(0);
  });

  it('drops a request line longer than 64 KiB without calling the handler, even when its newline arrives', async () => {
    const endpoint = toIpcEndpoint(tempDir());
    let calls = 0;
    await serve(endpoint, async () => {
      calls += 1;
      return { ok: true };
    });
    const line = `${JSON.stringify({ op: 'hello', padding: 'x'.repeat(70 * 1024) })}\n`;
    const reply = await exchangeRaw(endpoint, [line]).catch(() => '');
    // Give a wrongly accepted request time to reach the handler.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(reply).toBe('');
    expect(calls).toBe(0);
  });

  it('drops a request line longer than 4 KiB before authentication, without calling the handler', async () => {
    const endpoint = toIpcEndpoint(tempDir());
    let calls = 0;
    await serve(endpoint, async () => {
      calls += 1;
      return { ok: true };
    });
    const long = `${JSON.stringify({ op: 'hello', token: '$TOKEN', padding: 'x'.repeat(4200) })}\n`;
    expect(await exchangeRaw(endpoint, [long]).catch(() => '')).toBe('');
    // Multi-byte characters count as the bytes they are.
    const wide = `${JSON.stringify({ op: 'hello', token: '$TOKEN', padding: 'é'.repeat(2100) })}\n`;
    expect(await exchangeRaw(endpoint, [wide]).catch(() => '')).toBe('');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(calls).toBe(0);
    // A request just under the bound is served.
    const fits = `${JSON.stringify({ op: 'hello', token: '$TOKEN', padding: 'x'.repeat(3800) })}\n`;
    expect(await exchangeRaw(endpoint, [fits])).toContain('"ok":true');
    expect(calls).toBe(1);
    expect(defaultIpcLimits.maxRequestBytes).toBe(4096);
  });

  it('closes a connection that has not sent a complete request line within the time bound', async () => {
    const endpoint = toIpcEndpoint(tempDir());
    const server = await startIpcServer(endpoint, async () => ({ ok: true }), { ...defaultIpcLimits, requestTimeoutMs: 300 });
    servers.push(server);
    const started = Date.now();
    const bound = (promise: Promise<number>): Promise<number> => Promise.race([promise, new Promise<number>((resolve) => setTimeout(() => resolve(Number.POSITIVE_INFINITY), 3000))]);
    const [silent, partial] = await Promise.all([bound(closedAfter(endpoint, [])), bound(closedAfter(endpoint, ['{"op":"hel']))]);
    expect(silent).toBeGreaterThanOrEqual(250);
    expect(partial).toBeGreaterThanOrEqual(250);
    expect(Math.max(silent, partial)).toBeLessThan(3000);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(defaultIpcLimits.requestTimeoutMs).toBe(5000);
  });

  it('accepts at most 32 connections at once; the next is closed at once, and a freed slot serves again', async () => {
    const endpoint = toIpcEndpoint(tempDir());
    await serve(endpoint, async () => ({ ok: true, served: true }));
    const parked: Socket[] = [];
    try {
      for (let index = 0; index < 32; index += 1) {
        const socket = createConnection(endpoint.endpoint);
        socket.on('error', () => undefined);
        await new Promise((resolve) => socket.once('connect', resolve));
        socket.write('{"op":"hel'); // parks without a newline
        parked.push(socket);
      }
      const refusedIn = await Promise.race([closedAfter(endpoint, []), new Promise<number>((resolve) => setTimeout(() => resolve(Number.POSITIVE_INFINITY), 3000))]);
      expect(refusedIn).toBeLessThan(1000);
      parked.shift()?.destroy();
      await new Promise((resolve) => setTimeout(resolve, 100));
      const reply = await sendIpcRequest(endpoint, { op: 'hello' }, 2000);
      expect(reply).toEqual({ ok: true, served: true });
      expect(defaultIpcLimits.maxConnections).toBe(32);
    } finally {
      for (const socket of parked) socket.destroy();
    }
  });

  it('refuses a second server on the same state dir with DaemonAlreadyRunning (the lock, not the socket name, decides)', async () => {
    const endpoint = toIpcEndpoint(tempDir());
    await serve(endpoint, async () => ({ ok: true, first: true }));
    const error = await startIpcServer(endpoint, async () => ({ ok: true, first: false })).then(
      (server) => {
        servers.push(server);
        return undefined;
      },
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(DaemonAlreadyRunning);
    expect(await sendIpcRequest(endpoint, { op: 'hello' }, 5000)).toEqual({ ok: true, first: true });
  });

  it('takes over the stale lock and socket of a dead daemon', async () => {
    const endpoint = toIpcEndpoint(tempDir());
    // A lock naming a pid that is not this process's start time, and a socket file nobody serves.
    await writeFile(endpoint.lockPath, `${process.pid} 1\n`, { mode: 0o600 });
    const stale = createServer();
    await new Promise<void>((resolve) => stale.listen(endpoint.endpoint, resolve));
    await new Promise<void>((resolve) => {
      // Closing unlinks the file; put a plain file there, as a SIGKILLed daemon leaves its socket.
      stale.close(() => resolve());
    });
    await writeFile(endpoint.endpoint, '');
    await serve(endpoint, async () => ({ ok: true, fresh: true }));
    expect(await sendIpcRequest(endpoint, { op: 'hello' }, 5000)).toEqual({ ok: true, fresh: true });
    expect((await readFile(endpoint.lockPath, 'utf8')).split(' ')[0]).toBe(String(process.pid));
  });

  it('resolves undefined at once when nobody listens', async () => {
    const started = Date.now();
    expect(await sendIpcRequest(toIpcEndpoint(tempDir()), { op: 'hello' }, 10_000)).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(5000);
    expect(defaultIpcLimits.requestTimeoutMs).toBe(5000);
  });

  it('resolves undefined when the server does not answer within the timeout', async () => {
    const endpoint = toIpcEndpoint(tempDir());
    let calls = 0;
    await serve(endpoint, () => {
      calls += 1;
      return new Promise<IpcResponse>(() => undefined);
    });
    const started = Date.now();
    expect(await sendIpcRequest(endpoint, { op: 'hello' }, 300)).toBeUndefined();
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(5000);
    expect(calls).toBe(1);
  });

  it('releases the endpoint when the server closes, so a new daemon can bind it', async () => {
    const endpoint = toIpcEndpoint(tempDir());
    const first = await serve(endpoint, async () => ({ ok: true, generation: 1 }));
    expect(await sendIpcRequest(endpoint, { op: 'hello' }, 5000)).toEqual({ ok: true, generation: 1 });
    await closeServer(first);
    expect(await sendIpcRequest(endpoint, { op: 'hello' }, 5000)).toBeUndefined();
    await serve(endpoint, async () => ({ ok: true, generation: 2 }));
    expect(await sendIpcRequest(endpoint, { op: 'hello' }, 5000)).toEqual({ ok: true, generation: 2 });
  });
});
