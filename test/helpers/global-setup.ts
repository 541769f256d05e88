// Packages the extension once per test run and hands the zip's path to the tests
// (`inject('packageZip')`); the e2e suite installs that zip like the guest agent would.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    // Absolute path of the packaged extension zip; '' when the tree could not be built.
    packageZip: string;
  }
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

// `npm test` builds first; a bare `vitest run` on a fresh tree does not.
function ensureBuilt(): boolean {
  if (existsSync(path.join(root, 'dist', 'cli.js'))) return true;
  try {
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  } catch {
    // Fall through: the check below decides.
  }
  return existsSync(path.join(root, 'dist', 'cli.js'));
}

// Runs scripts/package.mjs and returns the zip path it prints last.
function runPackager(): string {
  const stdout = execFileSync(process.execPath, [path.join(root, 'scripts', 'package.mjs')], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const zip = stdout.trim().split('\n').at(-1) ?? '';
  if (!path.isAbsolute(zip) || !existsSync(zip)) throw new Error(`package.mjs printed no zip path: ${stdout}`);
  return zip;
}

// Vitest global setup: provides `packageZip` to every test file.
export default function setup(project: TestProject): void {
  if (!ensureBuilt()) {
    console.warn('global-setup: dist/cli.js could not be built; packageZip is empty and e2e tests will fail');
    project.provide('packageZip', '');
    return;
  }
  project.provide('packageZip', runPackager());
}
