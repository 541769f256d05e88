// The agent's tenant certificate for protected settings (protocol.md §1, §6): a self-signed RSA
// certificate in the agent's lib dir, `<THUMBPRINT>.crt` + `.prv`, and CMS encryption to it.
import { randomUUID, X509Certificate } from 'node:crypto';
import { chmod, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';

export interface AgentCertificate {
  // Upper-case hex SHA-1 of the DER certificate, no colons.
  readonly thumbprint: string;
  readonly crtPath: string;
  readonly prvPath: string;
}

// Content ciphers seen in protected settings: 3DES in every captured sample, AES must work too.
export type ProtectedSettingsCipher = 'des3' | 'aes128' | 'aes256';

// Makes a self-signed RSA certificate in `layout.libDir` and makes it the layout's current one.
export async function makeCertificate(layout: {
  readonly libDir: string;
  certificate: AgentCertificate | undefined;
}): Promise<AgentCertificate> {
  const stem = path.join(layout.libDir, `.new-${randomUUID()}`);
  await execa('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
    '-subj', '/CN=runcommand-handler-test', '-keyout', `${stem}.prv`, '-out', `${stem}.crt`,
  ]);
  const pem = await readFile(`${stem}.crt`, 'utf8');
  // X509Certificate.fingerprint is the SHA-1 of the DER encoding, upper-case, colon-separated.
  const thumbprint = new X509Certificate(pem).fingerprint.replaceAll(':', '');
  const certificate: AgentCertificate = {
    thumbprint,
    crtPath: path.join(layout.libDir, `${thumbprint}.crt`),
    prvPath: path.join(layout.libDir, `${thumbprint}.prv`),
  };
  await chmod(`${stem}.prv`, 0o600);
  await rename(`${stem}.prv`, certificate.prvPath);
  await rename(`${stem}.crt`, certificate.crtPath);
  layout.certificate = certificate;
  return certificate;
}

// Encrypts plaintext to the certificate as the agent receives it: base64 of DER CMS EnvelopedData.
export async function encryptForCertificate(
  certificate: AgentCertificate,
  plaintext: string,
  cipher: ProtectedSettingsCipher = 'des3',
): Promise<string> {
  const { stdout } = await execa(
    'openssl',
    ['cms', '-encrypt', '-binary', '-outform', 'DER', `-${cipher}`, certificate.crtPath],
    { input: plaintext, encoding: 'buffer', stripFinalNewline: false },
  );
  return Buffer.from(stdout).toString('base64');
}

// Decrypts like Microsoft's handler does (protocol.md §6); lets tests check a round trip.
export async function decryptWithCertificate(certificate: AgentCertificate, base64: string): Promise<string> {
  const { stdout } = await execa(
    'openssl',
    ['cms', '-decrypt', '-inform', 'DER', '-recip', certificate.crtPath, '-inkey', certificate.prvPath],
    { input: Buffer.from(base64, 'base64'), encoding: 'buffer', stripFinalNewline: false },
  );
  return Buffer.from(stdout).toString('utf8');
}
