import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ImdsTokenSource } from '../../../src/util/imds.js';
import { downloadRemoteFile, storageApiVersion, toSasUrl, type RemoteFile, type RemoteFileDeps } from '../../../src/runner/sources/remote-file.js';
import { mayReceiveStorageToken } from '../../../src/util/storage-host.js';
import { serve, startLoopbackServer, type LoopbackServer } from '../../helpers/loopback-http.js';
import { useTempDir } from '../../helpers/temp-dir.js';

const dir = useTempDir('remote');
const sig = 'SiGnAtUrE%2Bsecret';
let storage: LoopbackServer;
let imds: LoopbackServer;

beforeEach(async () => {
  storage = await startLoopbackServer();
  imds = await startLoopbackServer();
  imds.route('/metadata/identity/oauth2/token', serve(JSON.stringify({ access_token: 'mi-token', expires_in: '3600' })));
});
afterEach(async () => {
  await storage.close();
  await imds.close();
});

function deps(overrides: Partial<RemoteFileDeps> = {}): RemoteFileDeps {
  return {
    bounds: { maxBytes: 1 << 20, totalMs: 5000, attempts: 2, backoffMs: 5, maxRedirects: 2 },
    tokenSource: new ImdsTokenSource({ endpoint: imds.origin, attempts: 1 }),
    mayReceiveToken: () => true,
    ...overrides,
  };
}

async function fetchFile(file: RemoteFile, options: Partial<RemoteFileDeps> = {}): Promise<string> {
  const dest = join(dir(), 'f');
  await downloadRemoteFile(file, dest, deps(options));
  return readFile(dest, 'utf8');
}

async function messageOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(() => 'resolved', (error: unknown) => (error as Error).message);
}

describe('toSasUrl', () => {
  it('adds the token to the query, with or without its leading ?', () => {
    expect(toSasUrl('https://a.blob.core.windows.net/c/s.sh', '?sv=1&sig=x')).toBe('https://a.blob.core.windows.net/c/s.sh?sv=1&sig=x');
    expect(toSasUrl('https://a.example/s.sh?v=2', 'sig=x')).toBe('https://a.example/s.sh?v=2&sig=x');
  });
});

describe('mayReceiveStorageToken', () => {
  it('allows https to the blob hosts of the Azure clouds only, by exact suffix', () => {
    for (const url of [
      'https://acct.blob.core.windows.net/c/s.sh',
      'https://ACCT.Blob.Core.Windows.Net/c/s.sh',
      'https://acct.blob.core.usgovcloudapi.net/c/s.sh',
      'https://acct.blob.core.chinacloudapi.cn/c/s.sh',
      'https://acct.z1.blob.storage.azure.net/c/s.sh',
    ]) expect(mayReceiveStorageToken(new URL(url)), url).toBe(true);
    for (const url of [
      'http://acct.blob.core.windows.net/c/s.sh',
      'https://acct.blob.core.attacker.example/c/s.sh',
      'https://acct.blob.core.windows.net.attacker.example/c/s.sh',
      'https://acctblob.core.windows.net/c/s.sh',
      'https://blob.core.windows.net/c/s.sh',
      'https://.blob.core.windows.net/c/s.sh',
      'https://acct.blob.storage.azure.net.evil.example/c',
      'https://evil-blob.core.windows.net/c',
      'https://127.0.0.1/c/s.sh',
      'ftp://acct.blob.core.windows.net/c/s.sh',
    ]) expect(mayReceiveStorageToken(new URL(url)), url).toBe(false);
  });

  it('allows https to Azure Stack Hub blob hosts as Microsoft recognises them: whole labels blob.azurestack, with labels on both sides', () => {
    for (const url of [
      'https://acct.blob.azurestack.external/c/s.sh',
      'https://ACCT.Blob.AzureStack.Contoso.Com/c/s.sh',
      'https://acct.blob.azurestack.region1.contoso.com:8443/c/s.sh',
      'https://acct.blob.azurestack.external./c/s.sh',
    ]) expect(mayReceiveStorageToken(new URL(url)), url).toBe(true);
    for (const url of [
      'http://acct.blob.azurestack.external/c/s.sh',
      'https://user:pw@acct.blob.azurestack.external/c/s.sh',
      'https://blob.azurestack.external/c/s.sh',
      'https://acct.blob.azurestack/c/s.sh',
      'https://acct.blob.azurestack./c/s.sh',
      'https://acctblob.azurestack.external/c/s.sh',
      'https://acct.blob.azurestackx.external/c/s.sh',
      'https://acct.xblob.azurestack.external/c/s.sh',
      'https://acct.blob.local.azurestack.external/c/s.sh',
      'https://acct.queue.azurestack.external/c/s.sh',
      'ftp://acct.blob.azurestack.external/c/s.sh',
    ]) expect(mayReceiveStorageToken(new URL(url)), url).toBe(false);
  });
});

describe('downloadRemoteFile', () => {
  it('uses the SAS token first', async () => {
    storage.route('/c/s.sh', (req, res) => res.writeHead(req.url?.includes(`sig=${sig}`) ? 200 : 403).end('with sas'));
    expect(await fetchFile({ uri: `${storage.origin}/c/s.sh`, sasToken: `?sv=2024&sig=${sig}` })).toBe('with sas');
    expect(storage.seen).toHaveLength(1);
  });

  it('falls back to the managed identity token (Bearer and x-ms-version), without the SAS', async () => {
    storage.route('/c/s.sh', (req, res) => res.writeHead(req.headers.authorization === 'Bearer mi-token' ? 200 : 403).end('with token'));
    const text = await fetchFile({ uri: `${storage.origin}/c/s.sh?sv=1&sig=${sig}`, managedIdentity: { clientId: 'abc' } });
    expect(text).toBe('with token');
    expect(storage.seen.map((s) => s.query)).toEqual([`?sv=1&sig=${sig}`, '']);
    expect(storage.seen[1]?.headers['x-ms-version']).toBe(storageApiVersion);
    expect(imds.seen[0]?.query).toContain('client_id=abc');
  });

  it('sends no token to a host that is not blob storage', async () => {
    storage.route('/s.sh', (req, res) => res.writeHead(req.headers.authorization ? 500 : 200).end('anonymous'));
    const { mayReceiveToken: _all, ...defaults } = deps();
    await downloadRemoteFile({ uri: `${storage.origin}/s.sh`, managedIdentity: {} }, join(dir(), 'f'), defaults);
    expect(await readFile(join(dir(), 'f'), 'utf8')).toBe('anonymous');
    expect(imds.seen).toHaveLength(0);
  });

  it('sends no token over plain http or to a look-alike of a storage host (default rule)', async () => {
    // The loopback server stands in for hosts that are not storage: each URL must get no token.
    storage.route('/c/s.sh', (req, res) => res.writeHead(req.headers.authorization ? 500 : 200).end('anonymous'));
    const { mayReceiveToken: _all, ...defaults } = deps();
    const warnings: string[] = [];
    await downloadRemoteFile({ uri: `${storage.origin}/c/s.sh`, managedIdentity: {} }, join(dir(), 'f'), { ...defaults, warn: (m) => warnings.push(m) });
    expect(imds.seen).toHaveLength(0);
    expect(warnings.join('\n')).toContain('a token is sent only over https to an Azure blob storage host');
  });

  it('asks for no token at all for a look-alike host or for plain http (default rule)', async () => {
    const asked: string[] = [];
    const tokenSource = { getToken: () => { asked.push('token'); return Promise.resolve({ token: 't', expiresOnMs: Date.now() + 3_600_000 }); } };
    const { mayReceiveToken: _all, ...defaults } = deps({ tokenSource });
    const quick = { ...defaults, bounds: { ...defaults.bounds, attempts: 1, totalMs: 2000 } };
    for (const uri of ['https://acct.blob.core.attacker.invalid/c/s.sh', 'http://acct.blob.core.windows.net.invalid/c/s.sh']) {
      await messageOf(downloadRemoteFile({ uri, managedIdentity: {} }, join(dir(), 'f'), quick));
    }
    expect(asked).toEqual([]);
  });

  it('tries anonymously when the SAS is refused and the token cannot be had', async () => {
    imds.route('/metadata/identity/oauth2/token', (_req, res) => res.writeHead(400).end());
    storage.route('/c/s.sh', (req, res) => res.writeHead(req.url === '/c/s.sh' ? 200 : 403).end('public'));
    expect(await fetchFile({ uri: `${storage.origin}/c/s.sh`, sasToken: `sig=${sig}`, managedIdentity: {} })).toBe('public');
  });

  it('names host, path and every cause when all ways fail, and never the SAS', async () => {
    storage.route('/c/s.sh', (_req, res) => res.writeHead(403).end());
    const message = await messageOf(downloadRemoteFile({ uri: `${storage.origin}/c/s.sh?sig=${sig}`, managedIdentity: {} }, join(dir(), 'f'), deps()));
    expect(message).toBe(
      `could not download ${storage.origin}/c/s.sh: with the SAS in the URL: HTTP 403 Forbidden; with the managed identity: HTTP 403 Forbidden; anonymously: HTTP 403 Forbidden`,
    );
    expect(message).not.toContain('SiGnAtUrE');
  });

  it('does not try other ways after a transient failure outlasts its retries', async () => {
    storage.route('/c/s.sh', (_req, res) => res.writeHead(503).end());
    const message = await messageOf(downloadRemoteFile({ uri: `${storage.origin}/c/s.sh`, sasToken: `sig=${sig}` }, join(dir(), 'f'), deps()));
    expect(message).toBe(`could not download ${storage.origin}/c/s.sh: with the SAS token: HTTP 503 Service Unavailable`);
    expect(storage.seen).toHaveLength(2);
  });

  it('reports a network failure with its cause', async () => {
    const closed = `${storage.origin}/x`;
    await storage.close();
    const message = await messageOf(downloadRemoteFile({ uri: closed }, join(dir(), 'f'), deps()));
    expect(message).toBe(`could not download ${closed}: anonymously: network error (ECONNREFUSED)`);
    storage = await startLoopbackServer();
  });

  it('refuses URLs that are not http or https', async () => {
    expect(await messageOf(downloadRemoteFile({ uri: 'file:///etc/passwd' }, join(dir(), 'f'), deps()))).toBe('only http and https URLs are downloaded, not file');
  });
});
