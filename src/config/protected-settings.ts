// Decryption of protectedSettings (protocol.md §6): base64 DER CMS EnvelopedData for the
// certificate `<certDir>/<THUMBPRINT>.crt` / `.prv`. First through libcrypto in the long-lived
// rch-crypto helper (cms-decryptor.ts: no process per run), else through the `openssl` CLI like
// Microsoft's handler. Errors name the thumbprint and a short cause, never ciphertext or plaintext.

import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { packageRoot } from '../util/package-root.js';
import { runProcess } from '../util/run-process.js';
import { SettingsError, toErrorMessage } from '../errors.js';
import { CmsDecryptor, FastPathUnavailable, fastPathDisabledBy } from './cms-decryptor.js';

export interface DecryptOptions {
  // The openssl executable (tests point it at a wrapper).
  readonly openssl?: string;
  readonly timeoutMs?: number;
  // The libcrypto helper, or null for openssl only. Default: this process's shared helper, unless
  // RUNCOMMAND_HANDLER_CMS_FAST_PATH=0.
  readonly decryptor?: CmsDecryptor | null;
}

// How many decryptions succeeded through each path in this process (tests and benchmarks check it).
const succeeded = { libcrypto: 0, openssl: 0 };

export function decryptionCounts(): Readonly<typeof succeeded> {
  return { ...succeeded };
}

// scripts/build-native.mjs puts it there; the package ships it at the same place.
const helperPath = join(packageRoot, 'dist', 'native', 'rch-crypto');
let shared: CmsDecryptor | undefined;

function sharedDecryptor(): CmsDecryptor | null {
  if (fastPathDisabledBy(process.env) !== undefined) return null;
  return (shared ??= new CmsDecryptor(helperPath));
}

// Which path decrypts protected settings, for the daemon's start-up log: 'libcrypto (libcrypto.so.3:
// OpenSSL 3.0.x …)' or 'openssl cms (fallback: <why>)'. Starts the helper when it is enabled.
export async function describeDecryptionPath(): Promise<string> {
  const decryptor = sharedDecryptor();
  if (!decryptor) return `openssl cms (fallback: ${String(fastPathDisabledBy(process.env))})`;
  try {
    return `libcrypto (${await decryptor.probe()})`;
  } catch (error) {
    return `openssl cms (fallback: ${toErrorMessage(error)})`;
  }
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

// libcrypto in the helper when it can answer. When it cannot, or when it fails to decrypt, openssl
// decides: a failure then costs one openssl process (failures are rare: bad input), and in exchange
// the error says exactly what it always said (the openssl CLI's words differ between versions) and
// any case where the CLI succeeds and the helper does not still decrypts.
async function decryptDer(der: Buffer, crt: string, prv: string, thumbprint: string, options: DecryptOptions): Promise<Uint8Array> {
  const decryptor = options.decryptor === undefined ? sharedDecryptor() : options.decryptor;
  let fastCause: string | undefined;
  if (decryptor) {
    try {
      const result = await decryptor.decrypt(der, crt, prv);
      if (result.ok) {
        succeeded.libcrypto += 1;
        return result.plaintext;
      }
      fastCause = result.cause;
    } catch (error) {
      if (!(error instanceof FastPathUnavailable)) throw error;
    }
  }
  return decryptWithOpenssl(der, crt, prv, thumbprint, options, fastCause);
}

// `openssl cms`, then `openssl smime` with the same arguments (older agents' recipe), DER on stdin.
// When openssl cannot even start, the helper's cause (if it had one) is the better explanation.
async function decryptWithOpenssl(der: Buffer, crt: string, prv: string, thumbprint: string, options: DecryptOptions, fastCause: string | undefined): Promise<Uint8Array> {
  const args = ['-decrypt', '-inform', 'DER', '-recip', crt, '-inkey', prv];
  let cause = '';
  for (const command of ['cms', 'smime']) {
    const result = await runProcess(options.openssl ?? 'openssl', [command, ...args], {
      input: der,
      timeoutMs: options.timeoutMs ?? 30_000,
      env: { ...process.env, LC_ALL: 'C' },
    });
    if (result.exitCode === 0) {
      succeeded.openssl += 1;
      return result.stdout;
    }
    const fallback = result.timedOut ? 'openssl timed out' : (result.error?.message ?? `openssl exit code ${String(result.exitCode)}`);
    cause ||= result.error && fastCause !== undefined ? fastCause : toCause(result.stderr, fallback);
  }
  throw new SettingsError(protectedField, `could not be decrypted with certificate ${thumbprint} (${der.length} bytes of CMS data): ${cause}`);
}

// First line of openssl's stderr, printable and short (it never holds the input or output).
function toCause(stderr: Uint8Array, fallback: string): string {
  const firstLine = Buffer.from(stderr).toString('utf8').split('\n').find((line) => line.trim() !== '') ?? fallback;
  const printable = firstLine.trim().replace(/[^\x20-\x7e]/g, '?');
  return printable.length > maxCauseChars ? `${printable.slice(0, maxCauseChars)}…` : printable;
}

// Parses the plaintext, then wipes its bytes (the parsed object is the only copy kept).
function parsePlaintext(plaintext: Uint8Array): unknown {
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(plaintext);
    return JSON.parse(text);
  } catch {
    throw new SettingsError(protectedField, 'decrypted protected settings are not JSON');
  } finally {
    plaintext.fill(0);
  }
}
