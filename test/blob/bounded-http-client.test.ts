// The storage SDK's bounded HTTP client (hardening #3) against a loopback server, through the SDK:
// a small error document still gives its status and service code, a huge body is cut at the cap
// (its connection thrown away), abort signals and the pipeline's timeout still stop a request.
import { AnonymousCredential, AppendBlobClient, newPipeline } from '@azure/storage-blob';
import { afterEach, describe, expect, it } from 'vitest';
import { makeBoundedHttpClient } from '../../src/blob/bounded-http-client.js';
import { toFailureKind, toFailureText } from '../../src/blob/storage-failure.js';
import { startLoopbackServer, type LoopbackServer } from '../helpers/loopback-http.js';

let server: LoopbackServer | undefined;

afterEach(async () => {
  if (server) await server.close();
  server = undefined;
});

function client(path: string): AppendBlobClient {
  const pipeline = newPipeline(new AnonymousCredential(), { retryOptions: { maxTries: 1 }, httpClient: makeBoundedHttpClient(1024) });
  return new AppendBlobClient(`${server!.origin}${path}?sv=2023-01-03&sp=racw&sig=c2ln`, pipeline);
}

describe('bounded HTTP client', () => {
  it('keeps a small error document: the status and the service code reach the failure', async () => {
    server = await startLoopbackServer();
    const document = '<?xml version="1.0" encoding="utf-8"?><Error><Code>AppendPositionConditionNotMet</Code><Message>no</Message></Error>';
    server.route('/c/b', (request, response) => {
      request.resume();
      response.writeHead(412, { 'content-type': 'application/xml', 'x-ms-error-code': 'AppendPositionConditionNotMet' }).end(document);
    });
    const error = await client('/c/b').appendBlock(Buffer.from('abc'), 3, { conditions: { appendPosition: 0 } }).catch((caught: unknown) => caught);
    expect(toFailureKind(error)).toBe('position');
    // The request body and the SAS reached the server.
    expect(server.seen[0]?.query).toContain('sig=c2ln');
  });

  it('cuts a body beyond the cap and reports the status alone; a success body is dropped', async () => {
    server = await startLoopbackServer();
    let closedEarly = false;
    server.route('/c/huge', (request, response) => {
      request.resume();
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
    const error = await client('/c/huge').create().catch((caught: unknown) => caught);
    expect(toFailureText(error)).toBe('HTTP 500');
    expect(toFailureKind(error)).toBe('transient');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(closedEarly).toBe(true);
    server.route('/c/ok', (request, response) => {
      request.resume();
      response.writeHead(201, { 'content-type': 'application/xml', etag: '"1"' }).end('y'.repeat(100_000));
    });
    await expect(client('/c/ok').create()).resolves.toMatchObject({ etag: '"1"' });
  });

  it('stops a request when its abort signal fires', async () => {
    server = await startLoopbackServer();
    server.route('/c/silent', () => new Promise(() => undefined));
    const started = Date.now();
    const error = await client('/c/silent').create({ abortSignal: AbortSignal.timeout(300) }).catch((caught: unknown) => caught);
    expect((error as Error).name).toBe('AbortError');
    expect(toFailureKind(error)).toBe('transient');
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
