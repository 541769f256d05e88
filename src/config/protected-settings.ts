// Decryption of protectedSettings (protocol.md §6): base64 DER CMS EnvelopedData for the
// certificate `<certDir>/<THUMBPRINT>.crt` / `.prv`, through the `openssl` CLI like Microsoft's
// handler. Errors name the thumbprint and a short cause, never ciphertext or plaintext.

import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { runProcess } from '../util/run-process.js';
import { SettingsError } from '../errors.js';

export interface DecryptOptions {
  // The openssl executable (tests point it at a wrapper).
  readonly openssl?: string;
  readonly timeoutMs?: number;
}

const thumbprintField = 'protectedSettingsCertThumbprint';
const protectedField = 'protectedSettings';
const maxCauseChars = 200;

// Decrypts base64 protected settings with the agent's certificate for `thumbprint` and parses the
// plaintext JSON. Throws SettingsError for anything wrong with the input or the certificate.
export async function decryptProtectedSettings(
  base64: string,
  thumbprint: string | undefined,
  certDir: string,
  options: DecryptOptions = {},
): Promise<unknown> {
  const tp = normalizeThumbprint(thumbprint);
  const crt = join(certDir, `${tp}.crt`);
  const prv = join(certDir, `${tp}.prv`);
  await requireFile(crt, tp, certDir);
  await requireFile(prv, tp, certDir);
  const der = decodeBase64(base64);
  const plaintext = await decryptDer(der, crt, prv, tp, options);
  return parsePlaintext(plaintext);
}

// Upper-cases a thumbprint after checking it is 40 hex digits, so it is safe in a path.
function normalizeThumbprint(thumbprint: string | undefined): string {
  const trimmed = thumbprint?.trim() ?? '';
  if (trimmed === '') throw new SettingsError(thumbprintField, 'is required when protectedSettings is present');
  if (!/^[0-9A-Fa-f]{40}$/.test(trimmed)) throw new SettingsError(thumbprintField, 'must be 40 hexadecimal characters (SHA-1)');
  return trimmed.toUpperCase();
}

async function requireFile(path: string, thumbprint: string, certDir: string): Promise<void> {
  try {
    await access(path, constants.R_OK);
  } catch {
    const file = path.slice(path.lastIndexOf('/') + 1);
    throw new SettingsError(thumbprintField, `certificate ${thumbprint}: ${file} not found or not readable in ${certDir}`);
  }
}

function decodeBase64(base64: string): Buffer {
  const compact = base64.replace(/\s+/g, '');
  if (compact === '' || compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) {
    throw new SettingsError(protectedField, 'is not valid base64');
  }
  return Buffer.from(compact, 'base64');
}

// `openssl cms`, then `openssl smime` with the same arguments (older agents' recipe), DER on stdin.
async function decryptDer(der: Buffer, crt: string, prv: string, thumbprint: string, options: DecryptOptions): Promise<Uint8Array> {
  const args = ['-decrypt', '-inform', 'DER', '-recip', crt, '-inkey', prv];
  let cause = '';
  for (const command of ['cms', 'smime']) {
    const result = await runProcess(options.openssl ?? 'openssl', [command, ...args], {
      input: der,
      timeoutMs: options.timeoutMs ?? 30_000,
      env: { ...process.env, LC_ALL: 'C' },
    });
    if (result.exitCode === 0) return result.stdout;
    const fallback = result.timedOut ? 'openssl timed out' : (result.error?.message ?? `openssl exit code ${String(result.exitCode)}`);
    cause ||= toCause(result.stderr, fallback);
  }
  throw new SettingsError(protectedField, `could not be decrypted with certificate ${thumbprint} (${der.length} bytes of CMS data): ${cause}`);
}

// First line of openssl's stderr, printable and short (it never holds the input or output).
function toCause(stderr: Uint8Array, fallback: string): string {
  const firstLine = Buffer.from(stderr).toString('utf8').split('\n').find((line) => line.trim() !== '') ?? fallback;
  const printable = firstLine.trim().replace(/[^\x20-\x7e]/g, '?');
  return printable.length > maxCauseChars ? `${printable.slice(0, maxCauseChars)}…` : printable;
}

function parsePlaintext(plaintext: Uint8Array): unknown {
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(plaintext);
    return JSON.parse(text);
  } catch {
    throw new SettingsError(protectedField, 'decrypted protected settings are not JSON');
  }
}
