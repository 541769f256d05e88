import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The Windows lane runs under Wine with its own config: npm run test:windows.
    exclude: [...configDefaults.exclude, 'test/windows/**'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // Tests spawn process groups and daemons; forks keep a crashed child from taking a worker thread down.
    pool: 'forks',
    globalSetup: ['test/helpers/global-setup.ts'],
    // `npm run test:faults` (scripts/test-faults.mjs) runs the tests tagged `faults`: a whole file with
    // a `// @module-tag faults` line, or one test with `{ tags: ['faults'] }`. `npm test` runs them too.
    tags: [{ name: 'faults', description: 'fault lanes: kill -9 of the daemon, a full file system, a stalled download, a hostile endpoint (issue 13)' }],
  },
});
