import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HandlerError } from '../../src/errors.js';
import { isExpired, isLookupableName, lookupRunAsUser, parsePasswdLine, parseShadowExpiry } from '../../src/runner/run-as-user.linux.js';
import { makeTestUser, removeTestUsers, type TestUser } from '../helpers/users.js';

async function lookupError(name: string): Promise<HandlerError> {
  const error: unknown = await lookupRunAsUser(name).then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(HandlerError);
  return error as HandlerError;
}

describe('parsePasswdLine', () => {
  it('reads name, uid, gid, home and shell of a getent passwd line', () => {
    expect(parsePasswdLine('alice:x:1001:1002:Alice A,,,:/srv/alice:/bin/zsh\n')).toEqual({ name: 'alice', uid: 1001, gid: 1002, home: '/srv/alice', shell: '/bin/zsh' });
  });

  it('gives an empty home "/" and an empty shell /bin/sh, as passwd(5) says', () => {
    expect(parsePasswdLine('svc:*:998:998:::')).toEqual({ name: 'svc', uid: 998, gid: 998, home: '/', shell: '/bin/sh' });
  });

  it('refuses malformed lines instead of guessing', () => {
    for (const line of ['', 'a:x:1:2:g:/h', 'a:x:1:2:g:/h:/s:extra', ':x:1:2:g:/h:/s', 'a:x:-1:2:g:/h:/s', 'a:x:1:two:g:/h:/s', 'a:x:99999999999:2:g:/h:/s']) {
      expect(parsePasswdLine(line), line).toBeUndefined();
    }
  });
});

describe('account expiry', () => {
  it('reads the expiry field of a getent shadow line (empty: never)', () => {
    expect(parseShadowExpiry('u:!:20000:0:99999:7:::')).toBeUndefined();
    expect(parseShadowExpiry('u:!:20000:0:99999:7::10957:')).toBe(10957);
  });

  it('treats an account as expired from its expiry day on, like pam_unix', () => {
    const day = 20_000;
    expect(isExpired(day, day * 86_400_000 - 1)).toBe(false);
    expect(isExpired(day, day * 86_400_000)).toBe(true);
  });
});

describe('isLookupableName', () => {
  it('accepts local, numeric and directory-style names', () => {
    for (const name of ['alice', 'svc_app-1', 'user@contoso.com', 'CONTOSO\\alice', '1000', 'a$']) expect(isLookupableName(name), name).toBe(true);
  });

  it('refuses option-like names, separators, blanks and control characters', () => {
    for (const name of ['', '-rf', '--help', 'a:b', '../etc', 'a/b', 'a b', 'a\tb', 'a\u0000b', 'a\u0085b', 'x'.repeat(257)]) {
      expect(isLookupableName(name), JSON.stringify(name)).toBe(false);
    }
  });
});

describe('lookupRunAsUser', () => {
  let locked: TestUser | undefined;
  let expired: TestUser | undefined;

  beforeAll(async () => {
    locked = await makeTestUser('lk', { shell: '/usr/sbin/nologin', home: '/var/opt/rch-locked' });
    expired = await makeTestUser('ex', { expireDate: '2001-02-03' });
  });

  afterAll(async () => {
    await removeTestUsers([locked, expired]);
  });

  it('resolves a user from the user database with its real home and shell', async () => {
    expect(await lookupRunAsUser('root')).toMatchObject({ name: 'root', uid: 0, gid: 0, home: '/root' });
    const user = await lookupRunAsUser(locked!.name);
    expect(user).toEqual({ name: locked!.name, uid: locked!.uid, gid: locked!.gid, home: '/var/opt/rch-locked', shell: '/usr/sbin/nologin' });
  });

  it('accepts an account with a locked password and a nologin shell (SSH-key and service accounts)', async () => {
    await expect(lookupRunAsUser(locked!.name)).resolves.toMatchObject({ uid: locked!.uid });
  });

  it('fails with -102 and the Compat message for an unknown user', async () => {
    const error = await lookupError('rch-no-such-user-x');
    expect(error.code).toBe(-102);
    expect(error.message).toBe("Failed to lookup RunAs user 'rch-no-such-user-x'");
    expect(error.blame).toBe('user');
  });

  it('never hands an option-like or malformed name to getent', async () => {
    for (const name of ['--help', '-s', 'a:b', 'root\nx']) {
      const error = await lookupError(name);
      expect(error.code).toBe(-102);
      expect(error.message).toContain('Failed to lookup RunAs user');
      expect(error.message).not.toContain('\n');
    }
  });

  it('refuses an expired account with -102 and the date it expired', async () => {
    const error = await lookupError(expired!.name);
    expect(error.code).toBe(-102);
    expect(error.message).toBe(`RunAs user '${expired!.name}' cannot be used: the account expired on 2001-02-03`);
  });

  it('reports a user database that cannot be read as a lookup failure', async () => {
    const error: unknown = await lookupRunAsUser('root', { getent: '/nonexistent/getent' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(HandlerError);
    expect((error as HandlerError).message).toMatch(/^Failed to lookup RunAs user 'root': the user database could not be read/);
  });
});
