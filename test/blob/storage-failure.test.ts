import { RestError } from '@azure/storage-blob';
import { describe, expect, it } from 'vitest';
import { toBackoffMs, toFailureKind, toFailureText } from '../../src/blob/storage-failure.js';

const http = (statusCode: number, code?: string): RestError => new RestError('service said no', { statusCode, ...(code ? { code } : {}) });

describe('toFailureKind', () => {
  it('retries network failures, timeouts, throttling and server errors', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'REQUEST_SEND_ERROR']) {
      expect(toFailureKind(new RestError('net', { code }))).toBe('transient');
    }
    for (const status of [408, 429, 500, 502, 503, 504]) expect(toFailureKind(http(status))).toBe('transient');
    expect(toFailureKind(Object.assign(new Error('aborted'), { name: 'AbortError' }))).toBe('transient');
    expect(toFailureKind(new DOMException('timed out', 'TimeoutError'))).toBe('transient');
  });

  it('resolves a failed append position by reading the length, not by failing', () => {
    expect(toFailureKind(http(412, 'AppendPositionConditionNotMet'))).toBe('position');
    expect(toFailureKind(http(412, 'MaxBlobSizeConditionNotMet'))).toBe('final');
  });

  it('gives up at once on errors that retrying cannot fix', () => {
    for (const [status, code] of [[400, 'InvalidHeaderValue'], [401, 'NoAuthenticationInformation'], [403, 'AuthorizationPermissionMismatch'], [404, 'ContainerNotFound'], [409, 'BlockCountExceedsLimit'], [413, 'RequestBodyTooLarge']] as const) {
      expect(toFailureKind(http(status, code))).toBe('final');
    }
    expect(toFailureKind(new Error('could not get a managed identity token from the instance metadata service: HTTP 400'))).toBe('final');
  });
});

describe('toBackoffMs', () => {
  it('grows exponentially from 250 ms with jitter and stays under the cap', () => {
    expect(toBackoffMs(1, 5000, () => 0)).toBe(125);
    expect(toBackoffMs(1, 5000, () => 1)).toBe(250);
    expect(toBackoffMs(3, 5000, () => 1)).toBe(1000);
    expect(toBackoffMs(30, 5000, () => 1)).toBe(5000);
    expect(toBackoffMs(30, 5000, () => 0)).toBe(2500);
  });
});

describe('toFailureText', () => {
  it('names the status and service code, or the network code, never a URL', () => {
    expect(toFailureText(http(403, 'AuthorizationPermissionMismatch'))).toBe('HTTP 403 AuthorizationPermissionMismatch');
    expect(toFailureText(new RestError('connect ECONNREFUSED 127.0.0.1:1', { code: 'ECONNREFUSED' }))).toBe('ECONNREFUSED');
    expect(toFailureText(new Error('GET https://a.blob.core.windows.net/c/b?sig=SECRET failed'))).toBe('request failed');
  });
});
