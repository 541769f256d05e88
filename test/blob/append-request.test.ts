// The append sent without the SDK (append-request.ts) against loopback servers: the documented
// request, failures the stream classifies as the SDK's were, the bounded answer (hardening #3),
// abort signals, bearer tokens, and the proxy the SDK's pipeline chose for the same blob.
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { appendBlock } from '../../src/blob/append-request.js';
import { makeAppendTarget, toBlobAddress } from '../../src/blob/blob-target.js';
import { toFailureKind, toFailureText } from '../../src/blob/storage-failure.js';
import { startLoopbackServer, type LoopbackServer } from '../helpers/loopback-http.js';

const sas = 'sv=2023-01-03&sp=racw&sig=c2ln%2Bbm%3D';
let server: LoopbackServer | undefined;
let proxy: Server | undefined;

afterEach(async () => {
  if (server) await server.close();
  if (proxy) await new Promise((resolve) => proxy!.close(resolve));
  server = undefined;
  proxy = undefined;
  delete process.env['HTTP_PROXY'];
});

// Answers appends with 201 after reading the body; the bodies are kept in order.
function acceptAppends(target: LoopbackServer, path: string): Buffer[] {
  const bodies: Buffer[] = [];
  target.route(path, (incoming, response) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      if (/comp=appendblock/.test(incoming.url ?? '')) bodies.push(Buffer.concat(chunks));
      response.writeHead(201).end();
    });
  });
  return bodies;
}

describe('append without the SDK', () => {
  it('sends the documented Append Block: the SAS and comp=appendblock, the position condition, the bytes', async () => {
    server = await startLoopbackServer();
    const bodies = acceptAppends(server, '/c/b');
    await appendBlock({ url: `${server.origin}/c/b`, sas, signal: AbortSignal.timeout(5000) }, Buffer.from('hello'), 7);
    expect(bodies).toEqual([Buffer.from('hello')]);
    const seen = server.seen[0]!;
    expect(seen.query).toBe(`?${sas}&comp=appendblock`);
    expect(seen.headers['x-ms-blob-condition-appendpos']).toBe('7');
    expect(seen.headers['x-ms-version']).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(seen.headers['content-length']).toBe('5');
    expect(seen.headers['authorization']).toBeUndefined();
  });

  it('puts a managed identity token in the Authorization header, never in the query', async () => {
    server = await startLoopbackServer();
    acceptAppends(server, '/c/b');
    await appendBlock({ url: `${server.origin}/c/b`, bearer: 'token-123', signal: AbortSignal.timeout(5000) }, Buffer.from('x'), 0);
    expect(server.seen[0]?.headers['authorization']).toBe('Bearer token-123');
    expect(server.seen[0]?.query).toBe('?comp=appendblock');
  });

  it('reads a refused position from the error code header or, without it, from the error document', async () => {
    server = await startLoopbackServer();
    const document = '<?xml version="1.0" encoding="utf-8"?><Error><Code>AppendPositionConditionNotMet</Code><Message>no</Message></Error>';
    server.route('/c/header', (incoming, response) => void incoming.resume().on('end', () => response.writeHead(412, { 'x-ms-error-code': 'AppendPositionConditionNotMet' }).end()));
    server.route('/c/document', (incoming, response) => void incoming.resume().on('end', () => response.writeHead(412, { 'content-type': 'application/xml' }).end(document)));
    server.route('/c/denied', (incoming, response) => void incoming.resume().on('end', () => response.writeHead(403, { 'x-ms-error-code': 'AuthorizationPermissionMismatch' }).end()));
    const failure = (path: string): Promise<unknown> =>
      appendBlock({ url: `${server!.origin}${path}`, sas, signal: AbortSignal.timeout(5000) }, Buffer.from('abc'), 3).then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(toFailureKind(await failure('/c/header'))).toBe('position');
    expect(toFailureKind(await failure('/c/document'))).toBe('position');
    const denied = await failure('/c/denied');
    expect(toFailureKind(denied)).toBe('final');
    expect(toFailureText(denied)).toBe('HTTP 403 AuthorizationPermissionMismatch');
  });

  it('cuts a huge answer at the cap: the status alone reaches the stream and the connection is thrown away', async () => {
    server = await startLoopbackServer();
    let closedEarly = false;
    server.route('/c/huge', (incoming, response) => {
      incoming.resume();
      response.writeHead(500, { 'content-type': 'application/xml' });
      response.on('close', () => void (closedEarly = !response.writableFinished));
      const chunk = Buffer.alloc(64 * 1024, 'x');
      let sent = 0;
      const pump = (): void => {
        while (!response.destroyed && sent < 256 * 1024 * 1024) {
          sent += chunk.length;
          if (!response.write(chunk)) return void response.once('drain', pump);
        }
        response.end();
      };
      pump();
    });
    const heapBefore = process.memoryUsage().heapUsed;
    const error = await appendBlock({ url: `${server.origin}/c/huge`, sas, signal: AbortSignal.timeout(30_000) }, Buffer.from('abc'), 0).catch((caught: unknown) => caught);
    expect(toFailureText(error)).toBe('HTTP 500');
    expect(toFailureKind(error)).toBe('transient');
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(16 * 1024 * 1024);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(closedEarly).toBe(true);
  });

  it('stops when its abort signal fires', async () => {
    server = await startLoopbackServer();
    server.route('/c/silent', () => new Promise(() => undefined));
    const started = Date.now();
    const error = await appendBlock({ url: `${server.origin}/c/silent`, sas, signal: AbortSignal.timeout(300) }, Buffer.from('abc'), 0).catch((caught: unknown) => caught);
    expect((error as Error).name).toBe('AbortError');
    expect(toFailureKind(error)).toBe('transient');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('goes through the proxy the SDK pipeline chose for the same blob (HTTP_PROXY)', async () => {
    server = await startLoopbackServer();
    const bodies = acceptAppends(server, '/c/proxied');
    const proxied: string[] = [];
    proxy = await startForwardProxy(proxied);
    process.env['HTTP_PROXY'] = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const target = makeAppendTarget(toBlobAddress({ uri: `${server.origin}/c/proxied?${sas}` }), { tokens: { getToken: () => Promise.reject(new Error('no identity')) }, onToken: () => undefined });
    await target.reset(AbortSignal.timeout(5000));
    await target.append(Buffer.from('one'), 0, AbortSignal.timeout(5000));
    await target.append(Buffer.from('two'), 3, AbortSignal.timeout(5000));
    expect(bodies).toEqual([Buffer.from('one'), Buffer.from('two')]);
    // The reset (through the SDK) and both appends (without it) went through the proxy.
    expect(proxied.filter((url) => url.includes('comp=appendblock'))).toHaveLength(2);
    expect(proxied).toHaveLength(3);
  });
});

// A forward HTTP proxy on loopback: takes absolute-form requests, records their URLs, relays them.
async function startForwardProxy(proxied: string[]): Promise<Server> {
  const forward = createServer((incoming, response) => {
    proxied.push(incoming.url ?? '');
    const upstream = request(incoming.url ?? '', { method: incoming.method, headers: incoming.headers }, (reply) => {
      response.writeHead(reply.statusCode ?? 502, reply.headers);
      reply.pipe(response);
    });
    upstream.on('error', () => response.destroy());
    incoming.pipe(upstream);
  });
  await new Promise<void>((resolve) => forward.listen(0, '127.0.0.1', resolve));
  return forward;
}
