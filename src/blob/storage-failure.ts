// How a failed storage request is treated (issue 4), on the handler's one retry policy
// (util/retry.ts): transient faults are retried with backoff, a failed append position is resolved
// by reading the blob's length, anything else is final.
import { isNetworkError, isTransientStatus, retryPolicies, toRetryDelayMs } from '../util/retry.js';

// What to do about a failed request.
export type FailureKind = 'transient' | 'position' | 'final';

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
  const { statusCode, code, cause } = toShape(error);
  if (typeof statusCode === 'number' && statusCode > 0) {
    if (statusCode === 412 && code === 'AppendPositionConditionNotMet') return 'position';
    return isTransientStatus(statusCode) ? 'transient' : 'final';
  }
  if (isNetworkError(error)) return 'transient';
  if (cause !== undefined && cause !== error) return toFailureKind(cause);
  // Anything else (no token from IMDS, bearer over plain HTTP, a bug) will not heal by retrying.
  return 'final';
}

// Milliseconds to wait before attempt `attempt + 1` (1-based) of an append: the retry policy's
// exponential backoff from 250 ms, capped, with jitter so that streams recovering at once do not retry in step.
export function toBackoffMs(attempt: number, capMs = retryPolicies.blobAppend.maxDelayMs, random: () => number = Math.random): number {
  return toRetryDelayMs({ ...retryPolicies.blobAppend, maxDelayMs: capMs }, attempt, random);
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
