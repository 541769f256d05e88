// Test certificates for protected settings, made by openssl at test time (protocol.md §6): no
// private key is ever committed.

import { createCipheriv, createHash, randomUUID, X509Certificate } from 'node:crypto';
import { chmod, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

export interface TestCertificate {
  readonly thumbprint: string;
  readonly crtPath: string;
  readonly prvPath: string;
}

// Makes a self-signed RSA 2048 certificate in `dir`, named `<THUMBPRINT>.crt` / `.prv` like the
// agent's (thumbprint: upper-case hex SHA-1 of the DER certificate; the key 0600). The one
// certificate maker of the tests; agent-certificates.ts gives the agent simulator its own view.
export async function makeCertificate(dir: string): Promise<TestCertificate> {
  const stem = join(dir, `.new-${randomUUID()}`);
  await execa('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-subj', '/CN=runcommand-handler-test', '-days', '2',
    '-keyout', `${stem}.prv`, '-out', `${stem}.crt`,
  ]);
  const thumbprint = new X509Certificate(await readFile(`${stem}.crt`, 'utf8')).fingerprint.replaceAll(':', '');
  const crtPath = join(dir, `${thumbprint}.crt`);
  const prvPath = join(dir, `${thumbprint}.prv`);
  await chmod(`${stem}.prv`, 0o600);
  await rename(`${stem}.prv`, prvPath);
  await rename(`${stem}.crt`, crtPath);
  return { thumbprint, crtPath, prvPath };
}

// Encrypts `plaintext` for the certificate like the agent receives it: base64 DER CMS EnvelopedData.
export async function encryptProtectedSettings(
  plaintext: string,
  crtPath: string,
  cipher: 'des3' | 'aes128' | 'aes256' = 'des3',
): Promise<string> {
  return (await encryptToDer(Buffer.from(plaintext, 'utf8'), crtPath, cipher)).toString('base64');
}

// The DER CMS EnvelopedData of `plaintext` (any bytes) for the certificate, byte for byte.
export async function encryptToDer(plaintext: Uint8Array, crtPath: string, cipher: 'des3' | 'aes128' | 'aes256' = 'des3'): Promise<Buffer> {
  const { stdout } = await execa('openssl', ['cms', '-encrypt', '-binary', '-outform', 'DER', `-${cipher}`, crtPath], {
    input: plaintext,
    encoding: 'buffer', stripFinalNewline: false,
  });
  return Buffer.from(stdout);
}

// An AES-256 envelope of `plaintext` whose last DER byte is `lastByte` (the last ciphertext byte:
// random, so 1 envelope in 256 has it). Deterministic and cheap instead of encrypting until one
// does: openssl makes an envelope, openssl recovers its content key, then the content is encrypted
// again here under IVs until the last byte fits, and the IV and ciphertext (same lengths) are
// written over the originals.
export async function encryptToDerEndingWith(plaintext: Uint8Array, certificate: TestCertificate, lastByte: number): Promise<Buffer> {
  const der = await encryptToDer(plaintext, certificate.crtPath, 'aes256');
  // rsaEncryption OID, NULL parameters, then the 256-byte encrypted key (RSA 2048) as an OCTET STRING.
  const keyHeader = Buffer.from('06092a864886f70d010101050004820100', 'hex');
  // aes256-CBC OID, then the 16-byte IV as an OCTET STRING.
  const ivHeader = Buffer.from('060960864801650304012a0410', 'hex');
  const keyAt = der.indexOf(keyHeader) + keyHeader.length;
  const ivAt = der.indexOf(ivHeader) + ivHeader.length;
  if (keyAt < keyHeader.length || ivAt < ivHeader.length) throw new Error('unexpected envelope layout');
  const { stdout: key } = await execa('openssl', ['pkeyutl', '-decrypt', '-inkey', certificate.prvPath, '-pkeyopt', 'rsa_padding_mode:pkcs1'], {
    input: der.subarray(keyAt, keyAt + 256), encoding: 'buffer', stripFinalNewline: false,
  });
  for (let i = 0; ; i += 1) {
    const iv = createHash('sha256').update(String(i)).digest().subarray(0, 16);
    const cipher = createCipheriv('aes-256-cbc', Buffer.from(key), iv);
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    if (ciphertext.at(-1) !== lastByte) continue;
    iv.copy(der, ivAt);
    ciphertext.copy(der, der.length - ciphertext.length);
    return der;
  }
}
