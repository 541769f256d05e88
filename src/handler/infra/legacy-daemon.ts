// Versions before hardening #1 served on an abstract socket, `\0runcommand-handler-<install hash>`.
// During an update such a daemon still serves this install when the new version's daemon starts;
// it must stop before the new one recovers the runs, or both would act on the same settings. It is
// never talked to (the abstract name may be held by any local user, who must not get the token nor
// answer for the daemon): the process holding the name is found through /proc and, only when it is
// root's, sent SIGTERM, which makes it stop serving and leave its scripts running (like
// shutdown(false)); the new daemon re-attaches them.
import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import { isSameProcess, readProcessStartTime } from '../../runner/process.linux.js';
import { toInstallHash } from '../../platform/platform.js';
import { sleep } from '../../util/time.js';

// The abstract socket name (without its leading NUL) older versions used for this state dir.
export function toLegacyDaemonName(stateDir: string): string {
  return `runcommand-handler-${toInstallHash(stateDir)}`;
}

// The socket inodes bound to abstract name `name` (/proc/net/unix shows it as `@name`, and each
// NUL as `@`: Node binds abstract names padded with NULs to the whole sun_path).
async function findSocketInodes(name: string): Promise<Set<string>> {
  const table = await readFile('/proc/net/unix', 'utf8').catch(() => '');
  const inodes = new Set<string>();
  for (const line of table.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    // Num RefCount Protocol Flags Type St Inode Path
    const path = fields[7];
    if (path !== undefined && fields[6] !== undefined && path.startsWith(`@${name}`) && /^@*$/.test(path.slice(name.length + 1))) inodes.add(fields[6]);
  }
  return inodes;
}

// The root processes (other than this one) holding a socket bound to abstract name `name`.
export async function findLegacyDaemons(name: string): Promise<number[]> {
  const inodes = await findSocketInodes(name);
  if (inodes.size === 0) return [];
  const found: number[] = [];
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const owner = await stat(`/proc/${entry}`).then((s) => s.uid, () => undefined);
    if (owner !== 0) continue;
    const fds = await readdir(`/proc/${entry}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${entry}/fd/${fd}`).catch(() => '');
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode !== undefined && inodes.has(inode)) {
        found.push(Number(entry));
        break;
      }
    }
  }
  return found;
}

// Stops the root daemons of older versions serving `stateDir`; resolves with their pids once they
// have exited (SIGKILL after `timeoutMs`: their scripts live in their own sessions and survive).
export async function stopLegacyDaemons(stateDir: string, timeoutMs = 10_000): Promise<number[]> {
  const pids = await findLegacyDaemons(toLegacyDaemonName(stateDir));
  const started = pids.map((pid) => ({ pid, startTime: readProcessStartTime(pid) }));
  for (const { pid } of started) signal(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  const alive = (): typeof started => started.filter(({ pid, startTime }) => startTime !== undefined && isSameProcess(pid, startTime));
  while (alive().length > 0 && Date.now() < deadline) await sleep(50);
  for (const { pid } of alive()) signal(pid, 'SIGKILL');
  return pids;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}
