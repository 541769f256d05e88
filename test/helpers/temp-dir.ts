// A fresh temp directory per test (conventions: each test gets its own mkdtemp root and cleans up).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';

// Registers beforeEach/afterEach hooks; the returned function gives the current test's directory.
export function useTempDir(prefix: string): () => string {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), `rch-${prefix}-`));
  });
  afterEach(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
    dir = '';
  });
  return () => dir;
}
