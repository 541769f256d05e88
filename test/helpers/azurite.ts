// A real Azurite blob service for the streaming tests: started from node_modules on a free loopback
// port with its own workspace, stoppable and restartable on the same port (outage tests), over
// HTTP or HTTPS (a self-signed certificate made with openssl; needed for `--oauth basic`).
import { afterAll, beforeAll } from 'vitest';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BlobSASPermissions, BlobServiceClient, generateBlobSASQueryParameters, StorageSharedKeyCredential, type ContainerClient, type StoragePipelineOptions } from '@azure/storage-blob';

export const accountName = 'devstoreaccount1';
const storageSuffix = '.blob.core.windows.net';
// An Azure Stack Hub blob domain (`<account>.blob.azurestack.<operator's domain>`).
const stackHubSuffix = '.blob.azurestack.external';
// NODE_OPTIONS for a handler that must reach Azurite under a storage host name (storage-dns.mjs).
export const storageDnsPreload = `--import=${join(dirname(fileURLToPath(import.meta.url)), 'storage-dns.mjs')}`;
const accountKey = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const mainPath = createRequire(import.meta.url).resolve('azurite/dist/src/blob/main.js');

export interface AzuriteOptions {
  // Serve HTTPS with a fresh self-signed certificate for 127.0.0.1.
  readonly https?: boolean;
  // `--oauth basic`: accept bearer tokens (HTTPS only).
  readonly oauth?: boolean;
}

export interface Azurite {
  readonly port: number;
  // `<scheme>://127.0.0.1:<port>/devstoreaccount1`.
  readonly endpoint: string;
  // PEM of the certificate when serving HTTPS (for NODE_EXTRA_CA_CERTS).
  readonly caPath?: string;
  readonly admin: BlobServiceClient;
  // A blob URL (no query) in `container`.
  toBlobUrl(container: string, blob: string): string;
  // The blob's URL under a real storage host name (`<account>.blob.core.windows.net:<port>`), for a
  // handler started with `storageDnsPreload` (names under that suffix resolve to 127.0.0.1).
  toStorageHostUrl(container: string, blob: string): string;
  // The same under an Azure Stack Hub host name (`<account>.blob.azurestack.external:<port>`).
  toStackHubUrl(container: string, blob: string): string;
  // A blob SAS query string (no leading '?') with the given permissions, valid for an hour.
  toSas(container: string, blob: string, permissions: string): string;
  // Creates a container (idempotent) and returns its client.
  makeContainer(name: string): Promise<ContainerClient>;
  // sha256 (hex) and length of a blob, streamed.
  hashBlob(container: string, blob: string): Promise<{ sha256: string; length: number }>;
  // Stops the process gracefully (Azurite saves its metadata); the port stays ours to restart on.
  stop(): Promise<void>;
  // Starts it again on the same port and workspace.
  start(): Promise<void>;
  // Stops it and removes its workspace.
  dispose(): Promise<void>;
}

// Starts Azurite and waits until it listens.
export async function startAzurite(options: AzuriteOptions = {}): Promise<Azurite> {
  const location = await mkdtemp(join(tmpdir(), 'rch-azurite-'));
  const tls = options.https || options.oauth ? makeCertificate(location) : undefined;
  const args = ['--blobHost', '127.0.0.1', '--location', location, '--skipApiVersionCheck', '--disableTelemetry', '--silent'];
  if (tls) args.push('--cert', tls.certPath, '--key', tls.keyPath);
  if (options.oauth) args.push('--oauth', 'basic');
  let child: ChildProcess | undefined;
  let port = 0;
  const launch = async (): Promise<void> => {
    const started = await spawnAzurite([...args, '--blobPort', String(port)]);
    child = started.child;
    port = started.port;
  };
  await launch();
  const scheme = tls ? 'https' : 'http';
  const endpoint = `${scheme}://127.0.0.1:${port}/${accountName}`;
  const credential = new StorageSharedKeyCredential(accountName, accountKey);
  const admin = new BlobServiceClient(endpoint, credential, tls ? await toTrustingOptions(tls.certPath) : {});
  const stop = async (): Promise<void> => {
    if (child) await stopProcess(child);
    child = undefined;
  };
  return {
    port,
    endpoint,
    ...(tls ? { caPath: tls.certPath } : {}),
    admin,
    toBlobUrl: (container, blob) => `${endpoint}/${container}/${blob}`,
    toStorageHostUrl: (container, blob) => `${scheme}://${accountName}${storageSuffix}:${port}/${container}/${blob}`,
    toStackHubUrl: (container, blob) => `${scheme}://${accountName}${stackHubSuffix}:${port}/${container}/${blob}`,
    toSas: (containerName, blobName, permissions) => generateBlobSASQueryParameters(
      { containerName, blobName, permissions: BlobSASPermissions.parse(permissions), startsOn: new Date(Date.now() - 60_000), expiresOn: new Date(Date.now() + 3_600_000) },
      credential,
    ).toString(),
    makeContainer: async (name) => {
      const container = admin.getContainerClient(name);
      await container.createIfNotExists();
      return container;
    },
    hashBlob: async (container, blob) => hashStream(await admin.getContainerClient(container).getBlobClient(blob).download()),
    stop,
    start: launch,
    dispose: async () => {
      await stop();
      await rm(location, { recursive: true, force: true });
    },
  };
}

async function spawnAzurite(args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [mainPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`azurite did not start: ${output}`)), 30_000);
    const fail = (error: Error): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    };
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = /successfully listens on https?:\/\/[^:]+:(\d+)/.exec(output);
      if (!match) return;
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stdout?.resume();
      child.stderr?.resume();
      resolve({ child, port: Number(match[1]) });
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => fail(new Error(`azurite exited with ${code}: ${output}`)));
  });
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

function makeCertificate(dir: string): { certPath: string; keyPath: string } {
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2',
    '-subj', '/CN=127.0.0.1', '-addext', `subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:${accountName}${storageSuffix},DNS:${accountName}${stackHubSuffix}`,
  ], { stdio: 'ignore' });
  return { certPath, keyPath };
}

// The test process trusts the test certificate only for its own admin client: the SDK passes
// `tlsOptions` on to its core pipeline (core-rest-pipeline's tlsPolicy).
async function toTrustingOptions(caPath: string): Promise<StoragePipelineOptions> {
  const options = { tlsOptions: { ca: await readFile(caPath, 'utf8') } };
  return options as StoragePipelineOptions;
}

async function hashStream(response: { readableStreamBody?: NodeJS.ReadableStream | undefined }): Promise<{ sha256: string; length: number }> {
  const hash = createHash('sha256');
  let length = 0;
  for await (const chunk of response.readableStreamBody ?? []) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    hash.update(bytes);
    length += bytes.length;
  }
  return { sha256: hash.digest('hex'), length };
}

// sha256 (hex) and length of a local file, streamed.
export async function hashFile(path: string): Promise<{ sha256: string; length: number }> {
  const { createReadStream } = await import('node:fs');
  return hashStream({ readableStreamBody: createReadStream(path) });
}

// Starts one Azurite with `container` for the test file (beforeAll) and stops it (afterAll);
// returns the running emulator.
export function useAzurite(container: string): () => Azurite {
  let azurite: Azurite | undefined;
  beforeAll(async () => {
    azurite = await startAzurite();
    await azurite.makeContainer(container);
  });
  afterAll(async () => {
    await azurite?.dispose();
  });
  return () => {
    if (azurite === undefined) throw new Error('Azurite is not running (useAzurite outside a test?)');
    return azurite;
  };
}
