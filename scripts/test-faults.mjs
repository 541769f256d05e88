#!/usr/bin/env node
// `npm run test:faults`: the fault lanes of issue 13, end to end on a local layout — repeated kill -9
// of the daemon while runs go on (test/e2e/kill-loop.test.ts, restarts, the held launch of
// launch-fence), a full small file system (tmpfs: needs root, skipped with a message otherwise), a
// stalled download with a short timeout, an endpoint that answers with a huge body, statuses that
// agree with their journals after a restart. They are the tests tagged `faults` (vitest.config.ts):
// a file with a `// @module-tag faults` line, or one test with `{ tags: ['faults'] }`. `npm test`
// runs them with everything else; this runs only them, and loads only the files that hold them.
// Extra arguments go to vitest.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tagged = /(\/\/|\*)\s*@module-tag\s+faults\b|tags:\s*\[[^\]]*'faults'/;

// The test files (the Windows lane has its own config) that tag a file or a test `faults`.
function faultFiles() {
  return readdirSync(join(root, 'test'), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.test.ts'))
    .map((entry) => relative(root, join(entry.parentPath, entry.name)))
    .filter((file) => !file.startsWith(join('test', 'windows')) && tagged.test(readFileSync(join(root, file), 'utf8')))
    .sort();
}

const files = faultFiles();
if (files.length === 0) {
  console.error('test:faults: no test is tagged faults');
  process.exit(1);
}
console.info(`test:faults: ${files.join(', ')}`);
const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const result = spawnSync(process.execPath, [vitest, 'run', '--tags-filter=faults', ...files, ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
process.exit(result.status ?? 1);
