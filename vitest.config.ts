import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration files spend much of their time waiting (on servers, back-offs, timeouts):
    // three at once keep the two cores busier than two. Measured on a busy 2-core machine:
    // 2 workers ≈ 205 s, 3 ≈ 160 s, 4 ≈ 150 s (with more contention for the timing checks).
    // Alone on this 2-core machine the whole suite takes ~146 s with the cores 89% busy:
    // it is bound by CPU, not by waiting. See test/harness/timeline-reporter.ts.
    fileParallelism: true,
    maxWorkers: 3,
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
          // The files of one worker share loaded modules (the AWS SDK, pg, ssh2, …) instead of
          // importing them again per file: 34 s → 13 s of imports, all 763 tests unchanged.
          // Each file still starts its own servers and leases its own cluster.
          isolate: false,
        },
      },
    ],
  },
});
