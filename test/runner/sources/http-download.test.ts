import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DownloadError, downloadToFile, type DownloadBounds } from '../../../src/runner/sources/http-download.js';
import { serve, startLoopbackServer, type LoopbackServer } from '../../helpers/loopback-http.js';
import { useTempDir } from '../../helpers/temp-dir.js';

const dir = useTempDir('download');
const bounds: DownloadBounds = { maxBytes: 1024 * 1024, totalMs: 10_000, attempts: 4, backoffMs: 10, maxRedirects: 3 };
let server: LoopbackServer;

beforeEach(async () => {
  server = await startLoopbackServer();
});
afterEach(async () => {
  await server.close();
});

function download(path: string, overrides: Partial<DownloadBounds> = {}, headers: Record<string, string> = {}) {
  const warnings: string[] = [];
  const dest = join(dir(), 'out');
  const done = downloadToFile({ url: `${server.origin}${path}`, headers, dest, bounds: { ...bounds, ...overrides }, warn: (m) => warnings.push(m) });
  return { done, dest, warnings };
}

async function failureOf(promise: Promise<unknown>): Promise<DownloadError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(DownloadError);
  return error as DownloadError;
}

describe('downloadToFile', () => {
  it('does not retry a request that cannot succeed (credentials in the URL), and never quotes them', async () => {
    server.route('/s.sh', serve('echo hi\n'));
    const warnings: string[] = [];
    const url = server.origin.replace('://', '://alice:s3cr3t@') + '/s.sh';
    const failure = await failureOf(downloadToFile({ url, headers: {}, dest: join(dir(), 'out'), bounds, warn: (m) => warnings.push(m) }));
    expect(failure.transient).toBe(false);
    expect(failure.nextMethod).toBe(false);
    expect(warnings).toEqual([]);
    expect(server.seen).toHaveLength(0);
    expect(failure.message).toMatch(/^request refused before it was sent/);
    expect(failure.message).not.toMatch(/alice|s3cr3t/);
  });

  it('writes a 200 body to the file, owner-only', async () => {
    server.route('/s.sh', serve('echo hi\n'));
    const { done, dest } = download('/s.sh');
    expect(await done).toBe(8);
    expect(await readFile(dest, 'utf8')).toBe('echo hi\n');
    expect((await stat(dest)).mode & 0o777).toBe(0o700);
  });

  it('fails fast on 404, marked so the next credential is tried, and leaves no file', async () => {
    const { done, dest } = download('/missing');
    const error = await failureOf(done);
    expect(error.message).toBe('HTTP 404 Not Found');
    expect(error.nextMethod).toBe(true);
    expect(server.seen).toHaveLength(1);
    await expect(stat(dest)).rejects.toThrow();
  });

  it('retries 500, 503, 429 and 408 with backoff, then succeeds', async () => {
    const codes = [500, 503, 429, 408];
    server.route('/flaky', (_req, res, hit) => {
      if (hit <= 3) res.writeHead(codes[hit - 1] ?? 500).end('busy');
      else res.writeHead(200).end('ok');
    });
    const { done, dest, warnings } = download('/flaky');
    await done;
    expect(await readFile(dest, 'utf8')).toBe('ok');
    expect(warnings).toHaveLength(3);
    expect(warnings[0]).toMatch(/^download of http:\/\/127\.0\.0\.1:\d+\/flaky failed \(HTTP 500 Internal Server Error\); retry 1 of 3 in 10 ms$/);
  });

  it('gives up after the last attempt with the last cause', async () => {
    server.route('/down', (_req, res) => res.writeHead(502).end());
    const error = await failureOf(download('/down').done);
    expect(error.message).toBe('HTTP 502 Bad Gateway');
    expect(error.nextMethod).toBe(false);
    expect(server.seen).toHaveLength(4);
  });

  it('retries a connection reset mid-body', async () => {
    server.route('/reset', (_req, res, hit) => {
      if (hit === 1) {
        res.writeHead(200, { 'content-length': '100' });
        res.write('partial');
        setTimeout(() => res.destroy(), 20);
      } else {
        res.writeHead(200).end('whole');
      }
    });
    const { done, dest } = download('/reset');
    await done;
    expect(await readFile(dest, 'utf8')).toBe('whole');
  });

  it('stops at the total time bound when the server is slow', async () => {
    server.route('/slow', (_req, res) => {
      res.writeHead(200);
      const timer = setInterval(() => res.write('.'), 50);
      res.on('close', () => clearInterval(timer));
    });
    const started = Date.now();
    const error = await failureOf(download('/slow', { totalMs: 400 }).done);
    expect(error.message).toBe('not finished within the time bound of 0.4 s');
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('stops at the time bound when the server never answers', async () => {
    server.route('/silent', () => undefined);
    const error = await failureOf(download('/silent', { totalMs: 300 }).done);
    expect(error.message).toMatch(/time bound/);
  });

  it('refuses a body over the size bound, by Content-Length or by counting', async () => {
    server.route('/big', serve(Buffer.alloc(2048, 'a')));
    expect((await failureOf(download('/big', { maxBytes: 1000 }).done)).message).toBe('larger than the bound of 1000 bytes');
    server.route('/chunked', (_req, res) => {
      res.writeHead(200);
      for (let i = 0; i < 8; i += 1) res.write(Buffer.alloc(256, 'b'));
      res.end();
    });
    const { done, dest } = download('/chunked', { maxBytes: 1000 });
    expect((await failureOf(done)).message).toBe('larger than the bound of 1000 bytes');
    await expect(stat(dest)).rejects.toThrow();
  });

  it('follows a redirect and keeps Authorization only on the same origin', async () => {
    const other = await startLoopbackServer();
    try {
      other.route('/final', serve('moved here'));
      server.route('/hop', (_req, res) => res.writeHead(302, { location: '/hop2' }).end());
      server.route('/hop2', (_req, res) => res.writeHead(307, { location: `${other.origin}/final?x=1` }).end());
      const { done, dest } = download('/hop', {}, { Authorization: 'Bearer tok' });
      await done;
      expect(await readFile(dest, 'utf8')).toBe('moved here');
      expect(server.seen.map((s) => s.headers.authorization)).toEqual(['Bearer tok', 'Bearer tok']);
      expect(other.seen[0]?.headers.authorization).toBeUndefined();
      expect(other.seen[0]?.query).toBe('?x=1');
    } finally {
      await other.close();
    }
  });

  it('refuses redirects to other schemes and too many redirects', async () => {
    server.route('/ftp', (_req, res) => res.writeHead(301, { location: 'ftp://127.0.0.1/x' }).end());
    expect((await failureOf(download('/ftp').done)).message).toBe('redirect to a ftp URL refused (only http and https)');
    server.route('/file', (_req, res) => res.writeHead(302, { location: 'file:///etc/passwd' }).end());
    expect((await failureOf(download('/file').done)).message).toMatch(/redirect to a file URL refused/);
    server.route('/loop', (_req, res) => res.writeHead(302, { location: '/loop' }).end());
    expect((await failureOf(download('/loop').done)).message).toBe('more than 3 redirects');
  });
});
