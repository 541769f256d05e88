// The one retry policy of the handler: what is transient, how long to wait before the next attempt
// (exponential backoff, capped, with jitter so that many clients recovering at once do not retry in
// step) and how many attempts a caller makes. Downloads, the instance metadata service and append
// blobs all use it; each names its policy in `retryPolicies` (defaults written once, as data).

export interface RetryPolicy {
  // Attempts in all, the first included.
  readonly attempts: number;
  // Wait before the second attempt; doubled for each further one.
  readonly firstDelayMs: number;
  readonly maxDelayMs: number;
}

export const retryPolicies = {
  // Script and artifact downloads (run-command.md §3).
  download: { attempts: 5, firstDelayMs: 1000, maxDelayMs: 30_000 },
  // Managed-identity tokens from the instance metadata service.
  imds: { attempts: 5, firstDelayMs: 400, maxDelayMs: 5000 },
  // Creating or emptying an append blob before the script starts.
  blobCreate: { attempts: 3, firstDelayMs: 250, maxDelayMs: 5000 },
  // Appends: retried until the final flush gives up, so no attempt bound of their own.
  blobAppend: { attempts: Number.POSITIVE_INFINITY, firstDelayMs: 250, maxDelayMs: 5000 },
  // The handler's own durable files (journals, status files) when the disk is full or failing:
  // retried until they land (issue #6); callers stop earlier only when a newer write supersedes.
  durableWrite: { attempts: Number.POSITIVE_INFINITY, firstDelayMs: 200, maxDelayMs: 10_000 },
} as const satisfies Record<string, RetryPolicy>;

// File-system errors that a later attempt can get past: no space or quota, I/O errors, descriptor
// exhaustion. Anything else (ENOENT, ENOTDIR, EACCES…) will fail the same way again.
const transientFileCodes = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EMFILE', 'ENFILE', 'EAGAIN', 'EBUSY', 'EINTR', 'ENOMEM']);

export function isTransientFileError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && transientFileCodes.has(code);
}

// Whether a failing durable write's retry is worth a log line: the first, then every 20th, so a
// disk that stays full for hours does not fill the log too.
export function shouldLogRetry(attempt: number): boolean {
  return attempt === 1 || attempt % 20 === 0;
}

// Milliseconds to wait after failed attempt `attempt` (1-based): half the exponential step plus a
// random share of the other half.
export function toRetryDelayMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const step = Math.min(policy.maxDelayMs, policy.firstDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(step / 2 + (random() * step) / 2);
}

// HTTP statuses worth another attempt: timeouts, throttling and server faults. Anything else
// (400, 401, 403, 404, 409, 412…) will answer the same again.
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

// Node and undici network error codes that say nothing about the request's own validity.
const networkCodes = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN',
  'EAI_AGAIN', 'ENOTFOUND', 'ESOCKETTIMEDOUT', 'REQUEST_SEND_ERROR', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT',
]);

// True for a failure of the network itself (connection refused or reset, DNS, a request timeout),
// found on the error or on its causes.
export function isNetworkError(error: unknown): boolean {
  for (let current = error, depth = 0; typeof current === 'object' && current !== null && depth < 5; depth += 1) {
    const { code, name, cause } = current as { code?: unknown; name?: unknown; cause?: unknown };
    if (typeof code === 'string' && networkCodes.has(code)) return true;
    if (name === 'AbortError' || name === 'TimeoutError') return true;
    if (cause === current) break;
    current = cause;
  }
  return false;
}

// Runs `attempt` until it succeeds, fails for good (`isTransient` false) or the policy's attempts
// are spent; waits between attempts as the policy says, and stops waiting when `signal` aborts.
export async function withRetry<T>(
  policy: RetryPolicy,
  attempt: (attempt: number) => Promise<T>,
  options: { isTransient: (error: unknown) => boolean; signal?: AbortSignal; onRetry?: (error: unknown, attempt: number, delayMs: number) => void },
): Promise<T> {
  for (let number = 1; ; number += 1) {
    try {
      return await attempt(number);
    } catch (error) {
      if (!options.isTransient(error) || number >= policy.attempts || options.signal?.aborted) throw error;
      const delayMs = toRetryDelayMs(policy, number);
      options.onRetry?.(error, number, delayMs);
      await waitFor(delayMs, options.signal);
    }
  }
}

function waitFor(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}
