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
  },
});
