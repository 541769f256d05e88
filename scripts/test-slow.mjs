#!/usr/bin/env node
// `npm run test:slow`: the whole suite as a machine half as fast would run it (issue 18), for use
// before stopping and in review, not in CI. One CPU burner per CPU, each pinned to its CPU with
// taskset at the same priority as the tests, leaves every process about half of a CPU: a machine of
// the same size at half the speed. (Pinning the suite to one CPU instead would halve how much runs
// at once but not how fast each process runs, and timing bugs hide in the latter.)
// Extra arguments go to vitest (e.g. a file filter). The ten slowest tests are printed at the end,
// from vitest's JSON report in build/test-slow.json.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const report = join(root, 'build', 'test-slow.json');
const cpus = availableParallelism();

function startBurners() {
  const hasTaskset = spawnSync('taskset', ['--version'], { stdio: 'ignore' }).status === 0;
  return Array.from({ length: cpus }, (_, cpu) => {
    const burn = [process.execPath, '-e', 'for (;;) {}'];
    const [command, ...args] = hasTaskset ? ['taskset', '-c', String(cpu), ...burn] : burn;
    const burner = spawn(command, args, { stdio: 'ignore' });
    burner.unref();
    return burner;
  });
}

function printSlowest() {
  let results;
  try {
    results = JSON.parse(readFileSync(report, 'utf8')).testResults ?? [];
  } catch {
    return;
  }
  const tests = results.flatMap((file) =>
    (file.assertionResults ?? []).map((test) => ({ ms: test.duration ?? 0, name: `${file.name.slice(root.length + 1)} › ${test.title}`, status: test.status })),
  );
  tests.sort((a, b) => b.ms - a.ms);
  process.stdout.write('\ntest:slow — the ten slowest tests:\n');
  for (const test of tests.slice(0, 10)) process.stdout.write(`  ${(test.ms / 1000).toFixed(1).padStart(6)} s  ${test.status}  ${test.name}\n`);
}

mkdirSync(dirname(report), { recursive: true });
const burners = startBurners();
const stopBurners = () => burners.forEach((burner) => burner.kill('SIGKILL'));
process.on('exit', stopBurners);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));
process.stdout.write(`test:slow: ${burners.length} CPU burner(s) beside the suite (one per CPU, same priority)\n`);
const started = Date.now();
const vitest = spawnSync('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
});
stopBurners();
printSlowest();
process.stdout.write(`test:slow: wall time ${((Date.now() - started) / 1000).toFixed(0)} s on ${cpus} CPUs at half speed\n`);
process.exit(vitest.status ?? 1);
