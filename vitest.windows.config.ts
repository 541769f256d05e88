import { defineConfig } from 'vitest/config';

// The Windows lane (docs/windows-wrapper.md): real Windows processes under Wine, one prefix per run.
// Wine process start takes 0.3–3 s, PowerShell 2–6 s: timeouts are generous, and files run one at a
// time so the two cores of a shared machine are not swamped.
export default defineConfig({
  test: {
    include: ['test/windows/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: 'forks',
    fileParallelism: false,
    globalSetup: ['test/windows/global-setup.ts'],
  },
});
