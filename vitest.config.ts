import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration tests start real servers; two cores are shared between them.
    fileParallelism: true,
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        // Pure logic and local tools: no servers (`npm run test:unit`).
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'] },
      },
      {
        extends: true,
        // Real PostgreSQL, s3rver, sshd, a local GitHub API; PostgreSQL clusters come from
        // a pool started once (test/harness/cluster-pool.ts).
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          globalSetup: ['test/harness/global-setup.ts'],
        },
      },
    ],
  },
});
