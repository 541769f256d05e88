// Where an output stream goes and how it authenticates (run-command.md §1, §6): a full SAS URL,
// the bare URL plus a protected SAS token (with or without '?'), or a managed identity whose
// token comes from IMDS. The SDK client is wrapped in the three operations streaming needs.
import type { AppendBlobClient, IHttpClient, StoragePipelineOptions } from '@azure/storage-blob';
import type { Agent } from 'node:http';
import type { BlobTarget, ManagedIdentity } from '../config/run-command.js';
import type { AccessToken } from '../util/imds.js';
import { appendBlock } from './append-request.js';
import { makeBoundedHttpClient } from './bounded-http-client.js';
import { toLoggableUrl } from '../util/loggable-url.js';
import { mayReceiveStorageToken, storageHostPatterns } from '../util/storage-host.js';

// A resolved blob target.
export interface BlobAddress {
  // The blob's URL without its query.
  readonly url: string;
  // The URL as logs and messages show it (no query, so no SAS).
  readonly loggable: string;
  // SAS query string without its '?': the protected token if given, else the URL's own query.
  readonly sas?: string;
  // Used only when there is no SAS.
  readonly managedIdentity?: ManagedIdentity;
}

// The operations a blob stream performs on its append blob.
export interface AppendTarget {
  readonly loggable: string;
  // Creates the append blob, or empties it (an existing blob of any type is replaced).
  reset(signal: AbortSignal): Promise<void>;
  // The blob's current length in bytes.
  readLength(signal: AbortSignal): Promise<number>;
  // Appends `bytes` only if the blob is exactly `position` bytes long (appendPosition).
  append(bytes: Buffer, position: number, signal: AbortSignal): Promise<void>;
}

// Where managed-identity tokens come from (ImdsTokenSource).
export interface TokenSource {
  getToken(identity: ManagedIdentity, resource?: string): Promise<AccessToken>;
}

// What a target needs for managed identities.
export interface TargetDeps {
  readonly tokens: TokenSource;
  // Called with every token obtained, so the redaction layer knows it.
  readonly onToken: (token: string) => void;
  // Whether a token may be sent to a URL (default: https to an Azure blob storage host,
  // util/storage-host.ts). Only tests that serve storage on loopback replace it.
  readonly mayReceiveToken?: (url: URL) => boolean;
}

// Why a blob is not written with a managed identity (no '://' in it: it reaches the −101 message).
export const tokenRefusedText = `a managed-identity token is sent only over https to an Azure blob storage host (${storageHostPatterns.join(', ')}); give the blob a SAS instead`;

// Resolves a validated BlobTarget into its URL, SAS and identity.
export function toBlobAddress(target: BlobTarget): BlobAddress {
  const parsed = new URL(target.uri);
  const query = parsed.search.replace(/^\?/, '');
  parsed.search = '';
  parsed.hash = '';
  const token = target.sasToken?.replace(/^\?/, '');
  const sas = token || query || undefined;
  const url = parsed.toString();
  return {
    url,
    loggable: toLoggableUrl(url),
    ...(sas ? { sas } : {}),
    ...(!sas && target.managedIdentity ? { managedIdentity: target.managedIdentity } : {}),
  };
}

// Retries are the stream's business (it must see every failure to keep appends exactly-once).
// Responses are read through a client that keeps at most 64 KiB of any body (bounded-http-client.ts):
// a hostile endpoint's huge body never reaches the heap. `onAgent` learns the agent the pipeline
// chose (a proxy's, from HTTPS_PROXY/NO_PROXY), for the appends that bypass it.
function toPipelineOptions(onAgent: (agent: Agent | undefined) => void): StoragePipelineOptions {
  const bounded = makeBoundedHttpClient();
  const httpClient: IHttpClient = {
    sendRequest: (resource) => {
      onAgent(resource.agent as Agent | undefined);
      return bounded.sendRequest(resource);
    },
  };
  return { retryOptions: { maxTries: 1 }, userAgentOptions: { userAgentPrefix: 'runcommand-handler' }, httpClient };
}

// A managed-identity token is refused before it is asked for: the run fails with −101 and this reason.
function assertMayReceiveToken(address: BlobAddress, deps: TargetDeps): void {
  if (!(deps.mayReceiveToken ?? mayReceiveStorageToken)(new URL(address.url))) throw new Error(tokenRefusedText);
}

async function getToken(identity: ManagedIdentity, deps: TargetDeps): Promise<AccessToken> {
  const token = await deps.tokens.getToken(identity);
  deps.onToken(token.token);
  return token;
}

// The SDK is loaded on first use: a daemon whose runs do not stream never pays its memory.
async function makeClient(address: BlobAddress, deps: TargetDeps, onAgent: (agent: Agent | undefined) => void): Promise<AppendBlobClient> {
  const { AnonymousCredential, AppendBlobClient, newPipeline } = await import('@azure/storage-blob');
  const identity = address.managedIdentity;
  const options = toPipelineOptions(onAgent);
  if (address.sas !== undefined || identity === undefined) {
    const url = address.sas === undefined ? address.url : `${address.url}?${address.sas}`;
    return new AppendBlobClient(url, newPipeline(new AnonymousCredential(), options));
  }
  assertMayReceiveToken(address, deps);
  const credential = {
    getToken: async () => {
      const token = await getToken(identity, deps);
      return { token: token.token, expiresOnTimestamp: token.expiresOnMs };
    },
  };
  return new AppendBlobClient(address.url, newPipeline(credential, options));
}

// The credentials of one append: the SAS, else a (cached) managed-identity token.
async function toAppendAuth(address: BlobAddress, deps: TargetDeps): Promise<{ sas?: string; bearer?: string }> {
  const identity = address.managedIdentity;
  if (address.sas !== undefined || identity === undefined) return address.sas === undefined ? {} : { sas: address.sas };
  assertMayReceiveToken(address, deps);
  return { bearer: (await getToken(identity, deps)).token };
}

// Wraps the SDK's append blob client for one address; appends go straight (append-request.ts),
// through the agent of the pipeline's own earlier requests to this blob (the reset, or the length
// read that starts a resumed stream, always come first).
export function makeAppendTarget(address: BlobAddress, deps: TargetDeps): AppendTarget {
  let pending: Promise<AppendBlobClient> | undefined;
  let agent: Agent | undefined;
  const sdkClient = (): Promise<AppendBlobClient> => (pending ??= makeClient(address, deps, (chosen) => void (agent = chosen)));
  return {
    loggable: address.loggable,
    reset: async (abortSignal) => {
      const client = await sdkClient();
      try {
        await client.create({ abortSignal });
      } catch (error) {
        // A blob that cannot be overwritten in place (e.g. one with snapshots): delete it first.
        if ((error as { statusCode?: unknown }).statusCode !== 409) throw error;
        await client.deleteIfExists({ deleteSnapshots: 'include', abortSignal });
        await client.create({ abortSignal });
      }
    },
    readLength: async (abortSignal) => (await (await sdkClient()).getProperties({ abortSignal })).contentLength ?? 0,
    append: async (bytes, position, signal) => {
      const auth = await toAppendAuth(address, deps);
      await appendBlock({ url: address.url, ...auth, ...(agent ? { agent } : {}), signal }, bytes, position);
    },
  };
}
