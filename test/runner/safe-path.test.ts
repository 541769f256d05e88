import { describe, expect, it } from 'vitest';
import { HandlerError } from '../../src/errors.js';
import { isSafeFileName, maxFileNameBytes, toContainedPath, toFileNameFromUrl, toSafeFileName } from '../../src/runner/safe-path.js';

const hostile = ['..', '.', '', '../x', '../../etc/passwd', '/etc/passwd', 'a/b', 'a\\b', 'a\u0000b', 'a\nb', 'a\rb', '\u001b[31mred', 'a\u007fb', 'a\u0085b', 'evil\u202etxt.sh'];

describe('isSafeFileName', () => {
  it('accepts plain names, hidden files, spaces and non-ASCII', () => {
    for (const name of ['script.sh', '.env', 'my script.ps1', 'ünïcødé.txt', '-rf', 'a..b', '...x']) expect(isSafeFileName(name), name).toBe(true);
  });

  it('refuses dot names, separators, NUL, control and bidi characters, and names over 255 bytes', () => {
    for (const name of [...hostile, 'x'.repeat(256), 'é'.repeat(128)]) expect(isSafeFileName(name), JSON.stringify(name)).toBe(false);
  });
});

describe('toSafeFileName', () => {
  it('replaces every unsafe character and keeps the rest', () => {
    expect(toSafeFileName('../../etc/passwd')).toBe('.._.._etc_passwd');
    expect(toSafeFileName('a\u0000b\nc\\d')).toBe('a_b_c_d');
    expect(toSafeFileName('evil\u202etxt.sh')).toBe('evil_txt.sh');
  });

  it('turns names of dots only (or nothing) into the fallback', () => {
    for (const name of ['', '.', '..', '....']) expect(toSafeFileName(name, 'script.sh')).toBe('script.sh');
  });

  it('cuts a long name to 255 bytes on a character boundary, keeping its extension', () => {
    const name = toSafeFileName(`${'é'.repeat(300)}.tar.gz`);
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(maxFileNameBytes);
    expect(name.endsWith('é.gz')).toBe(true);
    expect(name).not.toContain('\ufffd');
  });

  it('always yields a safe name, whatever it is given', () => {
    for (const name of [...hostile, 'x'.repeat(1000), '\ud800', '/'.repeat(10)]) expect(isSafeFileName(toSafeFileName(name)), JSON.stringify(name)).toBe(true);
  });
});

describe('toFileNameFromUrl', () => {
  it('takes the last path segment, percent-decoded, without query or fragment', () => {
    expect(toFileNameFromUrl('https://a.blob.core.windows.net/c/dir/install%20me.sh?sv=1&sig=abc#x')).toBe('install me.sh');
  });

  it('never lets an encoded separator or dot-segment escape', () => {
    expect(toFileNameFromUrl('https://h/a/..%2F..%2Fetc%2Fpasswd')).toBe('.._.._etc_passwd');
    expect(toFileNameFromUrl('https://h/a/%2e%2e')).toBe('download');
    expect(toFileNameFromUrl('https://h/a/%00evil')).toBe('_evil');
    expect(toFileNameFromUrl('https://h/a/%E0%A4%A')).toBe('%E0%A4%A');
  });

  it('falls back for a URL without a last segment or that does not parse', () => {
    expect(toFileNameFromUrl('https://h/dir/', 'script.sh')).toBe('script.sh');
    expect(toFileNameFromUrl('not a url', 'script.sh')).toBe('script.sh');
  });
});

describe('toContainedPath', () => {
  it('joins a plain name to its directory', () => {
    expect(toContainedPath('/runs/r1/', 'script.sh')).toBe('/runs/r1/script.sh');
  });

  it('throws an invalid-settings error for every name that would land elsewhere', () => {
    for (const name of hostile) {
      let error: unknown;
      try {
        toContainedPath('/runs/r1', name);
      } catch (caught) {
        error = caught;
      }
      expect(error, JSON.stringify(name)).toBeInstanceOf(HandlerError);
      expect((error as HandlerError).code).toBe(-202);
      expect((error as HandlerError).message).not.toMatch(/[\u0000-\u001f]/);
    }
  });
});
