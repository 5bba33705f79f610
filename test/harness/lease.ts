/**
 * A PostgreSQL cluster for one test file, leased from the pool the vitest globalSetup runs
 * (`cluster-pool.ts`): the same `PgCluster` as `startPostgres` gives, but already running
 * and holding the seed template; `stop()` hands it back. Without the pool (a file run by
 * another runner), a private cluster is started instead.
 */
import { inject } from 'vitest';
import { type ClusterInfo, clusterHandle, type PgCluster, startPostgres } from './postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The cluster pool's URL (see cluster-pool.ts). */
    pgPoolUrl: string;
  }
}

export async function leasePostgres(opts: { name?: string } = {}): Promise<PgCluster> {
  const pool = inject('pgPoolUrl');
  if (pool === undefined) return startPostgres(opts);
  const response = await fetch(`${pool}/lease`, { method: 'POST' });
  const body = (await response.json()) as ClusterInfo & { id: number; error?: string };
  if (!response.ok) throw new Error(`cluster pool: ${body.error ?? response.status}`);
  let released: Promise<void> | undefined;
  return clusterHandle(body, () => {
    released ??= fetch(`${pool}/release/${body.id}`, { method: 'POST' }).then(async (r) => {
      await r.arrayBuffer();
    });
    return released;
  });
}
