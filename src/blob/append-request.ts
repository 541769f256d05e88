// Append Block (run-command.md §6) sent straight through the bounded sender, not through the
// storage SDK: it is the one request made per block of output, and the SDK's operation layer
// (serializers, policies, header conversions) cost about 2 ms of the daemon's CPU per block — a
// third of what appending a 4 MiB block costs at all. The request is the documented REST call:
// PUT <blob>?comp=appendblock with the append-position condition, the body capped like every
// storage response (bounded-http-client.ts), failures shaped like the SDK's (statusCode, code) so
// storage-failure.ts treats them alike. Creating, emptying and measuring the blob stay on the SDK.
import { randomUUID } from 'node:crypto';
import type { Agent } from 'node:http';
import { sendBoundedRequest } from './bounded-http-client.js';

// The REST API version of the append: appendpos needs 2015-02-21, bearer tokens 2017-11-09; an
// older version than the SDK's own is served by Azure, by Azure Stack Hub (which lags the public
// cloud's versions) and by Azurite. Blocks stay at most 4 MiB, the limit of every version.
export const appendApiVersion = '2019-02-02';

// What one append needs besides its bytes.
export interface AppendCall {
  // The blob's URL without its query.
  readonly url: string;
  // SAS query string without its '?'.
  readonly sas?: string;
  // A managed identity's access token, when there is no SAS.
  readonly bearer?: string;
  // The agent the SDK's pipeline used for this blob (a proxy's, when one is configured).
  readonly agent?: Agent;
  readonly signal: AbortSignal;
}

// A failed storage request, shaped as the SDK's RestError is read by storage-failure.ts.
export class StorageRequestError extends Error {
  readonly statusCode: number;
  readonly code: string | undefined;

  constructor(statusCode: number, code: string | undefined) {
    super(code ? `storage answered HTTP ${statusCode} ${code}` : `storage answered HTTP ${statusCode}`);
    this.name = 'RestError';
    this.statusCode = statusCode;
    this.code = code;
  }
}

// The service's error code: its header, else the <Code> of the (bounded) error document.
function toErrorCode(header: string | string[] | undefined, body: string): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value) return value;
  return /<Code>([^<]{1,200})<\/Code>/.exec(body)?.[1];
}

// Appends `bytes` only if the blob is exactly `position` bytes long; throws StorageRequestError
// for any answer but 201 Created.
export async function appendBlock(call: AppendCall, bytes: Buffer, position: number): Promise<void> {
  const url = new URL(`${call.url}?${call.sas ? `${call.sas}&` : ''}comp=appendblock`);
  const headers = {
    'x-ms-version': appendApiVersion,
    'x-ms-client-request-id': randomUUID(),
    'x-ms-blob-condition-appendpos': String(position),
    'content-length': String(bytes.length),
    'content-type': 'application/octet-stream',
    'user-agent': 'runcommand-handler',
    ...(call.bearer ? { authorization: `Bearer ${call.bearer}` } : {}),
  };
  const response = await sendBoundedRequest({ url, method: 'PUT', headers, body: bytes, signal: call.signal, ...(call.agent ? { agent: call.agent } : {}) });
  if (response.status !== 201) throw new StorageRequestError(response.status, toErrorCode(response.headers['x-ms-error-code'], response.bodyText));
}
