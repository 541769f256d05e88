// One HTTP(S) GET into a file, as run-command.md §3 wants it: transient failures (network, 408,
// 429, 5xx) retried with backoff, a size bound, a total time bound, redirects followed only to
// http(s) URLs, a bounded number of times, never downgrading https, and never carrying an
// Authorization header to another origin. Messages name URLs by host and path only (no SAS).
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import type { ReadableStream } from 'node:stream/web';
import { toLoggableUrl } from '../../util/loggable-url.js';
import { isNetworkError, isTransientStatus } from '../../util/retry.js';
import { beforeTls } from '../../util/extra-ca-certificates.js';

export interface DownloadBounds {
  readonly maxBytes: number;
  // For all attempts and redirects together.
  readonly totalMs: number;
  readonly attempts: number;
  // First retry delay; doubled on each retry, capped at 30 s.
  readonly backoffMs: number;
  readonly maxRedirects: number;
}

// Bounds besides the size (download-limits.ts): 15 min in all, 5 attempts from 1 s apart, 5 redirects.
export const defaultDownloadBounds = { totalMs: 15 * 60 * 1000, attempts: 5, backoffMs: 1000, maxRedirects: 5 } as const;

// Why a download failed; `nextMethod` is true when another credential may succeed (401/403/404…).
export class DownloadError extends Error {
  readonly nextMethod: boolean;
  readonly transient: boolean;

  constructor(message: string, kind: { nextMethod?: boolean; transient?: boolean } = {}) {
    super(message);
    this.name = 'DownloadError';
    this.nextMethod = kind.nextMethod ?? false;
    this.transient = kind.transient ?? false;
  }
}

export interface DownloadRequest {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly dest: string;
  readonly bounds: DownloadBounds;
  // Told about each retry (never a secret: URLs are shown by host and path).
  readonly warn?: (message: string) => void;
  // The run's own cancel (disable, timeout): stops the download at once.
  readonly signal?: AbortSignal;
}

// Downloads `url` into `dest` (mode 0700); throws a DownloadError and leaves no file on failure.
export async function downloadToFile(request: DownloadRequest): Promise<number> {
  const { bounds } = request;
  const timeBound = AbortSignal.timeout(bounds.totalMs);
  const deadline = request.signal ? AbortSignal.any([timeBound, request.signal]) : timeBound;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await fetchOnce(request, deadline);
    } catch (error) {
      await rm(request.dest, { force: true });
      if (request.signal?.aborted) throw new DownloadError('canceled');
      const failure = toDownloadError(error, deadline, bounds);
      if (!failure.transient || attempt >= bounds.attempts) throw failure;
      const wait = Math.min(bounds.backoffMs * 2 ** (attempt - 1), 30_000);
      request.warn?.(`download of ${toLoggableUrl(request.url)} failed (${failure.message}); retry ${attempt} of ${bounds.attempts - 1} in ${wait} ms`);
      await delay(wait, undefined, { signal: deadline }).catch(() => undefined);
      if (deadline.aborted) throw toDownloadError(deadline.reason, deadline, bounds);
    }
  }
}

function toDownloadError(error: unknown, deadline: AbortSignal, bounds: DownloadBounds): DownloadError {
  if (error instanceof DownloadError) return error;
  if (deadline.aborted) return new DownloadError(`not finished within the time bound of ${Math.round(bounds.totalMs / 100) / 10} s`);
  const local = error as { syscall?: string; code?: string } | undefined;
  if (typeof local?.syscall === 'string') return new DownloadError(`could not write the file (${local.code ?? local.syscall})`);
  const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  const raw = cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
  // Only a failure of the network itself may heal on retry (util/retry.ts); anything else (a URL
  // fetch refuses, e.g. one with credentials) fails the same way every time. A detail that quotes
  // a URL is not repeated: it may carry credentials or a SAS.
  const detail = raw.includes('://') || raw.includes('@') ? 'the request could not be made' : raw;
  if (isNetworkError(error)) return new DownloadError(`network error (${detail})`, { transient: true });
  return new DownloadError(`request refused before it was sent (${detail})`);
}

// One attempt: follows redirects, then streams the body into `dest`.
async function fetchOnce(request: DownloadRequest, signal: AbortSignal): Promise<number> {
  let url = new URL(request.url);
  let headers = { ...request.headers };
  beforeTls();
  for (let hops = 0; ; hops += 1) {
    const response = await fetch(url, { headers, redirect: 'manual', signal });
    if (response.status >= 300 && response.status < 400 && response.headers.has('location')) {
      await response.body?.cancel().catch(() => undefined);
      const next = toRedirectTarget(url, response.headers.get('location') ?? '', hops, request.bounds.maxRedirects);
      if (next.origin !== url.origin) headers = withoutAuthorization(headers);
      url = next;
      continue;
    }
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined);
      const text = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
      throw new DownloadError(text, isTransientStatus(response.status) ? { transient: true } : { nextMethod: true });
    }
    return writeBody(response, request.dest, request.bounds.maxBytes);
  }
}

// Where a redirect leads, if it is allowed to lead there.
function toRedirectTarget(from: URL, location: string, hops: number, maxRedirects: number): URL {
  if (hops >= maxRedirects) throw new DownloadError(`more than ${maxRedirects} redirects`);
  let next: URL;
  try {
    next = new URL(location, from);
  } catch {
    throw new DownloadError('redirect to an invalid URL');
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new DownloadError(`redirect to a ${next.protocol.replace(':', '')} URL refused (only http and https)`);
  if (from.protocol === 'https:' && next.protocol === 'http:') throw new DownloadError(`redirect from https to http refused (${toLoggableUrl(next.href)})`);
  return next;
}

function withoutAuthorization(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => name.toLowerCase() !== 'authorization'));
}

function tooLarge(maxBytes: number): DownloadError {
  return new DownloadError(`larger than the bound of ${maxBytes} bytes`);
}

async function writeBody(response: Response, dest: string, maxBytes: number): Promise<number> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (declared > maxBytes) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge(maxBytes);
  }
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      callback(bytes > maxBytes ? tooLarge(maxBytes) : null, chunk);
    },
  });
  const body = response.body ? Readable.fromWeb(response.body as ReadableStream<Uint8Array>) : Readable.from([]);
  await pipeline(body, counter, createWriteStream(dest, { mode: 0o700 }));
  return bytes;
}
