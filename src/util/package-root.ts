// The package root: the directory holding HandlerManifest.json (and bin/, dist/, package.json),
// found by walking up from this module, which sits at a different depth in each layout: src/
// under vitest, dist/ from tsc, dist/ or dist/chunks/ in the bundled package (scripts/package.mjs).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Falls back to the working directory, which the agent sets to the base dir (protocol.md §2).
function findPackageRoot(start: string): string {
  for (let dir = start; dirname(dir) !== dir; dir = dirname(dir)) {
    if (existsSync(join(dir, 'HandlerManifest.json'))) return dir;
  }
  return process.cwd();
}

export const packageRoot = findPackageRoot(dirname(fileURLToPath(import.meta.url)));
