// One-off measurement for the lock budget (src/postgres/locks.ts, issue 16), per server major:
//  1. census: the locks pg_dump holds, by kind, read from pg_locks while it waits on an object
//     another session holds in ACCESS EXCLUSIVE mode: a table created last (pg_dump waits in
//     its LOCK TABLE phase) and a sequence created last (it waits reading that value, with
//     every table and the other sequences read by then);
//  2. threshold: the most tables with a serial primary key that `pg_dump -Fc` (pg-dr's flags)
//     dumps on a fresh server with the default max_locks_per_transaction, bisected; the server
//     restarts before each probe, so no earlier probe's lock-table growth is reused.
// Usage: tsx scripts/bench/measure-locks.ts <major> <pg_dump> [census|threshold|both] [max_connections]
//        [first table count, 2000]
import { execa } from 'execa';
import pg from 'pg';
import { serverBinDir } from '../../test/harness/majors.js';
import { type PgCluster, startPostgres } from '../../test/harness/postgres.js';

const MAJOR = Number(process.argv[2]);
const PG_DUMP = process.argv[3] ?? '';
const WHAT = process.argv[4] ?? 'both';
const MAX_CONNECTIONS = Number(process.argv[5] ?? 50);
const START = Number(process.argv[6] ?? 2000);
const STEP = 10;

const asRoot = process.getuid?.() === 0;
const as = (file: string, args: string[]) =>
  asRoot ? execa('runuser', ['-u', 'postgres', '--', file, ...args]) : execa(file, args);

function dumpEnv(c: PgCluster, db: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    PGHOST: c.host,
    PGPORT: String(c.port),
    PGUSER: c.user,
    PGPASSWORD: c.password,
    PGDATABASE: db,
    PGAPPNAME: 'pg_dump',
  };
}

/** pg-dr's own flags (src/postgres/dump.ts), the archive to stdout (discarded). */
function pgDump(c: PgCluster, db: string) {
  return execa(PG_DUMP, ['--format=custom', '--no-password', '--compress=0'], {
    env: dumpEnv(c, db),
    extendEnv: false,
    reject: false,
    stdout: 'ignore',
  });
}

async function connect(c: PgCluster, db: string): Promise<pg.Client> {
  const client = new pg.Client({
    host: c.host,
    port: c.port,
    user: c.user,
    password: c.password,
    database: db,
  });
  await client.connect();
  return client;
}

/** Creates tables `t<from>…t<to-1>` with a serial key, 200 to a transaction. */
async function addTables(client: pg.Client, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i += 200) {
    const end = Math.min(to, i + 200);
    await client.query(
      `DO $$ BEGIN FOR i IN ${i}..${end - 1} LOOP
         EXECUTE format('CREATE TABLE t%s (id serial PRIMARY KEY)', i); END LOOP; END $$`,
    );
  }
}

async function dropTables(client: pg.Client, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i += 200) {
    const end = Math.min(to, i + 200);
    await client.query(
      `DO $$ BEGIN FOR i IN ${i}..${end - 1} LOOP
         EXECUTE format('DROP TABLE t%s', i); END LOOP; END $$`,
    );
  }
}

const CENSUS_SQL = `
  SELECT CASE WHEN l.locktype <> 'relation' THEN l.locktype
              WHEN c.oid IS NULL THEN 'relation in another database'
              WHEN n.nspname IN ('pg_catalog', 'information_schema') OR c.relisshared
                THEN 'catalog ' || c.relkind::text
              ELSE 'user ' || c.relkind::text END AS kind,
         l.mode, l.granted, l.fastpath, count(*)::int AS n
    FROM pg_locks l
    LEFT JOIN pg_class c ON c.oid = l.relation
    LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE l.pid = $1
   GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`;

/** Runs pg_dump while `blocker` is held, reads its locks, then lets it finish. */
async function census(c: PgCluster, db: string, blocker: string): Promise<void> {
  const hold = await connect(c, db);
  const look = await connect(c, db);
  try {
    const oid = (await look.query<{ oid: number }>('SELECT $1::regclass::oid AS oid', [blocker]))
      .rows[0]?.oid;
    await hold.query('BEGIN');
    // LOCK TABLE refuses sequences; renaming one takes ACCESS EXCLUSIVE too.
    await hold.query(
      blocker.endsWith('_seq')
        ? `ALTER SEQUENCE ${blocker} RENAME TO ${blocker}_held`
        : `LOCK TABLE ${blocker} IN ACCESS EXCLUSIVE MODE`,
    );
    const dump = pgDump(c, db);
    let pid = 0;
    for (let i = 0; i < 600 && pid === 0; i++) {
      const r = await look.query<{ pid: number }>(
        `SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid)
          WHERE a.application_name = 'pg_dump' AND NOT l.granted AND l.relation = $1`,
        [oid],
      );
      pid = r.rows[0]?.pid ?? 0;
      if (pid === 0) await new Promise((r) => setTimeout(r, 100));
    }
    if (pid === 0) throw new Error(`pg_dump never waited on ${blocker}`);
    const rows = (await look.query(CENSUS_SQL, [pid])).rows;
    const total = rows.reduce((s, r) => s + Number(r.n), 0);
    const shared = rows.filter((r) => !r.fastpath).reduce((s, r) => s + Number(r.n), 0);
    console.log(
      `\n[${MAJOR}] census, pg_dump waiting on ${blocker}: ${total} locks (${shared} in the shared table)`,
    );
    for (const r of rows)
      console.log(
        `  ${String(r.kind).padEnd(30)} ${String(r.mode).padEnd(18)} granted=${r.granted} fastpath=${r.fastpath} ${r.n}`,
      );
    await hold.query('ROLLBACK');
    const done = await dump;
    if (done.exitCode !== 0) throw new Error(`pg_dump failed: ${done.stderr}`);
  } finally {
    await hold.end();
    await look.end();
  }
}

async function runCensus(c: PgCluster): Promise<void> {
  const db = 'census';
  await c.createDatabase(db);
  const client = await connect(c, db);
  try {
    await addTables(client, 0, 100);
    await client.query(`
      CREATE TABLE plain (v int);
      CREATE TABLE parted (k int, v int) PARTITION BY RANGE (k);
      CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (10);
      CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (10) TO (20);
      CREATE TABLE ident (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text);
      CREATE VIEW a_view AS SELECT * FROM plain;
      CREATE MATERIALIZED VIEW a_matview AS SELECT * FROM plain;
      CREATE INDEX ON plain (v);
      CREATE TABLE zzz_block (v int);
      CREATE SEQUENCE zzz_seq;`);
  } finally {
    await client.end();
  }
  console.log(
    `[${MAJOR}] census database: 100 serial-key tables, 1 plain table with an index, a partitioned table with 2 partitions, ` +
      'an identity-key table with a text column, a view, a materialized view, zzz_block (table) and zzz_seq (sequence) created last',
  );
  await census(c, db, 'zzz_block');
  await census(c, db, 'zzz_seq');
}

async function restart(c: PgCluster): Promise<void> {
  await as(`${c.binDir}/pg_ctl`, ['-D', c.dataDir, '-l', c.logFile, '-w', '-m', 'fast', 'restart']);
}

async function runThreshold(c: PgCluster): Promise<void> {
  const db = 'tables';
  await c.createDatabase(db);
  const settings = await c.query<{ name: string; setting: string }>(
    'postgres',
    `SELECT name, setting FROM pg_settings WHERE name IN ('max_locks_per_transaction', 'max_connections',
       'max_prepared_transactions', 'max_worker_processes', 'max_wal_senders', 'autovacuum_max_workers',
       'autovacuum_worker_slots', 'shared_buffers') ORDER BY name`,
  );
  console.log(`\n[${MAJOR}] settings: ${settings.map((s) => `${s.name}=${s.setting}`).join(' ')}`);
  let count = 0;
  const probe = async (n: number): Promise<boolean> => {
    const client = await connect(c, db);
    try {
      if (n > count) await addTables(client, count, n);
      else if (n < count) await dropTables(client, n, count);
    } finally {
      await client.end();
    }
    count = n;
    await restart(c);
    const t0 = performance.now();
    const r = await pgDump(c, db);
    const ok = r.exitCode === 0;
    const why = ok ? '' : (/ERROR: .*/.exec(r.stderr)?.[0] ?? r.stderr.slice(-200));
    console.log(
      `[${MAJOR}] ${n} tables: ${ok ? 'ok' : 'FAILED'} in ${((performance.now() - t0) / 1000).toFixed(1)} s ${why}`,
    );
    if (!ok && !/out of shared memory/.test(r.stderr)) throw new Error(r.stderr);
    return ok;
  };
  // Up in steps of 500 from START, then bisect to STEP.
  let lo = START;
  if (!(await probe(lo))) throw new Error(`${START} tables already fail`);
  let hi = lo + 500;
  while (await probe(hi)) {
    lo = hi;
    hi += 500;
  }
  while (hi - lo > STEP) {
    const mid = Math.round((lo + hi) / 2 / STEP) * STEP;
    if (await probe(mid)) lo = mid;
    else hi = mid;
  }
  console.log(
    `[${MAJOR}] threshold: ${lo} tables ok, ${hi} fail (max_connections ${MAX_CONNECTIONS})`,
  );
}

const SERVER_BIN = process.env.SERVER_MAJOR ? Number(process.env.SERVER_MAJOR) : MAJOR;
const c = await startPostgres({ name: `locks${MAJOR}`, binDir: await serverBinDir(SERVER_BIN) });
try {
  // The harness's own settings are max_connections 50 and shared_buffers 32MB;
  // SHARED_BUFFERS=128MB (PostgreSQL's default) puts that back.
  const buffers = process.env.SHARED_BUFFERS;
  if (MAX_CONNECTIONS !== 50 || buffers) {
    await c.query('postgres', `ALTER SYSTEM SET max_connections = ${MAX_CONNECTIONS}`);
    if (buffers) await c.query('postgres', `ALTER SYSTEM SET shared_buffers = '${buffers}'`);
    await restart(c);
  }
  const v = await c.query<{ v: string }>('postgres', 'SELECT version() AS v');
  const d = await execa(PG_DUMP, ['--version']);
  console.log(`[${MAJOR}] server: ${v[0]?.v}\n[${MAJOR}] client: ${d.stdout}`);
  if (WHAT !== 'threshold') await runCensus(c);
  if (WHAT !== 'census') await runThreshold(c);
} finally {
  await c.stop();
}
