// Preloaded into a handler process by a test (NODE_OPTIONS=--import): on SIGUSR2 it writes the
// node built-in modules the process has loaded so far (process.moduleLoadList), one per line, to
// RCH_TEST_MODULE_LIST.<pid>, through a temp file and a rename so that a reader never sees half of it;
// and, to RCH_TEST_MODULE_LIST.<pid>.v8, how V8 runs this process's JS: the tier a hot function
// reached (V8's optimization status bits, from %GetOptimizationStatus after a million calls) and
// the young generation's size (v8.getHeapSpaceStatistics).
import { renameSync, writeFileSync } from 'node:fs';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

const target = process.env.RCH_TEST_MODULE_LIST;

// The optimization status of a function called a million times (natives syntax allowed for this
// one function, compiled after the flag is set).
export async function hotFunctionStatus() {
  setFlagsFromString('--allow-natives-syntax');
  const hot = new Function('x', 'return (x * 31 + 7) % 1000003;');
  const status = new Function('f', 'return %GetOptimizationStatus(f);');
  let sum = 0;
  for (let round = 0; round < 20; round += 1) {
    for (let i = 0; i < 50_000; i += 1) sum += hot(i);
    await new Promise((resolve) => setTimeout(resolve, 5)); // concurrent compilation lands meanwhile
  }
  return { status: status(hot), sum };
}

function write(path, text) {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

// The young generation's size after allocating much that survives a few scavenges (what makes
// V8 grow it, as a burst of runs does).
export function youngGenerationAfterChurn() {
  let kept = [];
  for (let i = 0; i < 400_000; i += 1) {
    kept.push({ i, text: `entry ${i}` });
    if (kept.length > 100_000) kept = [];
  }
  return getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.space_size;
}

if (target) {
  process.on('SIGUSR2', async () => {
    const path = `${target}.${process.pid}`;
    const newSpaceSize = youngGenerationAfterChurn();
    const { status } = await hotFunctionStatus();
    write(`${path}.v8`, JSON.stringify({ optimizationStatus: status, newSpaceSize }));
    write(path, `${process.moduleLoadList.join('\n')}\n`);
  });
}
