import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // Tests spawn process groups and daemons; forks keep a crashed child from taking a worker thread down.
    pool: 'forks',
    globalSetup: ['test/helpers/global-setup.ts'],
  },
});
