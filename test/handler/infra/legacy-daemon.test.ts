// An older version's daemon on the abstract socket is stopped by signal when it is root's, and a
// non-root process holding that name is left alone (issue: hardening #1, update hand-over).
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { findLegacyDaemons, stopLegacyDaemons, toLegacyDaemonName } from '../../../src/handler/infra/legacy-daemon.js';
import { useTempDir } from '../../helpers/temp-dir.js';
import { makeTestUser, removeTestUsers, type TestUser } from '../../helpers/users.js';

const tempDir = useTempDir('legacy');
let user: TestUser;
let children: ChildProcess[] = [];

beforeAll(async () => {
  user = await makeTestUser('lg');
});

afterAll(async () => {
  await removeTestUsers([user]);
});

afterEach(() => {
  for (const child of children) child.kill('SIGKILL');
  children = [];
});

const holder = "const s = require('node:net').createServer(); s.listen('\\0' + process.argv[1], () => console.log('LISTENING'));";

// Starts a process (as root, or through `prefix` as another user) holding abstract name `name`.
async function holdName(name: string, prefix: string[] = []): Promise<ChildProcess> {
  const child = prefix.length > 0 ? spawn(prefix[0] as string, [...prefix.slice(1), process.execPath, '-e', holder, name]) : spawn(process.execPath, ['-e', holder, name]);
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => chunk.toString().includes('LISTENING') && resolve());
    child.on('exit', () => reject(new Error('holder exited')));
  });
  return child;
}

describe('stopping the daemon of an older version', () => {
  it('signals the root process holding the old abstract name and waits for it to exit', async () => {
    const stateDir = tempDir();
    const child = await holdName(toLegacyDaemonName(stateDir));
    const exited = new Promise((resolve) => child.on('exit', resolve));
    expect(await findLegacyDaemons(toLegacyDaemonName(stateDir))).toEqual([child.pid]);
    expect(await stopLegacyDaemons(stateDir, 5000)).toEqual([child.pid]);
    await exited;
    expect(await findLegacyDaemons(toLegacyDaemonName(stateDir))).toEqual([]);
  });

  it('leaves a non-root process holding that name alone', async () => {
    const stateDir = tempDir();
    const child = await holdName(toLegacyDaemonName(stateDir), ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups']);
    expect(await stopLegacyDaemons(stateDir, 1000)).toEqual([]);
    expect(child.exitCode).toBeNull();
    expect(child.signalCode).toBeNull();
  });

  it('finds nothing when nobody holds the name', async () => {
    expect(await stopLegacyDaemons(tempDir(), 1000)).toEqual([]);
  });
});
