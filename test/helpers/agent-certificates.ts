// The agent's tenant certificate for protected settings (protocol.md §1, §6): a self-signed RSA
// certificate in the agent's lib dir, `<THUMBPRINT>.crt` + `.prv`, and CMS encryption to it.
import { execa } from 'execa';
import { encryptProtectedSettings, makeCertificate as makeTestCertificate } from './certificates.js';

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
  const certificate = await makeTestCertificate(layout.libDir);
  layout.certificate = certificate;
  return certificate;
}

// Encrypts plaintext to the certificate as the agent receives it: base64 of DER CMS EnvelopedData.
export async function encryptForCertificate(
  certificate: AgentCertificate,
  plaintext: string,
  cipher: ProtectedSettingsCipher = 'des3',
): Promise<string> {
  return encryptProtectedSettings(plaintext, certificate.crtPath, cipher);
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
