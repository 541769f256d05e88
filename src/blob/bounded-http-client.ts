// The storage SDK's HTTP client for append blobs (hardening #3): the SDK's default client buffers
// every response body whole, so a hostile endpoint answering with a huge body could blow up the
// daemon's heap. This client sends the request itself (node:http / node:https, with the agent the
// pipeline chose, e.g. a proxy's) and keeps at most `maxBodyBytes` of any response body: the
// append-blob operations need only headers and, for errors, a small XML body. Beyond the cap the
// response is destroyed (its connection with it) and the SDK gets no body (the status alone
// describes the failure); a success body, which these operations never read, is dropped too. Abort signals and the pipeline's
// timeout stop the request.
import type { Agent, ClientRequest, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { IHttpClient } from '@azure/storage-blob';
import { beforeTls } from '../util/extra-ca-certificates.js';

// Enough for any storage error document (they are a few hundred bytes).
export const maxResponseBodyBytes = 64 * 1024;

type WebResource = Parameters<IHttpClient['sendRequest']>[0];
type OperationResponse = Awaited<ReturnType<IHttpClient['sendRequest']>>;
type HeadersLike = OperationResponse['headers'];

function abortError(): Error {
  const error = new Error('The operation was aborted.');
  error.name = 'AbortError';
  return error;
}

function timeoutError(): Error {
  const error = new Error('the storage request timed out') as Error & { code: string };
  error.name = 'TimeoutError';
  error.code = 'ETIMEDOUT';
  return error;
}

// A headers object as the SDK's compatibility layer reads it (it converts it with toJson).
function toHeadersLike(raw: IncomingMessage['headers']): HeadersLike {
  const values = new Map<string, { name: string; value: string }>();
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    values.set(name.toLowerCase(), { name, value: Array.isArray(value) ? value.join(', ') : value });
  }
  const headers = {
    get: (name: string) => values.get(name.toLowerCase())?.value,
    contains: (name: string) => values.has(name.toLowerCase()),
    set: (name: string, value: string | number) => void values.set(name.toLowerCase(), { name, value: String(value) }),
    remove: (name: string) => values.delete(name.toLowerCase()),
    rawHeaders: () => Object.fromEntries([...values.values()].map(({ name, value }) => [name.toLowerCase(), value])),
    headersArray: () => [...values.values()],
    headerNames: () => [...values.values()].map(({ name }) => name),
    headerValues: () => [...values.values()].map(({ value }) => value),
    toJson: (options?: { preserveCase?: boolean }) =>
      Object.fromEntries([...values.values()].map(({ name, value }) => [options?.preserveCase ? name : name.toLowerCase(), value])),
    clone: () => toHeadersLike(Object.fromEntries([...values.values()].map(({ name, value }) => [name, value]))),
  };
  return headers as unknown as HeadersLike;
}

// The request body as something to pipe or write (storage append blobs send a Buffer).
async function toBody(body: WebResource['body']): Promise<Buffer | string | NodeJS.ReadableStream | undefined> {
  if (body === undefined || body === null) return undefined;
  const value = typeof body === 'function' ? (body as () => unknown)() : body;
  if (typeof value === 'string' || Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  if (value instanceof Readable || (typeof value === 'object' && value !== null && typeof (value as NodeJS.ReadableStream).pipe === 'function')) return value as NodeJS.ReadableStream;
  if (typeof Blob !== 'undefined' && value instanceof Blob) return Buffer.from(await value.arrayBuffer());
  throw new Error('unsupported request body for a storage request');
}

// One request as the bounded sender takes it: from the SDK's adapter below, or built directly
// (append-request.ts: the append, the one request per block, skips the SDK's pipeline).
export interface BoundedRequest {
  readonly url: URL;
  readonly method: string;
  readonly headers: OutgoingHttpHeaders;
  readonly body?: Buffer | string | NodeJS.ReadableStream;
  // The connection's agent (a proxy's, when the SDK's pipeline chose one); default: Node's global agent.
  readonly agent?: Agent;
  readonly signal?: AbortSignal;
  // Milliseconds; 0 or absent: no time limit of its own.
  readonly timeoutMs?: number;
}

// Status, headers and at most the cap of the body ('' for a success or a cut body).
export interface BoundedResponse {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly bodyText: string;
}

// Sends one request; resolves with at most `maxBodyBytes` of its response body.
export function sendBoundedRequest(request: BoundedRequest, maxBodyBytes: number = maxResponseBodyBytes): Promise<BoundedResponse> {
  const { signal, body } = request;
  if (signal?.aborted) return Promise.reject(abortError());
  // Loaded by the first request, not with the module: the daemon carries the blob code, and node's
  // http, https and tls (≈ 1 MB resident) would otherwise stay loaded in a daemon that never
  // streams to a blob (issue 11.4, idle memory).
  beforeTls();
  const send = request.url.protocol === 'https:' ? process.getBuiltinModule('node:https').request : process.getBuiltinModule('node:http').request;
  return new Promise<BoundedResponse>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const cleanup = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      cleanup();
      outgoing.destroy();
      reject(error);
    };
    const succeed = (response: BoundedResponse): void => {
      if (settled) return;
      settled = true;
      cleanup();
      resolve(response);
    };
    const onAbort = (): void => fail(abortError());
    const options = { method: request.method, headers: request.headers, ...(request.agent ? { agent: request.agent } : {}) };
    const outgoing = send(request.url, options, (response) => readBounded(response, outgoing, maxBodyBytes, succeed, fail));
    outgoing.on('error', (error) => fail(error));
    signal?.addEventListener('abort', onAbort, { once: true });
    if (request.timeoutMs && request.timeoutMs > 0) timer = setTimeout(() => fail(timeoutError()), request.timeoutMs);
    if (body === undefined || typeof body === 'string' || Buffer.isBuffer(body)) outgoing.end(body);
    else {
      body.on('error', (error: Error) => fail(error));
      body.pipe(outgoing);
    }
  });
}

// Reads at most `maxBodyBytes` of a response: beyond it the response and its connection are
// destroyed and the status alone describes the failure.
function readBounded(response: IncomingMessage, outgoing: ClientRequest, maxBodyBytes: number, succeed: (response: BoundedResponse) => void, fail: (error: Error) => void): void {
  const status = response.statusCode ?? 0;
  const chunks: Buffer[] = [];
  let kept = 0;
  let truncated = false;
  // A success needs only its headers; an error keeps its document for its code — unless the
  // body was cut (no storage error document is that large: the status alone tells the failure).
  const done = (): void => succeed({ status, headers: response.headers, bodyText: (status >= 200 && status < 300) || truncated ? '' : Buffer.concat(chunks).toString('utf8') });
  response.on('data', (chunk: Buffer) => {
    if (truncated) return;
    if (chunk.length > maxBodyBytes - kept) {
      truncated = true;
      // Nothing more is read: the rest of the body, and the connection, are thrown away.
      response.destroy();
      outgoing.destroy();
      done();
      return;
    }
    // A success body is never read: it is not kept either.
    if (status < 200 || status >= 300) chunks.push(chunk);
    kept += chunk.length;
  });
  response.on('end', done);
  response.on('error', (error) => (truncated ? undefined : fail(error)));
  response.on('close', () => {
    if (!response.complete && !truncated) fail(Object.assign(new Error('the storage response ended early'), { code: 'ECONNRESET' }));
  });
}

// The SDK's request through the bounded sender, answered in the SDK's response shape.
export async function sendBounded(resource: WebResource, maxBodyBytes: number = maxResponseBodyBytes): Promise<OperationResponse> {
  const body = await toBody(resource.body);
  const headers: OutgoingHttpHeaders = {};
  for (const { name, value } of resource.headers.headersArray()) headers[name] = value;
  if (body !== undefined && typeof (body as NodeJS.ReadableStream).pipe !== 'function' && headers['content-length'] === undefined && headers['Content-Length'] === undefined) {
    headers['content-length'] = Buffer.byteLength(body as Buffer | string);
  }
  const request: BoundedRequest = {
    url: new URL(resource.url),
    method: resource.method,
    headers,
    ...(body !== undefined ? { body } : {}),
    ...(resource.agent ? { agent: resource.agent as Agent } : {}),
    ...(resource.abortSignal ? { signal: resource.abortSignal as AbortSignal } : {}),
    ...(resource.timeout ? { timeoutMs: resource.timeout } : {}),
  };
  const response = await sendBoundedRequest(request, maxBodyBytes);
  return { request: resource, status: response.status, headers: toHeadersLike(response.headers), bodyAsText: response.bodyText } as OperationResponse;
}

// The client given to the SDK's pipeline (newPipeline(credential, { httpClient })).
export function makeBoundedHttpClient(maxBodyBytes: number = maxResponseBodyBytes): IHttpClient {
  return { sendRequest: (resource) => sendBounded(resource, maxBodyBytes) };
}
