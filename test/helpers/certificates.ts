// Test certificates for protected settings, made by openssl at test time (protocol.md §6): no
// private key is ever committed.

import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

export interface TestCertificate {
  readonly thumbprint: string;
  readonly crtPath: string;
  readonly prvPath: string;
}

// Makes a self-signed RSA 2048 certificate in `dir`, named `<THUMBPRINT>.crt` / `.prv` like the agent's.
export async function makeCertificate(dir: string): Promise<TestCertificate> {
  const tmpCrt = join(dir, 'new.crt');
  const tmpPrv = join(dir, 'new.prv');
  await execa('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=test', '-days', '2',
    '-keyout', tmpPrv, '-out', tmpCrt,
  ]);
  const { stdout } = await execa('openssl', ['x509', '-in', tmpCrt, '-noout', '-fingerprint', '-sha1']);
  const thumbprint = stdout.slice(stdout.indexOf('=') + 1).replace(/:/g, '').trim().toUpperCase();
  const crtPath = join(dir, `${thumbprint}.crt`);
  const prvPath = join(dir, `${thumbprint}.prv`);
  await rename(tmpCrt, crtPath);
  await rename(tmpPrv, prvPath);
  return { thumbprint, crtPath, prvPath };
}

// Encrypts `plaintext` for the certificate like the agent receives it: base64 DER CMS EnvelopedData.
export async function encryptProtectedSettings(
  plaintext: string,
  crtPath: string,
  cipher: 'des3' | 'aes256' = 'des3',
): Promise<string> {
  return (await encryptToDer(Buffer.from(plaintext, 'utf8'), crtPath, cipher)).toString('base64');
}

// The DER CMS EnvelopedData of `plaintext` (any bytes) for the certificate, byte for byte.
export async function encryptToDer(plaintext: Uint8Array, crtPath: string, cipher: 'des3' | 'aes256' = 'des3'): Promise<Buffer> {
  const { stdout } = await execa('openssl', ['cms', '-encrypt', '-binary', '-outform', 'DER', `-${cipher}`, crtPath], {
    input: plaintext,
    encoding: 'buffer', stripFinalNewline: false,
  });
  return Buffer.from(stdout);
}
