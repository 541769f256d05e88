// How a failed storage request is treated (issue 4): transient faults are retried with backoff,
// a failed append position is resolved by reading the blob's length, anything else is final.

// What to do about a failed request.
export type FailureKind = 'transient' | 'position' | 'final';

// Node and undici network error codes that say nothing about the request's own validity.
const networkCodes = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN',
  'EAI_AGAIN', 'ENOTFOUND', 'ESOCKETTIMEDOUT', 'REQUEST_SEND_ERROR', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT',
]);

interface ErrorShape {
  readonly name?: unknown;
  readonly code?: unknown;
  readonly statusCode?: unknown;
  readonly message?: unknown;
  readonly cause?: unknown;
}

function toShape(error: unknown): ErrorShape {
  return typeof error === 'object' && error !== null ? (error as ErrorShape) : {};
}

// Classifies a storage request failure (an SDK RestError, a network error, an abort by timeout).
export function toFailureKind(error: unknown): FailureKind {
  const { statusCode, code, name, cause } = toShape(error);
  if (typeof statusCode === 'number' && statusCode > 0) {
    if (statusCode === 412 && code === 'AppendPositionConditionNotMet') return 'position';
    if (statusCode === 408 || statusCode === 429 || statusCode >= 500) return 'transient';
    return 'final';
  }
  if (typeof code === 'string' && networkCodes.has(code)) return 'transient';
  if (name === 'AbortError' || name === 'TimeoutError') return 'transient';
  if (cause !== undefined && cause !== error) return toFailureKind(cause);
  // Anything else (no token from IMDS, bearer over plain HTTP, a bug) will not heal by retrying.
  return 'final';
}

// Milliseconds to wait before attempt `attempt + 1` (1-based): exponential from 250 ms, capped,
// with jitter so that many streams recovering at once do not retry in step.
export function toBackoffMs(attempt: number, capMs = 5000, random: () => number = Math.random): number {
  const base = Math.min(capMs, 250 * 2 ** Math.max(0, attempt - 1));
  return Math.round(base / 2 + (random() * base) / 2);
}

// A short description of a failure for messages and logs: status and service code, or the
// network code. Never the URL (it may carry a SAS) and never the service's free text.
export function toFailureText(error: unknown): string {
  const { statusCode, code, name, message, cause } = toShape(error);
  if (typeof statusCode === 'number' && statusCode > 0) return typeof code === 'string' && code !== '' ? `HTTP ${statusCode} ${code}` : `HTTP ${statusCode}`;
  if (typeof code === 'string' && code !== '') return code;
  if (name === 'AbortError' || name === 'TimeoutError') return 'request timed out';
  if (cause !== undefined && cause !== error) return toFailureText(cause);
  return typeof message === 'string' && message !== '' && !message.includes('://') ? message.slice(0, 200) : 'request failed';
}
