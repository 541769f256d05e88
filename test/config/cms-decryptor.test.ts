// The libcrypto helper (rch-crypto) through its client, both real, with certificates and envelopes
// made by openssl at test time.
import { execFileSync, spawn } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import ts from 'typescript';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CmsDecryptor, FastPathUnavailable, type FastDecryption } from '../../src/config/cms-decryptor.js';
import { encryptToDer, encryptToDerEndingWith, makeCertificate, type TestCertificate } from '../helpers/certificates.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const helperPath = join(root, 'dist/native/rch-crypto');
let dir = '';
let otherDir = '';
let mine: TestCertificate;
let other: TestCertificate;
let decryptor: CmsDecryptor;

beforeAll(async () => {
  execFileSync(process.execPath, [join(root, 'scripts/build-native.mjs')], { stdio: 'inherit' });
  dir = await mkdtemp(join(tmpdir(), 'cms-decryptor-'));
  otherDir = await mkdtemp(join(tmpdir(), 'cms-decryptor-other-'));
  [mine, other] = await Promise.all([makeCertificate(dir), makeCertificate(otherDir)]);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(otherDir, { recursive: true, force: true });
});

afterEach(() => decryptor?.close());

function plaintextOf(result: FastDecryption): Buffer {
  if (!result.ok) throw new Error(`expected a plaintext, got: ${result.cause}`);
  return result.plaintext;
}

// What `openssl cms -decrypt` says first on stderr for the same input (the openssl path's cause).
async function opensslFirstLine(der: Uint8Array, certificate: TestCertificate): Promise<string> {
  const args = ['cms', '-decrypt', '-inform', 'DER', '-recip', certificate.crtPath, '-inkey', certificate.prvPath];
  const result = await execa('openssl', args, { input: der, reject: false, encoding: 'buffer', stripFinalNewline: false });
  expect(result.exitCode).not.toBe(0);
  return Buffer.from(result.stderr).toString('utf8').split('\n')[0] ?? '';
}

describe('CmsDecryptor', () => {
  it('says which libcrypto it loaded', async () => {
    decryptor = new CmsDecryptor(helperPath);
    expect(await decryptor.probe()).toMatch(/^libcrypto\.so(\.3|\.1\.1)?: OpenSSL \d/);
  });

  it('decrypts AES-256-CBC and 3DES-CBC envelopes with one helper process', async () => {
    decryptor = new CmsDecryptor(helperPath);
    const text = '{"runAsPassword":"p4ss"}';
    for (const cipher of ['aes256', 'des3'] as const) {
      const der = await encryptToDer(Buffer.from(text), mine.crtPath, cipher);
      expect(plaintextOf(await decryptor.decrypt(der, mine.crtPath, mine.prvPath)).toString('utf8')).toBe(text);
    }
    const pid = decryptor.pid;
    await decryptor.decrypt(await encryptToDer(Buffer.from(text), mine.crtPath), mine.crtPath, mine.prvPath);
    expect(decryptor.pid).toBe(pid);
  });

  it('takes an envelope whose last byte is 0x0a and returns NUL and newline bytes intact', async () => {
    decryptor = new CmsDecryptor(helperPath);
    const plaintext = Buffer.from([0x00, 0x0a, 0x7b, 0x0d, 0x0a, 0x00, 0xff, 0x0a, 0x0a]);
    const der = await encryptToDerEndingWith(plaintext, mine, 0x0a);
    expect(der.at(-1)).toBe(0x0a);
    expect([...plaintextOf(await decryptor.decrypt(der, mine.crtPath, mine.prvPath))]).toEqual([...plaintext]);
    // openssl agrees it is a valid envelope.
    const { stdout } = await execa('openssl', ['cms', '-decrypt', '-inform', 'DER', '-recip', mine.crtPath, '-inkey', mine.prvPath], { input: der, encoding: 'buffer', stripFinalNewline: false });
    expect([...stdout]).toEqual([...plaintext]);
  });

  it('fails like openssl cms for another certificate and for data that is not CMS', async () => {
    decryptor = new CmsDecryptor(helperPath);
    const der = await encryptToDer(Buffer.from('{"a":1}'), other.crtPath, 'aes256');
    const wrong = await decryptor.decrypt(der, mine.crtPath, mine.prvPath);
    expect(wrong.ok).toBe(false);
    if (!wrong.ok) expect(wrong.cause.startsWith(await opensslFirstLine(der, mine))).toBe(true);
    const garbage = Buffer.from('not a CMS structure at all\n');
    const bad = await decryptor.decrypt(garbage, mine.crtPath, mine.prvPath);
    expect(bad).toMatchObject({ ok: false, cause: expect.stringMatching(/^Error reading SMIME Content Info: error:[0-9A-F]+:/) as unknown });
    const missing = await decryptor.decrypt(der, join(dir, 'absent.crt'), mine.prvPath);
    expect(missing).toMatchObject({ ok: false, cause: expect.stringContaining('unable to load recipient certificate') as unknown });
    // Still serving after failures.
    const good = await encryptToDer(Buffer.from('{"b":2}'), mine.crtPath);
    expect(plaintextOf(await decryptor.decrypt(good, mine.crtPath, mine.prvPath)).toString()).toBe('{"b":2}');
  });

  it('reads a certificate and key again when their files are replaced', async () => {
    decryptor = new CmsDecryptor(helperPath);
    const swapDir = await mkdtemp(join(tmpdir(), 'cms-decryptor-swap-'));
    try {
      const crt = join(swapDir, 'agent.crt');
      const prv = join(swapDir, 'agent.prv');
      for (const [certificate, text] of [[mine, '{"n":1}'], [other, '{"n":2}'], [mine, '{"n":3}']] as const) {
        // The agent's way: new files renamed into place.
        await copyFile(certificate.crtPath, `${crt}.new`);
        await copyFile(certificate.prvPath, `${prv}.new`);
        await rename(`${crt}.new`, crt);
        await rename(`${prv}.new`, prv);
        const der = await encryptToDer(Buffer.from(text), certificate.crtPath);
        expect(plaintextOf(await decryptor.decrypt(der, crt, prv)).toString()).toBe(text);
      }
      await rm(prv);
      const der = await encryptToDer(Buffer.from('{"n":4}'), mine.crtPath);
      expect(await decryptor.decrypt(der, crt, prv)).toMatchObject({ ok: false, cause: expect.stringContaining('unable to load private key') as unknown });
    } finally {
      await rm(swapDir, { recursive: true, force: true });
    }
  });

  it('answers 50 requests sent at once, each with its own plaintext', async () => {
    decryptor = new CmsDecryptor(helperPath);
    const texts = Array.from({ length: 50 }, (_, i) => `{"i":${i},"pad":"${'x'.repeat(i * 37)}"}\n`);
    const envelopes = await Promise.all(texts.map((text, i) => encryptToDer(Buffer.from(text), mine.crtPath, i % 2 ? 'des3' : 'aes256')));
    const results = await Promise.all(envelopes.map((der) => decryptor.decrypt(der, mine.crtPath, mine.prvPath)));
    expect(results.map((result) => plaintextOf(result).toString('utf8'))).toEqual(texts);
  });

  it('starts a new helper when the old one was killed, even with a request already on its way', async () => {
    decryptor = new CmsDecryptor(helperPath);
    const der = await encryptToDer(Buffer.from('{"k":1}'), mine.crtPath);
    await decryptor.decrypt(der, mine.crtPath, mine.prvPath);
    const first = decryptor.pid as number;
    process.kill(first, 'SIGKILL');
    expect(plaintextOf(await decryptor.decrypt(der, mine.crtPath, mine.prvPath)).toString()).toBe('{"k":1}');
    const second = decryptor.pid as number;
    expect(second).not.toBe(first);
    process.kill(second, 'SIGKILL');
    while (decryptor.pid === second) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(plaintextOf(await decryptor.decrypt(der, mine.crtPath, mine.prvPath)).toString()).toBe('{"k":1}');
  });

  it('gives up on a helper that does not answer in time, and serves the next request from a new one', async () => {
    decryptor = new CmsDecryptor(helperPath, { timeoutMs: 300 });
    const der = await encryptToDer(Buffer.from('{"s":1}'), mine.crtPath);
    await decryptor.decrypt(der, mine.crtPath, mine.prvPath);
    const stopped = decryptor.pid as number;
    process.kill(stopped, 'SIGSTOP');
    await expect(decryptor.decrypt(der, mine.crtPath, mine.prvPath)).rejects.toThrow(/gave no reply within 300 ms/);
    expect(plaintextOf(await decryptor.decrypt(der, mine.crtPath, mine.prvPath)).toString()).toBe('{"s":1}');
    expect(decryptor.pid).not.toBe(stopped);
  });

  it('reports a missing helper as unavailable, not as a failed decryption', async () => {
    decryptor = new CmsDecryptor(join(dir, 'no-such-helper'));
    await expect(decryptor.probe()).rejects.toBeInstanceOf(FastPathUnavailable);
    await expect(decryptor.decrypt(Buffer.from([0x30]), mine.crtPath, mine.prvPath)).rejects.toThrow(/no-such-helper is missing/);
  });

  it('stops starting a helper that exits before it is ready three times in a row', async () => {
    decryptor = new CmsDecryptor('/bin/false');
    for (let i = 0; i < 2; i += 1) await expect(decryptor.probe()).rejects.toThrow('rch-crypto exited with code 1');
    await expect(decryptor.probe()).rejects.toThrow('(3 times before it was ready)');
    await expect(decryptor.decrypt(Buffer.from([0x30]), mine.crtPath, mine.prvPath)).rejects.toThrow('(3 times before it was ready)');
    expect(decryptor.pid).toBeUndefined();
  });

  it('does not keep an idle process alive', async () => {
    // A plain-node copy of the client (not vitest), which must exit on its own after one request.
    const moduleDir = await mkdtemp(join(tmpdir(), 'cms-module-'));
    try {
      const source = await readFile(join(root, 'src/config/cms-decryptor.ts'), 'utf8');
      const compilerOptions = { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 };
      await writeFile(join(moduleDir, 'cms-decryptor.mjs'), ts.transpileModule(source, { compilerOptions }).outputText);
      const der = await encryptToDer(Buffer.from('{"idle":true}'), mine.crtPath);
      const script = `import { CmsDecryptor } from './cms-decryptor.mjs';
const result = await new CmsDecryptor(${JSON.stringify(helperPath)}).decrypt(Buffer.from('${der.toString('base64')}', 'base64'), ${JSON.stringify(mine.crtPath)}, ${JSON.stringify(mine.prvPath)});
process.stdout.write(result.ok ? result.plaintext : 'failed: ' + result.cause);`;
      await writeFile(join(moduleDir, 'main.mjs'), script);
      const child = spawn(process.execPath, [join(moduleDir, 'main.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.on('close', (exitCode) => (clearTimeout(timer), resolve(exitCode)));
      });
      expect({ code, output }).toEqual({ code: 0, output: '{"idle":true}' });
    } finally {
      await rm(moduleDir, { recursive: true, force: true });
    }
  });
});
