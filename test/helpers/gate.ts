// A gate a test opens when it is ready: scripts wait on it instead of `sleep N` (issue 18), so a
// test that needs a script to still be running when it acts does not depend on the machine's speed.
// The gate is a FIFO: `: < fifo` blocks in open(2) without using any CPU until the test opens the
// FIFO for writing; once open, it is replaced by a regular file, so later waiters pass at once.
import { execa } from 'execa';
import { constants } from 'node:fs';
import { chmod, mkdtemp, open, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

export interface Gate {
  // The FIFO's path (in a directory every local user can reach: RunAs scripts wait on gates too).
  readonly path: string;
  // A shell command that returns once the gate is open.
  readonly wait: string;
  // Releases every waiter, now and later; idempotent.
  open(): Promise<void>;
}

const live = new Set<{ dir: string; gate: Gate }>();

// Makes a closed gate; every gate of a test is opened and removed after the test.
export async function makeGate(): Promise<Gate> {
  const dir = await mkdtemp(join(tmpdir(), 'rch-gate-'));
  await chmod(dir, 0o755);
  const path = join(dir, 'gate');
  await execa('mkfifo', ['-m', '0666', path]);
  let opened: Promise<void> | undefined;
  const gate: Gate = {
    path,
    wait: `: < '${path}'`,
    open: () => (opened ??= release(dir, path)),
  };
  live.add({ dir, gate });
  return gate;
}

// O_RDWR never blocks on a FIFO (Linux) and counts as a writer, which lets every blocked open(2) of
// a reader return; the regular file renamed over the FIFO keeps the gate open for later waiters.
async function release(dir: string, path: string): Promise<void> {
  const writer = await open(path, constants.O_RDWR | constants.O_NONBLOCK);
  try {
    const file = join(dir, 'open');
    await writeFile(file, '', { mode: 0o644 });
    await rename(file, path);
  } finally {
    await writer.close();
  }
}

afterEach(async () => {
  for (const entry of [...live]) {
    live.delete(entry);
    await entry.gate.open().catch(() => undefined);
    await rm(entry.dir, { recursive: true, force: true });
  }
});
