import { chmod, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SettingsError } from '../../src/errors.js';
import { CmsDecryptor } from '../../src/config/cms-decryptor.js';
import { decryptionCounts, decryptProtectedSettings, describeDecryptionPath } from '../../src/config/protected-settings.js';
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
    // Cut short: overwriting the ciphertext's tail instead would decrypt to garbage whenever the
    // garbage happens to end in valid padding (CBC: about one time in 200), and the test would fail.
    const der = Buffer.from(base64, 'base64');
    const corrupted = der.subarray(0, der.length - 40).toString('base64');
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

  // An openssl that records each call in calls.log, then runs the real one.
  async function loggingOpenssl(): Promise<{ openssl: string; calls: () => Promise<string[]> }> {
    const log = join(dir, 'calls.log');
    const openssl = join(dir, 'openssl-logger.sh');
    await writeFile(openssl, `#!/bin/sh\necho "$1" >> '${log}'\nexec openssl "$@"\n`);
    await chmod(openssl, 0o755);
    const calls = async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean);
    return { openssl, calls };
  }

  describe('through the libcrypto helper', () => {
    it('decrypts without starting openssl, and says so', async () => {
      const { thumbprint, crtPath } = await makeCertificate(dir);
      const { openssl, calls } = await loggingOpenssl();
      const before = decryptionCounts();
      for (const cipher of ['des3', 'aes256'] as const) {
        const base64 = await encryptProtectedSettings(plaintext, crtPath, cipher);
        expect(await decryptProtectedSettings(base64, thumbprint, dir, { openssl })).toEqual(JSON.parse(plaintext));
      }
      expect(await calls()).toEqual([]);
      expect(decryptionCounts()).toEqual({ ...before, libcrypto: before.libcrypto + 2 });
      expect(await describeDecryptionPath()).toMatch(/^libcrypto \(libcrypto\.so[.0-9]*: OpenSSL /);
    });

    it('leaves a failure to openssl, so the error is word for word the one openssl alone gives', async () => {
      const mine = await makeCertificate(dir);
      const otherDir = await mkdtemp(join(tmpdir(), 'protected-settings-other-'));
      try {
        const other = await makeCertificate(otherDir);
        const forOther = await encryptProtectedSettings(plaintext, other.crtPath, 'aes256');
        // Cut short (an overwritten tail would decrypt to garbage whenever it ends in valid CBC padding).
        const der = Buffer.from(await encryptProtectedSettings(plaintext, mine.crtPath), 'base64');
        const corrupted = der.subarray(0, der.length - 40).toString('base64');
        for (const base64 of [forOther, corrupted, Buffer.from('not CMS').toString('base64')]) {
          const fast = await settingsErrorOf(decryptProtectedSettings(base64, mine.thumbprint, dir));
          const opensslOnly = await settingsErrorOf(decryptProtectedSettings(base64, mine.thumbprint, dir, { decryptor: null }));
          expect(fast.message).toBe(opensslOnly.message);
          expect(fast.message).toMatch(new RegExp(`^protectedSettings: could not be decrypted with certificate ${mine.thumbprint} \\(\\d+ bytes of CMS data\\): Error `));
        }
      } finally {
        await rm(otherDir, { recursive: true, force: true });
      }
    });

    it("reports the helper's cause when openssl is not there to judge a failure", async () => {
      const mine = await makeCertificate(dir);
      const otherDir = await mkdtemp(join(tmpdir(), 'protected-settings-other-'));
      try {
        const other = await makeCertificate(otherDir);
        const base64 = await encryptProtectedSettings(plaintext, other.crtPath);
        const error = await settingsErrorOf(decryptProtectedSettings(base64, mine.thumbprint, dir, { openssl: join(dir, 'no-openssl') }));
        expect(error.message).toMatch(new RegExp(`^protectedSettings: could not be decrypted with certificate ${mine.thumbprint} \\(\\d+ bytes of CMS data\\): Error decrypting CMS using private key`));
      } finally {
        await rm(otherDir, { recursive: true, force: true });
      }
    });

    it('falls back to openssl cms when the helper is missing', async () => {
      const { thumbprint, crtPath } = await makeCertificate(dir);
      const { openssl, calls } = await loggingOpenssl();
      const base64 = await encryptProtectedSettings(plaintext, crtPath);
      const before = decryptionCounts();
      const decryptor = new CmsDecryptor(join(dir, 'no-rch-crypto'));
      expect(await decryptProtectedSettings(base64, thumbprint, dir, { openssl, decryptor })).toEqual(JSON.parse(plaintext));
      expect(await calls()).toEqual(['cms']);
      expect(decryptionCounts()).toEqual({ ...before, openssl: before.openssl + 1 });
    });

    it('is switched off by RUNCOMMAND_HANDLER_CMS_FAST_PATH=0', async () => {
      const { thumbprint, crtPath } = await makeCertificate(dir);
      const { openssl, calls } = await loggingOpenssl();
      const base64 = await encryptProtectedSettings(plaintext, crtPath);
      process.env['RUNCOMMAND_HANDLER_CMS_FAST_PATH'] = '0';
      try {
        expect(await decryptProtectedSettings(base64, thumbprint, dir, { openssl })).toEqual(JSON.parse(plaintext));
        expect(await describeDecryptionPath()).toBe('openssl cms (fallback: RUNCOMMAND_HANDLER_CMS_FAST_PATH=0)');
      } finally {
        delete process.env['RUNCOMMAND_HANDLER_CMS_FAST_PATH'];
      }
      expect(await calls()).toEqual(['cms']);
    });
  });
});
