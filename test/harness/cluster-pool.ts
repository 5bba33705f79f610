/**
 * PostgreSQL clusters shared by the test files, one file at a time (the vitest globalSetup
 * runs this in the main process; the files lease through `lease.ts`).
 *
 * A lease is exclusive: the file has the whole cluster, as with a private one, so nothing
 * it does (roles, drills, pg_stat_activity, the lock table) races with another file. What
 * is saved is initdb, the server start and the seed: each cluster is started and seeded
 * once, and a file makes its `app` database with `CREATE DATABASE … TEMPLATE` (≈0.1 s
 * instead of ≈1 s). When a file hands a cluster back, the cluster is put back as it was
 * (its databases and roles dropped, `postgres` made anew); a cluster that cannot be put
 * back for sure is stopped instead, and the next lease starts a new one.
 */
import { createServer, type Server } from 'node:http';
import { SEED_TEMPLATE, seedDatabase } from './fixtures.js';
import {
  type ClusterInfo,
  type PgCluster,
  quoteIdent,
  resolvePgBinDir,
  startPostgres,
} from './postgres.js';

interface Pooled {
  readonly id: number;
  readonly cluster: PgCluster;
  /** Set while the cluster is being put back after a lease. */
  resetting: Promise<boolean> | undefined;
  leased: boolean;
}

export interface ClusterPool {
  /** `http://127.0.0.1:<port>`: POST /lease → ClusterInfo & { id }, POST /release/<id>. */
  readonly url: string;
  stop(): Promise<void>;
}

/** The databases a fresh cluster has, besides the seed template. */
const DEFAULT_DATABASES = ['postgres', 'template0', 'template1'];

export async function startClusterPool(): Promise<ClusterPool> {
  const binDir = resolvePgBinDir();
  const clusters: Pooled[] = [];
  let nextId = 1;
  let leases = 0;

  const startOne = async (): Promise<Pooled> => {
    const cluster = await startPostgres({ name: `pool-${nextId}`, binDir });
    try {
      await cluster.createDatabase(SEED_TEMPLATE);
      await seedDatabase(cluster, SEED_TEMPLATE);
      await cluster.query(
        'postgres',
        `ALTER DATABASE ${quoteIdent(SEED_TEMPLATE)} IS_TEMPLATE true`,
      );
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    const pooled: Pooled = { id: nextId++, cluster, resetting: undefined, leased: false };
    clusters.push(pooled);
    return pooled;
  };

  const lease = async (): Promise<Pooled> => {
    for (;;) {
      const idle = clusters.find((c) => !c.leased && c.resetting === undefined);
      if (idle) {
        idle.leased = true;
        leases++;
        return idle;
      }
      const back = clusters.find((c) => !c.leased && c.resetting !== undefined);
      if (back === undefined) break;
      await back.resetting;
    }
    const fresh = await startOne();
    fresh.leased = true;
    leases++;
    return fresh;
  };

  const release = (pooled: Pooled): void => {
    pooled.leased = false;
    pooled.resetting = putBack(pooled.cluster).then(
      () => true,
      async (err: unknown) => {
        console.warn(`[cluster-pool] cluster ${pooled.id} not reused: ${String(err)}`);
        clusters.splice(clusters.indexOf(pooled), 1);
        await pooled.cluster.stop();
        return false;
      },
    );
    void pooled.resetting.finally(() => {
      pooled.resetting = undefined;
    });
  };

  const server: Server = createServer((req, res) => {
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const released = /^\/release\/(\d+)$/.exec(req.url ?? '');
    if (req.method === 'POST' && req.url === '/lease') {
      lease().then(
        (pooled) => reply(200, { id: pooled.id, ...infoOf(pooled.cluster) }),
        (err: unknown) => reply(500, { error: String(err) }),
      );
    } else if (req.method === 'POST' && released) {
      const pooled = clusters.find((c) => c.id === Number(released[1]));
      if (pooled?.leased) release(pooled);
      reply(200, {});
    } else reply(404, { error: `no route ${req.method} ${req.url}` });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };

  return {
    url: `http://127.0.0.1:${port}`,
    async stop(): Promise<void> {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all(clusters.map((c) => c.resetting));
      await Promise.all(clusters.map((c) => c.cluster.stop()));
      if (leases > 0) console.log(`[cluster-pool] ${nextId - 1} clusters served ${leases} leases`);
    },
  };
}

function infoOf(c: PgCluster): ClusterInfo {
  return {
    host: c.host,
    port: c.port,
    user: c.user,
    password: c.password,
    binDir: c.binDir,
    dataDir: c.dataDir,
    logFile: c.logFile,
    socketDir: c.socketDir,
    caFile: c.caFile,
    viaSocket: false,
    tls: false,
  };
}

/**
 * Puts a cluster back as a fresh one (plus the seed template): every other database and
 * every role but the superuser dropped, `postgres` created anew, settings reset. Throws
 * when something is left that this does not undo.
 */
async function putBack(c: PgCluster): Promise<void> {
  await c.query(
    'template1',
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'`,
  );
  const keep = [...DEFAULT_DATABASES, SEED_TEMPLATE];
  const databases = await c.query<{ datname: string; datistemplate: boolean }>(
    'template1',
    'SELECT datname, datistemplate FROM pg_database WHERE NOT (datname = ANY($1)) ORDER BY 1',
    [keep],
  );
  for (const { datname, datistemplate } of databases) {
    if (datistemplate)
      await c.query('template1', `ALTER DATABASE ${quoteIdent(datname)} IS_TEMPLATE false`);
    await c.query('template1', `DROP DATABASE ${quoteIdent(datname)} WITH (FORCE)`);
  }
  // Whatever a file made in `postgres` (tables, settings, comments, grants) goes with it.
  await c.query('template1', 'DROP DATABASE IF EXISTS postgres WITH (FORCE)');
  await c.query('template1', 'CREATE DATABASE postgres TEMPLATE template0');

  const roles = (
    await c.query<{ rolname: string }>(
      'postgres',
      "SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' AND rolname <> current_user ORDER BY 1",
    )
  ).map((r) => quoteIdent(r.rolname));
  if (roles.length > 0) {
    for (const database of ['postgres', 'template1', SEED_TEMPLATE])
      await c.query(database, `DROP OWNED BY ${roles.join(', ')} CASCADE`);
    await c.query('postgres', `DROP ROLE ${roles.join(', ')}`);
  }
  await c.query('postgres', `ALTER ROLE ${quoteIdent(c.user)} RESET ALL`);
  await c.query('postgres', 'ALTER SYSTEM RESET ALL');
  await c.query('postgres', 'SELECT pg_reload_conf()');

  const [left] = await c.query<{ n: number }>(
    'postgres',
    `SELECT (SELECT count(*) FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global'))
          + (SELECT count(*) FROM pg_replication_slots)
          + (SELECT count(*) FROM pg_database WHERE NOT (datname = ANY($1)))
          + (SELECT count(*) FROM pg_roles WHERE rolname !~ '^pg_' AND rolname <> current_user)
          + (SELECT count(*) FROM pg_db_role_setting) AS n`,
    [keep],
  );
  if (Number(left?.n) !== 0) throw new Error('cluster-wide objects left after the lease');
}
