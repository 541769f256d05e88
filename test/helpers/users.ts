// Real local users and groups for RunAs tests (the tests run as root): unique names per test run,
// removed by the tests that made them.
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';

export interface TestUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

export interface TestUserOptions {
  // Supplementary groups (made by makeTestGroup).
  readonly groups?: readonly string[];
  // The home directory recorded in the user database (not created).
  readonly home?: string;
  readonly shell?: string;
  // useradd -e: an account expiry date, YYYY-MM-DD.
  readonly expireDate?: string;
}

// A name no other test run uses: `rch` + a tag + random hex (useradd's NAME_REGEX, ≤ 32 chars).
export function makeTestName(tag: string): string {
  return `rch${tag}${randomBytes(4).toString('hex')}`.slice(0, 32);
}

// Creates a group; returns its name.
export async function makeTestGroup(tag: string): Promise<string> {
  const name = makeTestName(tag);
  await execa('groupadd', [name]);
  return name;
}

// Creates a user with its own primary group.
export async function makeTestUser(tag: string, options: TestUserOptions = {}): Promise<TestUser> {
  const name = makeTestName(tag);
  const args = ['-M', '-U', '-s', options.shell ?? '/bin/bash', '-d', options.home ?? `/nonexistent/${name}`];
  if (options.groups?.length) args.push('-G', options.groups.join(','));
  if (options.expireDate) args.push('-e', options.expireDate);
  await execa('useradd', [...args, name]);
  const [uid, gid] = await Promise.all([execa('id', ['-u', name]), execa('id', ['-g', name])]);
  return { name, uid: Number(uid.stdout), gid: Number(gid.stdout), home: options.home ?? `/nonexistent/${name}` };
}

// Removes users (with their primary groups) and groups; never throws.
export async function removeTestUsers(users: readonly (TestUser | undefined)[], groups: readonly string[] = []): Promise<void> {
  for (const user of users) if (user) await execa('userdel', ['-f', user.name], { reject: false });
  for (const group of groups) await execa('groupdel', [group], { reject: false });
}
