import { chmod, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SettingsError } from '../../src/errors.js';
import { decryptProtectedSettings } from '../../src/config/protected-settings.js';
import { encryptProtectedSettings, makeCertificate } from '../helpers/certificates.js';

const canary = 'CANARY-s3cr3t';
const plaintext = JSON.stringify({ runAsPassword: canary, protectedParameters: [{ name: 'A', value: canary }] });

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'protected-settings-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function settingsErrorOf(promise: Promise<unknown>): Promise<SettingsError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(SettingsError);
    return error as SettingsError;
  }
  throw new Error('expected a SettingsError');
}

describe('decryptProtectedSettings', () => {
  it('decrypts 3DES-CBC settings, as the agent sends them', async () => {
    const { thumbprint, crtPath } = await makeCertificate(dir);
    const base64 = await encryptProtectedSettings(plaintext, crtPath, 'des3');
    expect(await decryptProtectedSettings(base64, thumbprint, dir)).toEqual(JSON.parse(plaintext));
  });

  it('decrypts AES-256-CBC settings and accepts a lower-case thumbprint', async () => {
    const { thumbprint, crtPath } = await makeCertificate(dir);
    const base64 = await encryptProtectedSettings(plaintext, crtPath, 'aes256');
    expect(await decryptProtectedSettings(base64, thumbprint.toLowerCase(), dir)).toEqual(JSON.parse(plaintext));
  });

  it('falls back to openssl smime when openssl cms fails', async () => {
    const { thumbprint, crtPath } = await makeCertificate(dir);
    const base64 = await encryptProtectedSettings(plaintext, crtPath);
    const log = join(dir, 'calls.log');
    const wrapper = join(dir, 'openssl-wrapper.sh');
    const script = `#!/bin/sh\necho "$1" >> '${log}'\nif [ "$1" = cms ]; then echo 'cms: disabled for the test' >&2; exit 1; fi\nexec openssl "$@"\n`;
    await writeFile(wrapper, script);
    await chmod(wrapper, 0o755);
    expect(await decryptProtectedSettings(base64, thumbprint, dir, { openssl: wrapper, decryptor: null })).toEqual(JSON.parse(plaintext));
    expect((await readFile(log, 'utf8')).split('\n').filter(Boolean)).toEqual(['cms', 'smime']);
  });

  it('requires a thumbprint when protected settings are present', async () => {
    for (const thumbprint of [undefined, '', '  ']) {
      const error = await settingsErrorOf(decryptProtectedSettings('QUJD', thumbprint, dir));
      expect(error.field).toBe('protectedSettingsCertThumbprint');
    }
  });

  it('refuses a thumbprint that is not 40 hex digits before building a path from it', async () => {
    for (const thumbprint of ['../../etc/passwd', 'A'.repeat(39), 'G'.repeat(40), `${'A'.repeat(40)}/x`]) {
      const error = await settingsErrorOf(decryptProtectedSettings('QUJD', thumbprint, dir));
      expect(error.rule).toBe('must be 40 hexadecimal characters (SHA-1)');
    }
  });

  it('names the thumbprint and the missing file when the certificate is not there', async () => {
    const thumbprint = 'AB'.repeat(20);
    const error = await settingsErrorOf(decryptProtectedSettings('QUJD', thumbprint.toLowerCase(), dir));
    expect(error.message).toContain(thumbprint);
    expect(error.message).toContain(`${thumbprint}.crt`);
    const made = await makeCertificate(dir);
    await unlink(made.prvPath);
    expect((await settingsErrorOf(decryptProtectedSettings('QUJD', made.thumbprint, dir))).message).toContain(`${made.thumbprint}.prv`);
  });

  it('reports protected settings that are not base64', async () => {
    const { thumbprint } = await makeCertificate(dir);
    for (const base64 of ['not base64!', 'QUJ', '']) {
      const error = await settingsErrorOf(decryptProtectedSettings(base64, thumbprint, dir));
      expect(error).toMatchObject({ field: 'protectedSettings', rule: 'is not valid base64' });
    }
  });

  it('reports corrupted ciphertext with the thumbprint and a short cause, never the data', async () => {
    const { thumbprint, crtPath } = await makeCertificate(dir);
    const base64 = await encryptProtectedSettings(plaintext, crtPath);
    const der = Buffer.from(base64, 'base64');
    der.fill(0x41, der.length - 40);
    const corrupted = der.toString('base64');
    const error = await settingsErrorOf(decryptProtectedSettings(corrupted, thumbprint, dir));
    expect(error.message).toMatch(new RegExp(`could not be decrypted with certificate ${thumbprint} \\(\\d+ bytes of CMS data\\): `));
    expect(error.message).not.toContain(canary);
    expect(error.message).not.toContain(corrupted.slice(0, 24));
    expect(error.message.length).toBeLessThan(400);
  });

  it('fails to decrypt settings encrypted for another certificate', async () => {
    const mine = await makeCertificate(dir);
    const otherDir = await mkdtemp(join(tmpdir(), 'protected-settings-other-'));
    try {
      const other = await makeCertificate(otherDir);
      const base64 = await encryptProtectedSettings(plaintext, other.crtPath, 'aes256');
      const error = await settingsErrorOf(decryptProtectedSettings(base64, mine.thumbprint, dir));
      expect(error.message).toContain(mine.thumbprint);
      expect(error.message).not.toContain(canary);
    } finally {
      await rm(otherDir, { recursive: true, force: true });
    }
  });

  it('reports decrypted settings that are not JSON without showing them', async () => {
    const { thumbprint, crtPath } = await makeCertificate(dir);
    const base64 = await encryptProtectedSettings(`{"password": "${canary}"`, crtPath);
    const error = await settingsErrorOf(decryptProtectedSettings(base64, thumbprint, dir));
    expect(error.rule).toBe('decrypted protected settings are not JSON');
    expect(error.message).not.toContain(canary);
  });

  it('reports a missing openssl as a failed decryption', async () => {
    const { thumbprint, crtPath } = await makeCertificate(dir);
    const base64 = await encryptProtectedSettings(plaintext, crtPath);
    const error = await settingsErrorOf(decryptProtectedSettings(base64, thumbprint, dir, { openssl: join(dir, 'no-openssl'), decryptor: null }));
    expect(error.message).toContain(thumbprint);
  });
});
