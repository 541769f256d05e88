// The Windows decryption (EnvelopedCms, certificate by thumbprint) run for real under pwsh, with the
// certificate loaded from a PFX made by openssl instead of the LocalMachine\My store.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { decryptProtectedSettings, toDecryptScript, toEncodedCommandArgs } from '../../src/config/protected-settings.windows.js';
import { SettingsError } from '../../src/errors.js';
import { encryptProtectedSettings, makeCertificate } from '../helpers/certificates.js';
import { pwshTestsRun, requirePwsh } from '../helpers/pwsh.js';
import { useTempDir } from '../helpers/temp-dir.js';

const dir = useTempDir('win-decrypt');
const secret = { protectedParameters: [{ name: 'TOKEN', value: 'ünïcödé-s3cr3t' }], runAsPassword: 'p@ss' };

async function makePfx(): Promise<{ thumbprint: string; pfx: string; crtPath: string }> {
  const certificate = await makeCertificate(dir());
  const pfx = join(dir(), 'cert.pfx');
  await execa('openssl', ['pkcs12', '-export', '-in', certificate.crtPath, '-inkey', certificate.prvPath, '-out', pfx, '-passout', 'pass:']);
  return { thumbprint: certificate.thumbprint, pfx, crtPath: certificate.crtPath };
}

describe('Windows decryption command', () => {
  it('finds the certificate in LocalMachine\\My by thumbprint and reads the ciphertext from stdin', () => {
    const script = toDecryptScript('AB'.repeat(20));
    expect(script).toContain("X509Store('My', 'LocalMachine')");
    expect(script).toContain(`Find('FindByThumbprint', '${'AB'.repeat(20)}', $false)`);
    expect(script).toContain('[Console]::In.ReadToEnd()');
    const args = toEncodedCommandArgs(script);
    expect(args.slice(0, 5)).toEqual(['-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-EncodedCommand']);
    expect(Buffer.from(args[5] ?? '', 'base64').toString('utf16le')).toBe(script);
  });

  it('refuses a malformed thumbprint before running anything', async () => {
    await expect(decryptProtectedSettings('AAAA', 'not-hex', '', { powershell: '/nonexistent' })).rejects.toThrow(SettingsError);
  });
});

describe.runIf(pwshTestsRun)('Windows decryption under pwsh (EnvelopedCms)', () => {
  it.each(['des3', 'aes256'] as const)('decrypts %s protected settings with the certificate of the thumbprint', async (cipher) => {
    const { thumbprint, pfx, crtPath } = await makePfx();
    const base64 = await encryptProtectedSettings(JSON.stringify(secret), crtPath, cipher);
    const plaintext = await decryptProtectedSettings(base64, thumbprint.toLowerCase(), '', { powershell: requirePwsh(), certificate: { kind: 'pfx', path: pfx } });
    expect(plaintext).toEqual(secret);
  });

  // Without the script's own trap, PowerShell under -EncodedCommand writes the exception to stderr as
  // CLIXML, and the cause read '#< CLIXML'.
  it.each([
    ['an envelope that is not CMS', 'decoding the CMS envelope (EnvelopedCms.Decode) failed: '],
    ['an envelope for another certificate', 'decrypting with the private key of the certificate (EnvelopedCms.Decrypt) failed: '],
  ] as const)('names the failing step and its cause in plain text for %s, never the data', async (what, step) => {
    const { thumbprint, pfx, crtPath } = await makePfx();
    const other = await makeCertificate(dir());
    const base64 = what === 'an envelope that is not CMS'
      ? Buffer.from(JSON.stringify(secret)).toString('base64')
      : await encryptProtectedSettings(JSON.stringify(secret), other.crtPath);
    expect(crtPath).not.toBe(other.crtPath);
    const error = await decryptProtectedSettings(base64, thumbprint, '', { powershell: requirePwsh(), certificate: { kind: 'pfx', path: pfx } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SettingsError);
    const message = (error as Error).message;
    expect(message.startsWith(`protectedSettings: could not be decrypted with certificate ${thumbprint}: ${step}`), message).toBe(true);
    expect(message.length).toBeGreaterThan(`protectedSettings: could not be decrypted with certificate ${thumbprint}: ${step}`.length);
    expect(message).not.toContain('CLIXML');
    expect(message).not.toContain(base64.slice(0, 20));
    expect(message).not.toContain('s3cr3t');
  });

  it('names the thumbprint and the cause when the certificate is not there, never the data', async () => {
    const { pfx, crtPath } = await makePfx();
    const base64 = await encryptProtectedSettings(JSON.stringify(secret), crtPath);
    const error = await decryptProtectedSettings(base64, 'C0FFEE'.padEnd(40, '0'), '', { powershell: requirePwsh(), certificate: { kind: 'pfx', path: pfx } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SettingsError);
    expect((error as Error).message).toBe(`protectedSettings: could not be decrypted with certificate ${'C0FFEE'.padEnd(40, '0')}: certificate not found in LocalMachine\\My`);
    expect((error as Error).message).not.toContain(base64.slice(0, 20));
  });

  it('gives up on PowerShell\u2019s output a few seconds after its timeout when another process holds it open', async () => {
    // A stand-in for powershell.exe whose child keeps stderr open long after it is killed.
    const fake = join(dir(), 'held-powershell.sh');
    const pidFile = join(dir(), 'holder.pid');
    await writeFile(fake, `#!/bin/sh\nsleep 120 >&2 &\necho $! > ${pidFile}\nexec sleep 120\n`, { mode: 0o755 });
    const started = performance.now();
    try {
      const error = await decryptProtectedSettings('AAAA', 'C0FFEE'.padEnd(40, '0'), '', { powershell: fake, timeoutMs: 500 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SettingsError);
      expect((error as Error).message).toBe(`protectedSettings: could not be decrypted with certificate ${'C0FFEE'.padEnd(40, '0')}: PowerShell timed out (its output was still held open 5 s after)`);
      expect(performance.now() - started).toBeLessThan(30_000);
    } finally {
      const holder = Number(await readFile(pidFile, 'utf8').catch(() => '0'));
      if (holder > 0) process.kill(holder, 'SIGKILL');
    }
  }, 60_000);
});
