// Scans for a needle where secrets must not be (targets.md security): files under a root, the
// command lines and environments of live processes; and modes of everything under a root.
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

// Files under `root` whose bytes contain `needle` (the Node runtime and dependencies skipped).
export async function findFilesContaining(root: string, needle: string): Promise<string[]> {
  const hits: string[] = [];
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    if (path.includes('/node_modules/') || path.endsWith('/bin/node')) continue;
    const bytes = await readFile(path).catch(() => Buffer.alloc(0));
    if (bytes.includes(needle)) hits.push(path);
  }
  return hits;
}

// Live processes (not this one) whose cmdline or environ contains `needle`, as "pid: cmdline".
export async function findProcessesContaining(needle: string, file: 'cmdline' | 'environ'): Promise<string[]> {
  const hits: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const bytes = await readFile(`/proc/${pid}/${file}`).catch(() => Buffer.alloc(0));
    if (bytes.includes(needle)) hits.push(`${pid}: ${(await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).replaceAll('\0', ' ')}`);
  }
  return hits;
}

// The real uid of a live process, from /proc/<pid>/status.
export async function readProcessUid(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1];
  return uid === undefined ? undefined : Number(uid);
}

// Every entry under `root` (root included) with its mode bits and owner, symlinks not followed.
export async function listModes(root: string): Promise<Array<{ path: string; mode: number; uid: number; isDirectory: boolean }>> {
  const paths = [root, ...(await readdir(root, { recursive: true, withFileTypes: true })).map((entry) => join(entry.parentPath, entry.name))];
  const entries = [];
  for (const path of paths) {
    const stats = await lstat(path).catch(() => undefined);
    if (stats && !stats.isSymbolicLink()) entries.push({ path, mode: stats.mode & 0o7777, uid: stats.uid, isDirectory: stats.isDirectory() });
  }
  return entries;
}

// Polls `probe` until it is true; throws after `timeoutMs`.
export async function waitUntil(probe: () => Promise<boolean>, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
