// The RunAs user's working directory (run-command.md §4: cwd = a run directory the user owns).
//
// Why a separate directory: the run's state directory (journal.json, process.json,
// exit-status.json, stdout, stderr — written by the daemon and the root wrapper) must stay
// root-owned and root-only, or the user could forge its own exit code or read other runs. And
// it lives under the agent's lib dir (/var/lib/waagent is 0700), which no other user can even
// traverse. So a RunAs run gets `<workRoot>/<runId>`: the work root is root-owned 0711 (others
// may traverse it but not list it, so run ids cannot be enumerated), every directory above it
// must be root-owned, searchable by others and not writable by them (sticky, like /tmp, is
// fine), and the run's own directory is 0700 and owned by the user, so another user (or another
// RunAs user) cannot open it. The script is written there by root first, then the whole
// directory is handed to the user; it is removed — with the user's own privileges, so a
// symlink planted by the user cannot make root delete anything else — when the run ends.
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, chmod, lchown, lstat, mkdir, readdir, realpath, rm, rmdir } from 'node:fs/promises';
import { dirname, join, parse, relative, resolve, sep } from 'node:path';
import { errorCodes, HandlerError, toErrorMessage } from '../errors.js';
import { isSafeFileName } from './safe-path.js';

const setprivCandidates = ['/usr/bin/setpriv', '/bin/setpriv', '/usr/sbin/setpriv', '/sbin/setpriv'];
let setprivPath: Promise<string> | undefined;

// The setpriv executable (util-linux) that switches the script to the RunAs user.
export function findSetpriv(candidates: readonly string[] = setprivCandidates): Promise<string> {
  setprivPath ??= (async () => {
    for (const candidate of candidates) {
      if (await access(candidate, constants.X_OK).then(() => true, () => false)) return candidate;
    }
    setprivPath = undefined;
    throw new HandlerError(errorCodes.startExecution, `runAsUser needs setpriv (util-linux), not found in ${candidates.join(', ')}`);
  })();
  return setprivPath;
}

// Creates (or checks) the work root: root-owned 0711 under root-owned, traversable parents; returns its real path.
export async function ensureWorkRoot(workRoot: string): Promise<string> {
  const wanted = resolve(workRoot);
  try {
    await mkdir(dirname(wanted), { recursive: true, mode: 0o755 });
    const parent = await realpath(dirname(wanted));
    await validateAncestors(parent);
    const root = join(parent, parse(wanted).base);
    await mkdir(root, { mode: 0o711 }).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
    const stats = await lstat(root);
    if (!stats.isDirectory() || stats.uid !== 0) throw unsafe(root, 'is not a directory owned by root');
    if ((stats.mode & 0o7777) !== 0o711) await chmod(root, 0o711);
    return root;
  } catch (error) {
    if (error instanceof HandlerError) throw error;
    throw new HandlerError(errorCodes.createDataDir, `could not create the RunAs work directory ${wanted}: ${toErrorMessage(error)}`, { cause: error });
  }
}

// Every directory from / down to `dir` must let the RunAs user through and no one but root change it.
async function validateAncestors(dir: string): Promise<void> {
  const parts = dir.split(sep).filter((part) => part !== '');
  for (let depth = 0; depth <= parts.length; depth += 1) {
    const path = sep + parts.slice(0, depth).join(sep);
    const stats = await lstat(path);
    if (!stats.isDirectory() || stats.uid !== 0) throw unsafe(path, 'is not a directory owned by root');
    if ((stats.mode & 0o001) === 0) throw unsafe(path, 'is not searchable by other users (o+x)');
    if ((stats.mode & 0o022) !== 0 && (stats.mode & 0o1000) === 0) throw unsafe(path, 'is writable by non-root users');
  }
}

function unsafe(path: string, why: string): HandlerError {
  return new HandlerError(
    errorCodes.createDataDir,
    `cannot give the RunAs user a working directory: ${path} ${why} (choose another RUNCOMMAND_HANDLER_WORK_DIR)`,
    { blame: 'service' },
  );
}

// Makes the run's empty working directory, root-owned 0700 until handWorkDirTo gives it away.
export async function makeWorkDir(workRoot: string, runId: string): Promise<string> {
  if (!isSafeFileName(runId)) throw new HandlerError(errorCodes.createDataDir, 'invalid run id for a working directory');
  const root = await ensureWorkRoot(workRoot);
  const dir = join(root, runId);
  try {
    // A directory left by an attempt cut off by a daemon restart is removed, never reused.
    await removeWorkDir(root, runId);
    await mkdir(dir, { mode: 0o700 });
    await chmod(dir, 0o700);
    return dir;
  } catch (error) {
    throw new HandlerError(errorCodes.createDataDir, `could not create the RunAs working directory: ${toErrorMessage(error)}`, { cause: error });
  }
}

// Gives the working directory and everything root wrote in it (script, artifacts) to the user:
// owner uid:gid, no permission for group or others.
export async function handWorkDirTo(dir: string, uid: number, gid: number): Promise<void> {
  try {
    for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
      const path = join(entry.parentPath, entry.name);
      await lchown(path, uid, gid);
      if (!entry.isSymbolicLink()) await chmod(path, (await lstat(path)).mode & 0o700);
    }
    await lchown(dir, uid, gid);
    await chmod(dir, 0o700);
  } catch (error) {
    throw new HandlerError(errorCodes.saveScript, `could not give the script to the RunAs user: ${toErrorMessage(error)}`, { cause: error });
  }
}

// Removes a run's working directory if there is one: its content with the owner's privileges,
// then the (then empty) directory itself as root. The script may have left directories it made
// unreadable or unwritable (`chmod 000`): the owner first gives itself rwx on every directory it
// owns (chmod -R does not follow symlinks it meets), so rm can descend into all of them. Rejects
// naming what is left when something still cannot be removed.
export async function removeWorkDir(workRoot: string, runId: string): Promise<void> {
  if (!isSafeFileName(runId)) return;
  const dir = join(resolve(workRoot), runId);
  const stats = await lstat(dir).catch(() => undefined);
  if (stats === undefined) return;
  if (!stats.isDirectory() || stats.uid === 0) {
    // Only root ever had access to it: nothing can have been swapped under us.
    await rm(dir, { recursive: true, force: true });
    return;
  }
  await runAsOwner(stats.uid, stats.gid, ['chmod', '-R', '--', 'u+rwx', dir]);
  await runAsOwner(stats.uid, stats.gid, ['rm', '-rf', '--one-file-system', '--', dir]);
  try {
    await rmdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new Error(`${dir} could not be removed (${(error as NodeJS.ErrnoException).code ?? toErrorMessage(error)}); left behind: ${await describeLeftovers(dir)}`);
  }
}

// Up to ten paths still under `dir` (relative to it), for the log; never follows a link.
async function describeLeftovers(dir: string): Promise<string> {
  const found: string[] = [];
  const walk = async (at: string): Promise<void> => {
    const entries = await readdir(at, { withFileTypes: true }).catch(() => undefined);
    if (entries === undefined) {
      if (at !== dir) found.push(`${relative(dir, at)}/ (unreadable)`);
      return;
    }
    for (const entry of entries) {
      if (found.length >= 10) return;
      const path = join(at, entry.name);
      if (entry.isDirectory()) await walk(path);
      if (found.length < 10) found.push(relative(dir, path) + (entry.isDirectory() ? '/' : ''));
    }
  };
  await walk(dir);
  return found.length > 0 ? found.join(', ') : '(nothing readable)';
}

// Runs a command as uid:gid (no supplementary groups); its exit status is not checked: rm cannot
// remove `dir` itself (the work root is root's), and rmdir then tells whether all else went.
async function runAsOwner(uid: number, gid: number, command: readonly string[]): Promise<void> {
  const setpriv = await findSetpriv();
  const args = [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--', ...command];
  await new Promise<void>((done) => {
    execFile(setpriv, args, { env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' }, timeout: 120_000 }, () => done());
  });
}
