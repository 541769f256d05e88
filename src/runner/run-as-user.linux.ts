// The RunAs user from the system user database (run-command.md §4). Looked up through `getent`,
// so every NSS source counts (files, LDAP, SSSD, Entra ID logins), never a hard-coded /home.
//
// "Usable" account: a passwd entry with numeric uid and gid, and, when root can see a shadow
// entry, no account expiry date that has passed (the date PAM would refuse a login from). A
// locked password or a nologin shell does NOT make an account unusable: SSH-key users and
// service accounts look like that, and the script never goes through the login shell or a
// password check. uid 0 (root, or an alias of it) is allowed: the handler runs as root anyway.
import { execFile } from 'node:child_process';
import { errorCodes, HandlerError } from '../errors.js';

// A user as the user database describes it (passwd(5) fields the RunAs switch needs).
export interface RunAsUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  readonly shell: string;
}

export interface LookupOptions {
  readonly getent?: string;
  readonly now?: () => number;
  readonly timeoutMs?: number;
}

const dayMs = 24 * 60 * 60 * 1000;
const lookupEnv = { PATH: '/usr/bin:/bin:/usr/sbin:/sbin', LC_ALL: 'C' };

// True for a name that may be handed to getent: not an option, no field separator, slash or blank.
export function isLookupableName(name: string): boolean {
  return name.length > 0 && name.length <= 256 && /^[^-:/\s\p{Cc}][^:/\s\p{Cc}]*$/u.test(name);
}

// Parses one `getent passwd` line (name:password:uid:gid:gecos:home:shell); undefined if malformed.
export function parsePasswdLine(line: string): RunAsUser | undefined {
  const fields = line.replace(/\r?\n$/, '').split(':');
  if (fields.length !== 7) return undefined;
  const [name = '', , uidText = '', gidText = '', , home = '', shell = ''] = fields;
  if (name === '' || !/^\d{1,10}$/.test(uidText) || !/^\d{1,10}$/.test(gidText)) return undefined;
  const uid = Number(uidText);
  const gid = Number(gidText);
  if (uid > 0xfffffffe || gid > 0xfffffffe) return undefined;
  // passwd(5): an empty home is "/", an empty shell is /bin/sh.
  return { name, uid, gid, home: home === '' ? '/' : home, shell: shell === '' ? '/bin/sh' : shell };
}

// The account expiry from one `getent shadow` line, in days since 1970-01-01; undefined when none.
export function parseShadowExpiry(line: string): number | undefined {
  const fields = line.replace(/\r?\n$/, '').split(':');
  const expire = fields[7] ?? '';
  return /^\d{1,9}$/.test(expire) ? Number(expire) : undefined;
}

// True when an account expiring on `expireDay` can no longer be used `nowMs` (pam_unix's rule).
export function isExpired(expireDay: number, nowMs: number): boolean {
  return Math.floor(nowMs / dayMs) >= expireDay;
}

// Looks up `name` (or a numeric uid); HandlerError −102 when it is unknown or cannot be used.
export async function lookupRunAsUser(name: string, options: LookupOptions = {}): Promise<RunAsUser> {
  const failed = (why?: string): HandlerError =>
    new HandlerError(errorCodes.runAsLookup, `Failed to lookup RunAs user '${toShownUser(name)}'${why ? `: ${why}` : ''}`, { blame: 'user' });
  if (!isLookupableName(name)) throw failed('not a valid user name');
  const passwd = await runGetent(['passwd', '--', name], options);
  if (passwd.code === 2) throw failed();
  if (passwd.code !== 0) throw failed(`the user database could not be read (${passwd.failure})`);
  const user = parsePasswdLine(passwd.stdout.split('\n')[0] ?? '');
  if (user === undefined) throw failed('its user database entry is malformed');
  await validateNotExpired(user, name, options);
  return user;
}

async function validateNotExpired(user: RunAsUser, requested: string, options: LookupOptions): Promise<void> {
  const shadow = await runGetent(['shadow', '--', user.name], options);
  // No shadow entry (or a source without one): nothing says the account expired.
  if (shadow.code !== 0) return;
  const expire = parseShadowExpiry(shadow.stdout.split('\n')[0] ?? '');
  if (expire === undefined || !isExpired(expire, (options.now ?? Date.now)())) return;
  const date = new Date(expire * dayMs).toISOString().slice(0, 10);
  throw new HandlerError(errorCodes.runAsLookup, `RunAs user '${toShownUser(requested)}' cannot be used: the account expired on ${date}`, { blame: 'user' });
}

interface GetentResult {
  readonly code: number;
  readonly stdout: string;
  readonly failure: string;
}

// getent exits 0 when found, 2 when the key is unknown (getent(1)).
function runGetent(args: readonly string[], options: LookupOptions): Promise<GetentResult> {
  return new Promise((resolve) => {
    execFile(options.getent ?? 'getent', args, { env: lookupEnv, timeout: options.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 }, (error, stdout) => {
      if (error === null) return resolve({ code: 0, stdout, failure: '' });
      const code = typeof error.code === 'number' ? error.code : -1;
      const failure = error.killed ? 'getent timed out' : typeof error.code === 'string' ? `getent: ${error.code}` : `getent exit code ${code}`;
      resolve({ code, stdout, failure });
    });
  });
}

// A user name as it may appear in a message: printable, bounded.
function toShownUser(name: string): string {
  const shown = name.replace(/[^\x20-\x7e]/g, '?');
  return shown.length > 64 ? `${shown.slice(0, 64)}…` : shown;
}
