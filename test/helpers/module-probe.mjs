// Preloaded into a handler process by a test (NODE_OPTIONS=--import): on SIGUSR2 it writes the
// node built-in modules the process has loaded so far (process.moduleLoadList), one per line, to
// RCH_TEST_MODULE_LIST.<pid>, through a temp file and a rename so that a reader never sees half of it.
import { renameSync, writeFileSync } from 'node:fs';

const target = process.env.RCH_TEST_MODULE_LIST;
if (target) {
  process.on('SIGUSR2', () => {
    const path = `${target}.${process.pid}`;
    writeFileSync(`${path}.tmp`, `${process.moduleLoadList.join('\n')}\n`);
    renameSync(`${path}.tmp`, path);
  });
}
