import { chmod, chown, lstat, mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HandlerError } from '../../src/errors.js';
import { ensureWorkRoot, handWorkDirTo, makeWorkDir, removeWorkDir } from '../../src/runner/run-as-work-dir.linux.js';
import { makeTestUser, removeTestUsers, type TestUser } from '../helpers/users.js';

const execFileAsync = promisify(execFile);
let user: TestUser | undefined;
let top = '';

beforeAll(async () => {
  user = await makeTestUser('wd');
});

afterAll(async () => {
  await removeTestUsers([user]);
});

beforeEach(async () => {
  top = await mkdtemp(join(tmpdir(), 'rch-workdir-'));
  await chmod(top, 0o711);
});

afterEach(async () => {
  await rm(top, { recursive: true, force: true });
});

// Runs a shell command as the test user (what a RunAs script could do).
async function asUser(command: string): Promise<void> {
  await execFileAsync('setpriv', [`--reuid=${user!.uid}`, `--regid=${user!.gid}`, '--clear-groups', '--', '/bin/sh', '-c', command]);
}

const modeOf = async (path: string): Promise<number> => (await lstat(path)).mode & 0o7777;

async function errorOf(action: Promise<unknown>): Promise<HandlerError> {
  const error: unknown = await action.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(HandlerError);
  return error as HandlerError;
}

describe('ensureWorkRoot', () => {
  it('creates the work root root-owned 0711 (traversable, not listable) and fixes a wrong mode', async () => {
    const root = await ensureWorkRoot(join(top, 'work'));
    expect(root).toBe(join(top, 'work'));
    expect(await modeOf(root)).toBe(0o711);
    await chmod(root, 0o755);
    await ensureWorkRoot(root);
    expect(await modeOf(root)).toBe(0o711);
  });

  it('refuses a parent other users cannot traverse, naming it (the default layout under a 0700 dir)', async () => {
    await chmod(top, 0o700);
    const error = await errorOf(ensureWorkRoot(join(top, 'work')));
    expect(error.code).toBe(-200);
    expect(error.message).toContain(`${top} is not searchable by other users`);
  });

  it('refuses a parent writable by other users unless it is sticky like /tmp', async () => {
    await chmod(top, 0o777);
    expect((await errorOf(ensureWorkRoot(join(top, 'work')))).message).toContain('writable by non-root users');
    await chmod(top, 0o1777);
    await expect(ensureWorkRoot(join(top, 'work'))).resolves.toBe(join(top, 'work'));
  });

  it('refuses a work root a user owns, or a symlink in its place', async () => {
    await mkdir(join(top, 'owned'));
    await chown(join(top, 'owned'), user!.uid, user!.gid);
    expect((await errorOf(ensureWorkRoot(join(top, 'owned')))).message).toContain('not a directory owned by root');
    await symlink('/etc', join(top, 'link'));
    expect((await errorOf(ensureWorkRoot(join(top, 'link')))).message).toContain('not a directory owned by root');
  });
});

describe('makeWorkDir and handWorkDirTo', () => {
  it('makes an empty root-only directory, then hands it and its files to the user, 0700, nothing for group or others', async () => {
    const dir = await makeWorkDir(join(top, 'work'), 'rc.1.abc');
    expect(dir).toBe(join(top, 'work', 'rc.1.abc'));
    expect(await readdir(dir)).toEqual([]);
    expect(await lstat(dir)).toMatchObject({ uid: 0 });
    expect(await modeOf(dir)).toBe(0o700);
    await writeFile(join(dir, 'script.sh'), 'echo hi', { mode: 0o755 });
    await mkdir(join(dir, 'sub'), { mode: 0o777 });
    await writeFile(join(dir, 'sub', 'artifact.bin'), 'x', { mode: 0o666 });
    await handWorkDirTo(dir, user!.uid, user!.gid);
    for (const path of [dir, join(dir, 'script.sh'), join(dir, 'sub'), join(dir, 'sub', 'artifact.bin')]) {
      const stats = await lstat(path);
      expect([stats.uid, stats.gid], path).toEqual([user!.uid, user!.gid]);
      expect(stats.mode & 0o077, path).toBe(0);
    }
    expect(await modeOf(join(dir, 'script.sh'))).toBe(0o700);
  });

  it('replaces a directory left behind by an interrupted attempt instead of reusing it', async () => {
    const first = await makeWorkDir(join(top, 'work'), 'rc.2.abc');
    await writeFile(join(first, 'stale'), 'old');
    const second = await makeWorkDir(join(top, 'work'), 'rc.2.abc');
    expect(second).toBe(first);
    expect(await readdir(second)).toEqual([]);
  });

  it('refuses a run id that is not a plain file name', async () => {
    expect((await errorOf(makeWorkDir(join(top, 'work'), '../escape'))).code).toBe(-200);
  });
});

describe('removeWorkDir', () => {
  it('removes a user-owned working directory with its content', async () => {
    const dir = await makeWorkDir(join(top, 'work'), 'rc.3.abc');
    await writeFile(join(dir, 'script.sh'), 'true');
    await handWorkDirTo(dir, user!.uid, user!.gid);
    await removeWorkDir(join(top, 'work'), 'rc.3.abc');
    await expect(stat(dir)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('never follows a symlink the user planted: what it points to survives', async () => {
    const victim = join(top, 'victim');
    await mkdir(victim);
    await writeFile(join(victim, 'precious'), 'root data');
    const dir = await makeWorkDir(join(top, 'work'), 'rc.4.abc');
    await symlink(victim, join(dir, 'link'));
    await mkdir(join(dir, 'd'));
    await symlink(join(victim, 'precious'), join(dir, 'd', 'file-link'));
    await handWorkDirTo(dir, user!.uid, user!.gid);
    await removeWorkDir(join(top, 'work'), 'rc.4.abc');
    await expect(stat(dir)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readdir(victim)).toEqual(['precious']);
  });

  it('removes directories the script made unreadable and unwritable (chmod 000), the working directory itself included', async () => {
    const dir = await makeWorkDir(join(top, 'work'), 'rc.6.abc');
    await handWorkDirTo(dir, user!.uid, user!.gid);
    // As the user: nested directories with files, then every directory locked, top first.
    await asUser(`mkdir -p ${dir}/a/b/c && echo x > ${dir}/a/b/c/f && echo y > ${dir}/a/g && mkdir ${dir}/e && chmod 000 ${dir}/a/b/c ${dir}/a/b ${dir}/a ${dir}/e && chmod 500 ${dir}`);
    await removeWorkDir(join(top, 'work'), 'rc.6.abc');
    await expect(stat(dir)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('does not follow a symlink to a directory of another owner while unlocking, and removes the rest', async () => {
    const victim = join(top, 'victim');
    await mkdir(victim, { mode: 0o700 });
    await writeFile(join(victim, 'precious'), 'root data');
    const dir = await makeWorkDir(join(top, 'work'), 'rc.7.abc');
    await handWorkDirTo(dir, user!.uid, user!.gid);
    await asUser(`mkdir ${dir}/locked && ln -s ${victim} ${dir}/locked/link && chmod 000 ${dir}/locked`);
    await removeWorkDir(join(top, 'work'), 'rc.7.abc');
    await expect(stat(dir)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readdir(victim)).toEqual(['precious']);
    expect(await modeOf(victim)).toBe(0o700);
  });

  it('names what is left when something truly cannot be removed', async () => {
    const dir = await makeWorkDir(join(top, 'work'), 'rc.8.abc');
    await handWorkDirTo(dir, user!.uid, user!.gid);
    // A directory of root's with a file in it: the user can neither empty nor remove it.
    await mkdir(join(dir, 'roots'), { mode: 0o755 });
    await writeFile(join(dir, 'roots', 'kept'), 'x');
    const error = await removeWorkDir(join(top, 'work'), 'rc.8.abc').then(() => undefined, (caught: unknown) => caught as Error);
    expect(error?.message).toContain(`${dir} could not be removed (ENOTEMPTY); left behind: roots/kept, roots/`);
  });

  it('does nothing when the run has no working directory, or the work root does not exist', async () => {
    await expect(removeWorkDir(join(top, 'work'), 'rc.5.abc')).resolves.toBeUndefined();
    await expect(removeWorkDir(join(top, 'nowhere'), 'rc.5.abc')).resolves.toBeUndefined();
    await expect(removeWorkDir(join(top, 'work'), '..')).resolves.toBeUndefined();
  });
});
