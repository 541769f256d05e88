// Managed-identity access tokens from the instance metadata service (IMDS), cached until shortly
// before they expire. The endpoint is configurable so tests use a loopback token server.
import { isTransientStatus, retryPolicies, withRetry } from './retry.js';
import { beforeTls } from './extra-ca-certificates.js';

// A managed identity as IMDS takes it: a client id, an object id, or neither (the system-assigned one).
export interface ManagedIdentity {
  readonly clientId?: string;
  readonly objectId?: string;
}

export const defaultImdsEndpoint = 'http://169.254.169.254';
export const storageResource = 'https://storage.azure.com/';

export interface AccessToken {
  readonly token: string;
  // Epoch milliseconds.
  readonly expiresOnMs: number;
}

export interface ImdsOptions {
  readonly endpoint: string;
  readonly now?: () => number;
  readonly attempts?: number;
}

// Refresh this long before expiry so an upload never starts with a token about to lapse.
const refreshMarginMs = 5 * 60 * 1000;
// IMDS answers 404 while an identity is being assigned and 410 while it is updated: both pass.
const isTransientImdsStatus = (status: number): boolean => status === 404 || status === 410 || isTransientStatus(status);

// A failed token request, and whether asking again may help.
class ImdsError extends Error {
  readonly transient: boolean;

  constructor(message: string, transient: boolean) {
    super(message);
    this.transient = transient;
  }
}

function toTokenUrl(endpoint: string, identity: ManagedIdentity, resource: string): string {
  const url = new URL('/metadata/identity/oauth2/token', endpoint);
  url.searchParams.set('api-version', '2018-02-01');
  url.searchParams.set('resource', resource);
  if (identity.clientId) url.searchParams.set('client_id', identity.clientId);
  if (identity.objectId) url.searchParams.set('object_id', identity.objectId);
  return url.toString();
}

// Fetches a token once per identity and resource; later calls reuse it until near expiry.
export class ImdsTokenSource {
  readonly #options: ImdsOptions;
  readonly #cache = new Map<string, Promise<AccessToken>>();

  constructor(options: ImdsOptions) {
    this.#options = options;
  }

  // A valid token for `identity` ({} = system-assigned) and `resource`; throws with a clear cause.
  async getToken(identity: ManagedIdentity, resource = storageResource): Promise<AccessToken> {
    const now = this.#options.now ?? Date.now;
    const key = `${identity.clientId ?? ''}|${identity.objectId ?? ''}|${resource}`;
    const cached = this.#cache.get(key);
    if (cached) {
      const token = await cached.catch(() => undefined);
      if (token && token.expiresOnMs - refreshMarginMs > now()) return token;
    }
    const fresh = this.#fetch(toTokenUrl(this.#options.endpoint, identity, resource));
    this.#cache.set(key, fresh);
    fresh.catch(() => this.#cache.delete(key));
    return fresh;
  }

  async #fetch(url: string): Promise<AccessToken> {
    const policy = { ...retryPolicies.imds, attempts: this.#options.attempts ?? retryPolicies.imds.attempts };
    try {
      return await withRetry(policy, () => this.#fetchOnce(url), { isTransient: (error) => !(error instanceof ImdsError) || error.transient });
    } catch (error) {
      throw new Error(`could not get a managed identity token from the instance metadata service: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  async #fetchOnce(url: string): Promise<AccessToken> {
    beforeTls();
    const response = await fetch(url, { headers: { Metadata: 'true' }, signal: AbortSignal.timeout(10_000) });
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined);
      throw new ImdsError(`HTTP ${response.status}`, isTransientImdsStatus(response.status));
    }
    return toAccessToken(await response.json(), this.#options.now ?? Date.now);
  }
}

function toAccessToken(body: unknown, now: () => number): AccessToken {
  const record = (body ?? {}) as Record<string, unknown>;
  const token = record['access_token'];
  if (typeof token !== 'string' || token === '') throw new ImdsError('the instance metadata service returned no access_token', false);
  const expiresOn = Number(record['expires_on']);
  const expiresIn = Number(record['expires_in']);
  const expiresOnMs = Number.isFinite(expiresOn) && expiresOn > 0 ? expiresOn * 1000 : now() + (Number.isFinite(expiresIn) ? expiresIn : 3600) * 1000;
  return { token, expiresOnMs };
}

const sharedSources = new Map<string, ImdsTokenSource>();

// The process-wide token source for an endpoint: script downloads and blob streams share its cache.
export function toImdsTokenSource(endpoint: string): ImdsTokenSource {
  let source = sharedSources.get(endpoint);
  if (!source) sharedSources.set(endpoint, (source = new ImdsTokenSource({ endpoint })));
  return source;
}
