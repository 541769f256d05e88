// The daemon's single-instance lock (issue: hardening #1): a file in the root-only state folder
// holding the holder's pid and process start time. It does not depend on the socket: a socket name
// says nothing about who bound it, and a pathname socket left by a killed daemon must be unlinked
// before the next one can bind, which only the lock's holder may do. A lock whose process is gone
// (or whose pid now belongs to a later process) is stale and is taken over.
import { readFileSync, unlinkSync } from 'node:fs';
import { link, readFile, rename, unlink } from 'node:fs/promises';
import { isSameProcess, readProcessStartTime } from '../../runner/process.linux.js';
import { createFileAtomic } from '../../util/atomic-file.js';

export interface DaemonLock {
  readonly path: string;
  // Removes the lock if it is still this process's; idempotent, synchronous (safe at exit).
  release(): void;
  // True while the lock file still names this process.
  isHeld(): Promise<boolean>;
}

// `<pid> <start time>`: what the lock holds for this process.
function toOwnerLine(): string {
  const startTime = readProcessStartTime(process.pid);
  if (startTime === undefined) throw new Error('cannot read this process start time from /proc');
  return `${process.pid} ${startTime}\n`;
}

// Whether a lock's content names a live process (its pid with the same start time).
function isLive(content: string): boolean {
  const match = /^(\d+) (\d+)\n?$/.exec(content);
  return match !== null && isSameProcess(Number(match[1]), match[2] as string);
}

// Takes the lock at `path`; undefined when a live process holds it. Created atomically with its
// content (a reader never sees an empty lock). A stale lock is moved aside under a name of our own
// before it is deleted: if what was moved turns out to be a live lock (another starter retook it
// in between), it is put back and the lock is not ours.
export async function acquireDaemonLock(path: string): Promise<DaemonLock | undefined> {
  const owner = toOwnerLine();
  for (let attempt = 0; attempt < 20; attempt += 1) {
    // Not fsynced: the lock means something only while its owner lives (a lock a power loss left
    // empty or stale is taken over below, like any other).
    if (await createFileAtomic(path, owner, { mode: 0o600, sync: false })) return makeLock(path, owner);
    const content = await readFile(path, 'utf8').catch(() => undefined);
    if (content === undefined) continue; // removed in between: try again
    if (isLive(content)) return undefined;
    const aside = `${path}.stale-${process.pid}`;
    const moved = await rename(path, aside).then(() => true, () => false);
    if (!moved) continue;
    const movedContent = await readFile(aside, 'utf8').catch(() => '');
    if (isLive(movedContent)) {
      // Another starter took the lock between our read and our rename: give it back.
      await link(aside, path).catch(() => undefined);
      await unlink(aside).catch(() => undefined);
      return undefined;
    }
    await unlink(aside).catch(() => undefined);
  }
  throw new Error(`could not take the daemon lock ${path}`);
}

function makeLock(path: string, owner: string): DaemonLock {
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      try {
        // Read and unlink are not atomic, but only a stale-lock taker replaces a lock, and ours is live.
        if (readFileSync(path, 'utf8') !== owner) return;
        unlinkSync(path);
      } catch {
        // Already gone.
      }
    },
    async isHeld() {
      return (await readFile(path, 'utf8').catch(() => undefined)) === owner;
    },
  };
}
