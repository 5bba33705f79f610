/** vitest globalSetup for the integration and e2e files: the PostgreSQL cluster pool. */
import type { TestProject } from 'vitest/node';
import { startClusterPool } from './cluster-pool.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const pool = await startClusterPool();
  project.provide('pgPoolUrl', pool.url);
  return () => pool.stop();
}
