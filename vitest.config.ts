import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration tests start real servers; two cores are shared between them.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
