import { execFileSync, spawnSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest } from '../../src/manifest/schema.js';
import { ageKeyPair, tempDir } from '../harness/fixtures.js';
import { leasePostgres } from '../harness/lease.js';
import { type PgCluster, startPostgres } from '../harness/postgres.js';
import { destinationInputs, runPgDr } from '../harness/run.js';
import { PRIMARY_BUCKET, type S3Pair, SECONDARY_BUCKET, startS3Pair } from '../harness/s3.js';
import { requireBinary } from '../harness/tools.js';

// A schema-per-tenant database on the test cluster's defaults for locks:
// max_locks_per_transaction 64, max_connections 50, no prepared transactions. Its lock
// table is sized for 64 × (50 + 22 background processes) = 4,608 locks; measured, one
// pg_dump alone holds 7,780 with spare shared memory (3,810 tables with a serial key and
// its catalogs; see src/postgres/locks.ts), and pg-dr's limit is 1.6 × 4,608 = 7,372.
// pg_dump locks each table and each sequence (a serial column has one), about 160 catalogs,
// and pg-dr's exact counts take 400 more (200 tables and their primary keys at a time).

let pg: PgCluster;
let s3: S3Pair;
let work: string;
let identity: string;
let recipient: string;

beforeAll(async () => {
  requireBinary('age');
  requireBinary('zstd');
  [pg, s3] = await Promise.all([leasePostgres({ name: 'many-tables' }), startS3Pair()]);
  work = await tempDir('many-tables');
  ({ identity, recipient } = await ageKeyPair());
  const settings = await pg.query<{ name: string; setting: string }>(
    'postgres',
    `SELECT name, setting FROM pg_settings
      WHERE name IN ('max_locks_per_transaction', 'max_connections', 'max_prepared_transactions')
      ORDER BY name`,
  );
  // The defaults this file is about: a knob raised here would hide what they do.
  expect(settings).toEqual([
    { name: 'max_connections', setting: '50' },
    { name: 'max_locks_per_transaction', setting: '64' },
    { name: 'max_prepared_transactions', setting: '0' },
  ]);
});

afterAll(async () => {
  await Promise.all([pg?.stop(), s3?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

/**
 * `tenants` schemas of 10 tables, each with a serial primary key (a table, its index and
 * its sequence); table `tenant_<t>.t<i>` holds (10t + i) mod 3 rows. Created 1,000 tables
 * per transaction, so creating them does not run out of lock slots itself.
 */
async function createTenants(
  database: string,
  tenants: number,
  key = 'serial',
  cluster = pg,
): Promise<void> {
  await cluster.createDatabase(database);
  for (let from = 0; from < tenants; from += 100) {
    const to = Math.min(tenants, from + 100) - 1;
    await cluster.query(
      database,
      `DO $$ BEGIN FOR t IN ${from}..${to} LOOP
         EXECUTE format('CREATE SCHEMA tenant_%s', t);
         FOR i IN 0..9 LOOP
           EXECUTE format('CREATE TABLE tenant_%s.t%s (id ${key} PRIMARY KEY, v int)', t, i);
           EXECUTE format('INSERT INTO tenant_%s.t%s (id, v) SELECT g, g FROM generate_series(1, %s) g', t, i, (t * 10 + i) % 3);
         END LOOP;
       END LOOP; END $$`,
    );
  }
}

function backupInputs(database: string, prefix: string, cluster = pg): Record<string, string> {
  return {
    command: 'backup',
    'database-url': cluster.url(database),
    'age-recipients': recipient,
    prefix,
    'row-counts': 'exact',
    ...destinationInputs(s3.primary, s3.secondary),
  };
}

const env = () => ({ GITHUB_WORKSPACE: work });

/**
 * Rows of every tenant table, 500 tables per query: one query over all of them would lock
 * each table and its primary key at once, more than this server's lock table holds.
 */
async function rowCounts(database: string, cluster = pg): Promise<Map<string, number>> {
  const tables = await cluster.query<{ name: string }>(
    database,
    `SELECT format('%I.%I', n.nspname, c.relname) AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND n.nspname LIKE 'tenant\\_%' ORDER BY 1`,
  );
  const out = new Map<string, number>();
  for (let i = 0; i < tables.length; i += 500) {
    const sql = tables
      .slice(i, i + 500)
      .map((t) => `SELECT '${t.name}' AS name, count(*)::int AS n FROM ${t.name}`)
      .join(' UNION ALL ');
    for (const r of await cluster.query<{ name: string; n: number }>(database, sql))
      out.set(r.name, r.n);
  }
  return out;
}

describe('many tables on the default lock settings', () => {
  it('refuses 4,000 tables with a sequence each before anything is uploaded, naming the figures and the setting to raise', async () => {
    await createTenants('tenants_over', 400);
    const r = await runPgDr(backupInputs('tenants_over', 'big/'), env());
    expect(r.failed).toMatch(
      /^Not enough lock slots for pg_dump: pg_dump locks 4,000 tables and 4,000 sequences in one transaction \(8,560 locks with its catalogs and pg-dr's row counts\), and this server has max_locks_per_transaction 64 × \(max_connections 50 \+ 22 background processes \+ max_prepared_transactions 0\) = 4,608 lock slots; .* about 7,372 at most, .*Raise max_locks_per_transaction to 192 .*server restart\. Nothing was uploaded\.$/,
    );
    expect(await s3.primary.listKeys(PRIMARY_BUCKET, 'big/')).toEqual([]);
    expect(await s3.secondary.listKeys(SECONDARY_BUCKET, 'big/')).toEqual([]);

    // The refusal is warranted: pg_dump itself (tables, then sequences) fails on this server.
    const dump = spawnSync(
      join(pg.binDir, 'pg_dump'),
      ['--format=custom', pg.url('tenants_over')],
      {
        encoding: 'utf8',
        maxBuffer: 1 << 30,
      },
    );
    expect(dump.status).not.toBe(0);
    expect(dump.stderr).toMatch(/out of shared memory/);
    await pg.query('postgres', 'DROP DATABASE tenants_over');
  });

  it('backs up 3,400 tables with a sequence each (just under the budget, with a warning), and restores them through the restore route', async () => {
    await createTenants('tenants_fit', 340);
    const r = await runPgDr(backupInputs('tenants_fit', 'fit/'), env());
    expect(r.failed).toBeUndefined();
    expect(r.log).toMatch(
      /pg_dump locks 3,400 tables and 3,400 sequences in one transaction \(7,360 locks .*\): 160% of the server's .* = 4,608 lock slots\..*Raise max_locks_per_transaction to 128/,
    );
    const tables = parseManifest(r.outputs.manifest as string).database.rowCounts.tables;
    expect(tables).toHaveLength(3400);
    expect(
      tables.every(
        (t) => t.rows === (Number(t.schema.slice(7)) * 10 + Number(t.table.slice(1))) % 3,
      ),
    ).toBe(true);

    const restored = await runPgDr(
      {
        command: 'restore',
        'database-url': pg.url('tenants_fit_restored'),
        'age-identity': identity,
        prefix: 'fit/',
        ...destinationInputs(s3.primary, s3.secondary),
      },
      env(),
    );
    expect(restored.failed).toBeUndefined();
    const restoredCounts = await rowCounts('tenants_fit_restored');
    expect(restoredCounts.size).toBe(3400);
    expect(restoredCounts).toEqual(await rowCounts('tenants_fit'));
    expect(restoredCounts.get('tenant_339.t9')).toBe(3399 % 3);
    await pg.query('postgres', 'DROP DATABASE tenants_fit_restored');
    await pg.query('postgres', 'DROP DATABASE tenants_fit');
  });
});

// 10,000 tables on a server with PostgreSQL's own defaults (max_connections 100), backed up
// and restored through the restore route. About a minute here, so only with PG_DR_TEST_BIG=1;
// the cases above run on every suite run.
describe.runIf(process.env.PG_DR_TEST_BIG === '1')('10,000 tables on a default server', () => {
  let big: PgCluster;
  beforeAll(async () => {
    big = await startPostgres({ name: 'many-tables-default' });
    // The harness lowers max_connections to 50; this server gets PostgreSQL's default back.
    await big.query('postgres', 'ALTER SYSTEM SET max_connections = 100');
    const ctl = ['-u', 'postgres', '--', join(big.binDir, 'pg_ctl'), '-D', big.dataDir];
    execFileSync('runuser', [...ctl, '-l', big.logFile, '-w', 'restart'], { stdio: 'ignore' });
  }, 120_000);
  afterAll(async () => {
    await big?.stop();
  });

  it('backs up 10,000 tables (an integer key each, no sequence) and restores them with equal row counts', async () => {
    const [settings] = await big.query<{ c: string; l: string }>(
      'postgres',
      "SELECT current_setting('max_connections') AS c, current_setting('max_locks_per_transaction') AS l",
    );
    expect(settings).toEqual({ c: '100', l: '64' });
    let t = Date.now();
    await createTenants('tenants', 1000, 'int', big);
    const created = (Date.now() - t) / 1000;
    t = Date.now();
    const r = await runPgDr(backupInputs('tenants', 'default/', big), env());
    const backedUp = (Date.now() - t) / 1000;
    expect(r.failed).toBeUndefined();
    expect(r.log).toMatch(/pg_dump locks 10,000 tables and 0 sequences/);
    expect(parseManifest(r.outputs.manifest as string).database.rowCounts.tables).toHaveLength(
      10_000,
    );
    t = Date.now();
    const restored = await runPgDr(
      {
        command: 'restore',
        'database-url': big.url('tenants_restored'),
        'age-identity': identity,
        prefix: 'default/',
        ...destinationInputs(s3.primary, s3.secondary),
      },
      env(),
    );
    const restoredIn = (Date.now() - t) / 1000;
    expect(restored.failed).toBeUndefined();
    const counts = await rowCounts('tenants_restored', big);
    expect(counts.size).toBe(10_000);
    expect(counts).toEqual(await rowCounts('tenants', big));
    console.log(
      `10,000 tables: created ${created.toFixed(1)} s, backup ${backedUp.toFixed(1)} s, restore ${restoredIn.toFixed(1)} s`,
    );
  }, 900_000);
});
