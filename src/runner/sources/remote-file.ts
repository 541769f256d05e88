// Fetches a script or artifact the way run-command.md §3 orders the credentials: the URL with its
// SAS, then a managed-identity token (storage hosts only), then an anonymous GET. 401/403/404
// move on to the next way; transient failures are retried inside one way (http-download.ts).
import type { ManagedIdentity } from '../../config/run-command.js';
import { toLoggableUrl } from '../../util/loggable-url.js';
import { mayReceiveStorageToken } from '../../util/storage-host.js';
import { toErrorMessage } from '../../errors.js';
import type { AccessToken } from '../../util/imds.js';
import { DownloadError, downloadToFile, type DownloadBounds } from './http-download.js';

export interface RemoteFile {
  readonly uri: string;
  readonly sasToken?: string;
  readonly managedIdentity?: ManagedIdentity;
}

// What a download needs besides the file: tokens, bounds, and which hosts take a token.
export interface RemoteFileDeps {
  readonly tokenSource?: { getToken(identity: ManagedIdentity): Promise<AccessToken> };
  readonly bounds: DownloadBounds;
  // Whether a managed-identity token may be sent to a URL (default: https to an Azure blob storage
  // host, util/storage-host.ts). Only tests that serve storage on loopback replace it.
  readonly mayReceiveToken?: (url: URL) => boolean;
  readonly warn?: (message: string) => void;
  // Aborts the download when the run is canceled or times out.
  readonly signal?: AbortSignal;
}

// The storage API version sent with a bearer token (required by Azure Storage for OAuth).
export const storageApiVersion = '2021-08-06';

interface Method {
  readonly label: string;
  readonly url: string;
  readonly headers: () => Promise<Record<string, string>>;
}

const noHeaders = (): Promise<Record<string, string>> => Promise.resolve({});

// `url` with `sasToken` (with or without its leading '?') added to its query.
export function toSasUrl(url: string, sasToken: string): string {
  const token = sasToken.replace(/^\?/, '');
  const parsed = new URL(url);
  parsed.search = parsed.search === '' ? `?${token}` : `${parsed.search}&${token}`;
  return parsed.href;
}

function hasSignature(url: URL): boolean {
  return [...url.searchParams.keys()].some((key) => key.toLowerCase() === 'sig');
}

// The ways to try, in order.
function toMethods(file: RemoteFile, deps: RemoteFileDeps): Method[] {
  const url = new URL(file.uri);
  const bare = new URL(url.href);
  if (hasSignature(url)) bare.search = '';
  const methods: Method[] = [];
  if (file.sasToken !== undefined) methods.push({ label: 'with the SAS token', url: toSasUrl(file.uri, file.sasToken), headers: noHeaders });
  else if (hasSignature(url)) methods.push({ label: 'with the SAS in the URL', url: url.href, headers: noHeaders });
  const identity = file.managedIdentity;
  const tokenSource = deps.tokenSource;
  const tokenAllowed = identity !== undefined && tokenSource !== undefined && (deps.mayReceiveToken ?? mayReceiveStorageToken)(bare);
  if (identity !== undefined && tokenSource !== undefined && !tokenAllowed) {
    deps.warn?.(`the managed identity is not used for ${toLoggableUrl(bare.href)}: a token is sent only over https to an Azure blob storage host`);
  }
  if (identity !== undefined && tokenSource !== undefined && tokenAllowed) {
    const headers = async (): Promise<Record<string, string>> => {
      const { token } = await tokenSource.getToken(identity);
      return { Authorization: `Bearer ${token}`, 'x-ms-version': storageApiVersion };
    };
    methods.push({ label: 'with the managed identity', url: bare.href, headers });
  }
  methods.push({ label: 'anonymously', url: bare.href, headers: noHeaders });
  return methods;
}

// Downloads `file` into `dest`; throws an Error whose message names host, path and every cause.
export async function downloadRemoteFile(file: RemoteFile, dest: string, deps: RemoteFileDeps): Promise<number> {
  const url = parseHttpUrl(file.uri);
  const causes: string[] = [];
  for (const method of toMethods(file, deps)) {
    let headers: Record<string, string>;
    try {
      headers = await method.headers();
    } catch (error) {
      causes.push(`${method.label}: ${toErrorMessage(error)}`);
      continue;
    }
    try {
      return await downloadToFile({ url: method.url, headers, dest, bounds: deps.bounds, ...(deps.warn ? { warn: deps.warn } : {}), ...(deps.signal ? { signal: deps.signal } : {}) });
    } catch (error) {
      causes.push(`${method.label}: ${toErrorMessage(error)}`);
      if (!(error instanceof DownloadError && error.nextMethod)) break;
    }
  }
  throw new Error(`could not download ${toLoggableUrl(url.href)}: ${causes.join('; ')}`);
}

function parseHttpUrl(uri: string): URL {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new Error('the URL is not valid');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`only http and https URLs are downloaded, not ${url.protocol.replace(':', '')}`);
  return url;
}
