// NODE_EXTRA_CA_CERTS deferred to the daemon's first TLS connection: the daemon's environment, and
// the trust itself, through node:https and fetch against a loopback server whose certificate only
// the extra file vouches for. (Each test file runs in its own process: patching node:tls here
// reaches no other file. The unusable file's test runs first: its patch then lies under the other's.)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, get, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adoptDeferredCaCertificates,
  beforeTls,
  deferredCaCertsVariable,
  toDaemonEnvironment,
} from '../../src/util/extra-ca-certificates.js';

let dir: string;
let server: Server;
let url: string;
let caPath: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rch-extra-ca-'));
  caPath = join(dir, 'ca.pem');
  const keyPath = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', caPath, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  server = createServer({ key: readFileSync(keyPath), cert: readFileSync(caPath) }, (_request, response) => response.end('trusted'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function httpsGet(target: string): Promise<string> {
  return new Promise((resolve) => {
    get(target, { agent: false }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve(body));
    }).on('error', (error: NodeJS.ErrnoException) => resolve(`error ${error.code ?? error.message}`));
  });
}

const viaFetch = (target: string): Promise<string> =>
  fetch(target).then((response) => response.text(), (error: Error & { cause?: { code?: string } }) => `error ${error.cause?.code ?? error.message}`);

describe('an unusable extra CA file', () => {
  it('is reported once and ignored: connections go on with the bundled roots', async () => {
    const bad = join(dir, 'missing.pem');
    const env: NodeJS.ProcessEnv = { [deferredCaCertsVariable]: bad };
    const warnings: string[] = [];
    adoptDeferredCaCertificates(env, (message) => warnings.push(message));
    beforeTls();
    expect(await httpsGet(url)).toMatch(/^error /);
    expect(await httpsGet(url)).toMatch(/^error /);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(bad);
  });
});

describe('extra CA certificates', () => {
  it('starts a daemon with NODE_EXTRA_CA_CERTS under the deferred name, and leaves an environment without it alone', () => {
    const env = { PATH: '/usr/bin', NODE_EXTRA_CA_CERTS: '/etc/extra.pem' };
    expect(toDaemonEnvironment(env)).toEqual({ PATH: '/usr/bin', [deferredCaCertsVariable]: '/etc/extra.pem' });
    expect(env.NODE_EXTRA_CA_CERTS).toBe('/etc/extra.pem');
    const without = { PATH: '/usr/bin' };
    expect(toDaemonEnvironment(without)).toBe(without);
  });

  it('trusts the deferred file from the first TLS connection on (https and fetch), puts the variable back, and shares one context', async () => {
    // This process started without the file: the server is not trusted yet.
    expect(await httpsGet(url)).toMatch(/^error /);
    const env: NodeJS.ProcessEnv = { [deferredCaCertsVariable]: caPath };
    const warnings: string[] = [];
    expect(adoptDeferredCaCertificates(env, (message) => warnings.push(message))).toBe(caPath);
    expect(env).toEqual({ NODE_EXTRA_CA_CERTS: caPath });
    // Trusted once the first module that connects has called beforeTls (each one does, test/architecture).
    expect(await httpsGet(url)).toMatch(/^error /);
    beforeTls();
    expect(await httpsGet(url)).toBe('trusted');
    expect(await viaFetch(url)).toBe('trusted');
    // The default context is built once; a caller's own `ca` still decides alone.
    expect(tls.createSecureContext()).toBe(tls.createSecureContext());
    expect(await httpsGetWithOwnCa(url, tls.rootCertificates.join('\n'))).toMatch(/^error /);
    expect(warnings).toEqual([]);
  });
});

function httpsGetWithOwnCa(target: string, ca: string): Promise<string> {
  return new Promise((resolve) => {
    get(target, { agent: false, ca }, (response) => {
      response.resume();
      response.on('end', () => resolve('trusted'));
    }).on('error', (error: NodeJS.ErrnoException) => resolve(`error ${error.code ?? error.message}`));
  });
}

