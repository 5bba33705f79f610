/**
 * Parallel restore (`restore-jobs` above 1), against a real PostgreSQL and the s3rver pair:
 * the archive goes through a private temporary file into `pg_restore -j`, gives the same
 * rows, owners and privileges as the source, and the file is gone afterwards — after a
 * success, after a corrupted object (the restore falls back to the other destination), and
 * when the free space is too small (a 1 MiB tmpfs), which is refused before anything is
 * written.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ageKeyPair, createSeededDatabase, tableRowCounts, tempDir } from '../harness/fixtures.js';
import { leasePostgres } from '../harness/lease.js';
import { type PgCluster, quoteIdent } from '../harness/postgres.js';
import { destinationInputs, runPgDr } from '../harness/run.js';
import { type S3Pair, startS3Pair } from '../harness/s3.js';

let pg: PgCluster;
let s3: S3Pair;
let work: string;
let identity: string;
let recipient: string;
let source: Record<string, number>;
let backupId: string;
let dumpName: string;
const suffix = Math.random().toString(36).slice(2, 8);
const owner = `jobs_owner_${suffix}`;
const reader = `jobs_reader_${suffix}`;
const quoteLiteral = (v: string) => `'${v.replace(/'/g, "''")}'`;

const destinations = () => destinationInputs(s3.primary, s3.secondary);

/** Who owns each relation, function and schema, and the privileges granted on them. */
async function catalog(db: string): Promise<unknown[]> {
  return pg.query(
    db,
    `SELECT kind, name, pg_catalog.pg_get_userbyid(owner) AS owner, acl FROM (
       SELECT 'rel:' || c.relkind::text AS kind, n.nspname || '.' || c.relname AS name,
              c.relowner AS owner, c.relacl::text AS acl
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
       UNION ALL
       SELECT 'proc', n.nspname || '.' || p.proname || '(' || pg_catalog.oidvectortypes(p.proargtypes) || ')',
              p.proowner, p.proacl::text
         FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
       UNION ALL
       SELECT 'schema', nspname, nspowner, nspacl::text FROM pg_catalog.pg_namespace
        WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%'
       UNION ALL
       SELECT 'constraint', conrelid::regclass::text || '.' || conname, 0, contype::text
         FROM pg_catalog.pg_constraint WHERE connamespace NOT IN
           (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname IN ('pg_catalog', 'information_schema'))
     ) x ORDER BY kind, name`,
  );
}

/** What is left in a temporary folder: nothing, once a restore is over. */
async function leftIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

function restoreInputs(url: string, tmp: string): Record<string, string> {
  return {
    command: 'restore',
    'database-url': url,
    'age-identity': identity,
    'restore-jobs': '2',
    'restore-temp-dir': tmp,
    ...destinations(),
  };
}

beforeAll(async () => {
  [pg, s3] = await Promise.all([leasePostgres({ name: 'restore-jobs' }), startS3Pair()]);
  await createSeededDatabase(pg, 'app');
  // Owners and privileges to carry: a role owns a table with rows, another may read it.
  await pg.query('postgres', `CREATE ROLE ${quoteIdent(owner)}`);
  await pg.query('postgres', `CREATE ROLE ${quoteIdent(reader)}`);
  await pg.query(
    'app',
    `CREATE TABLE public.owned_by_role (id int PRIMARY KEY, v text);
     INSERT INTO public.owned_by_role SELECT g, md5(g::text) FROM generate_series(1, 5000) g;
     ALTER TABLE public.owned_by_role OWNER TO ${quoteIdent(owner)};
     GRANT SELECT ON public.owned_by_role TO ${quoteIdent(reader)};`,
  );
  source = await tableRowCounts(pg, 'app');
  work = await tempDir('restore-jobs');
  ({ identity, recipient } = await ageKeyPair());
  const b = await runPgDr({
    command: 'backup',
    'database-url': pg.url('app'),
    'age-recipients': recipient,
    ...destinations(),
  });
  expect(b.failed).toBeUndefined();
  backupId = b.outputs['backup-id'] as string;
  dumpName = JSON.parse(b.outputs.manifest as string).objects.find(
    (o: { kind: string }) => o.kind === 'database',
  ).name;
});

afterAll(async () => {
  await Promise.all([pg?.stop(), s3?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

/** Databases a restore made on its way (`…_pgdr_…`): none may outlive a failed restore. */
async function pgDrDatabases(): Promise<string[]> {
  const rows = await pg.query<{ datname: string }>(
    'postgres',
    "SELECT datname FROM pg_database WHERE datname LIKE '%\\_pgdr\\_%'",
  );
  return rows.map((r) => r.datname);
}

/** Both destinations' attempts failed, each with pg_restore's error about `lookup`. */
function expectEveryAttemptFailed(r: {
  failed?: string | undefined;
  outputs: Record<string, string>;
}) {
  expect(r.failed).toBeDefined();
  expect(r.outputs.report, r.failed).toBeDefined();
  const report = JSON.parse(r.outputs.report as string);
  expect(report.attempts).toHaveLength(2);
  for (const a of report.attempts) {
    expect(a.ok).toBe(false);
    expect(a.error).toMatch(/pg_restore exited with code 1: .*relation "lookup" does not exist/);
  }
}

describe('restore-jobs 2', () => {
  it('restores the same rows, owners and privileges through pg_restore -j 2; the temporary file is gone', async () => {
    const tmp = join(work, 'tmp-ok');
    await mkdir(tmp);
    const url = await pg.createDatabase('target_jobs');
    const r = await runPgDr(restoreInputs(url, tmp));
    expect(r.failed, r.log).toBeUndefined();
    expect(r.log).toContain('pg_restore -j 2 into');
    expect(r.log).toMatch(/Download, check and decrypt the archive into a temporary file/);
    const report = JSON.parse(r.outputs.report as string);
    expect(report).toMatchObject({ ok: true, backupId, restoredFrom: 'b2', mismatches: [] });
    expect(report.rowCounts).toBe('compared');
    expect(await tableRowCounts(pg, 'target_jobs')).toEqual(source);
    expect(source['public.owned_by_role']).toBe(5000);
    expect(await catalog('target_jobs')).toEqual(await catalog('app'));
    expect(await leftIn(tmp)).toEqual([]);
  });

  it('a drill (verify-level restore) with restore-jobs 2 restores, compares and leaves no file', async () => {
    const tmp = join(work, 'tmp-drill');
    await mkdir(tmp);
    const v = await runPgDr({
      command: 'verify',
      'backup-id': backupId,
      'verify-level': 'restore',
      'drill-database-url': pg.url('postgres'),
      'age-identity': identity,
      'restore-jobs': '2',
      'restore-temp-dir': tmp,
      ...destinations(),
    });
    expect(v.failed, v.log).toBeUndefined();
    expect(v.log).toContain('pg_restore -j 2 into');
    expect(v.outputs.status).toBe('ok');
    expect(await leftIn(tmp)).toEqual([]);
  });

  it('one corrupted byte in the primary: refused before pg_restore, restored from the secondary, no file left', async () => {
    const key = `disaster_recovery/${backupId}/${dumpName}`;
    const original = await s3.primary.getObject('pgdr-primary', key);
    const bad = Buffer.from(original);
    const at = Math.floor(bad.length / 2);
    bad[at] = (bad[at] as number) ^ 0xff;
    await s3.primary.putObject('pgdr-primary', key, bad);
    const tmp = join(work, 'tmp-corrupt');
    await mkdir(tmp);
    try {
      const url = await pg.createDatabase('target_jobs_fallback');
      const r = await runPgDr(restoreInputs(url, tmp));
      expect(r.failed, r.log).toBeUndefined();
      const report = JSON.parse(r.outputs.report as string);
      expect(report.restoredFrom).toBe('r2');
      expect(report.attempts[0]).toMatchObject({ destination: 'b2', ok: false });
      // Named once, as the object's damage (not as a failure of the file it was written to).
      expect(report.attempts[0].error).toMatch(
        new RegExp(
          `^${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: (decryption failed: .*fails authentication|SHA-256 [0-9a-f]{64} differs)`,
        ),
      );
      expect(report.attempts[0].error.split(key)).toHaveLength(2);
      // The corrupted copy never reached pg_restore: only the secondary's run is logged.
      expect(r.log.match(/pg_restore -j 2 into/g)).toHaveLength(1);
      expect(await tableRowCounts(pg, 'target_jobs_fallback')).toEqual(source);
      expect(await leftIn(tmp)).toEqual([]);
      expect(await pgDrDatabases()).toEqual([]);
    } finally {
      await s3.primary.putObject('pgdr-primary', key, original);
    }
  });

  // Mounting a tmpfs needs root (as here and in .ci/run); the unit test covers the arithmetic.
  it.runIf(process.getuid?.() === 0)(
    'too little free space (a 1 MiB tmpfs): refused before anything is written, naming the folder and the figures',
    async () => {
      const tmp = join(work, 'tmpfs');
      await mkdir(tmp);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', tmp]);
      try {
        const url = await pg.createDatabase('target_jobs_nospace');
        const r = await runPgDr(restoreInputs(url, tmp));
        expect(r.failed).toBeDefined();
        expect(r.failed).toContain("'restore-temp-dir'");
        expect(r.failed).toContain(JSON.stringify(tmp));
        expect(r.failed).toMatch(
          /Not enough free space in .*: \S+ \S+ free \(1048576 bytes\), \S+ \S+ needed \(\d+ bytes: the \d+-byte archive plus a margin\)/,
        );
        expect(r.failed).toMatch(/restore-jobs: 1/);
        expect(await leftIn(tmp)).toEqual([]);
        expect(await tableRowCounts(pg, 'target_jobs_nospace')).toEqual({});
        expect(await pgDrDatabases()).toEqual([]);
      } finally {
        execFileSync('umount', [tmp]);
      }
    },
  );

  it('pg_restore -j failing (an index whose function reads a table by an unqualified name): both attempts fail, the target is unchanged, no file left', async () => {
    // A well-known trap: pg_restore runs with an empty search_path, so the index build
    // cannot find "lookup" and fails, at every destination alike.
    await pg.query('postgres', 'CREATE DATABASE broken_src');
    await pg.query(
      'broken_src',
      `CREATE TABLE lookup (n int); INSERT INTO lookup VALUES (1);
       CREATE FUNCTION plus_lookup(int) RETURNS int LANGUAGE sql IMMUTABLE
         AS 'SELECT $1 + (SELECT max(n) FROM lookup)';
       CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100);
       CREATE INDEX t_plus ON t (plus_lookup(id));`,
    );
    const b = await runPgDr({
      command: 'backup',
      prefix: 'broken/',
      'database-url': pg.url('broken_src'),
      'age-recipients': recipient,
      ...destinations(),
    });
    expect(b.failed, b.log).toBeUndefined();
    const tmp = join(work, 'tmp-broken');
    await mkdir(tmp);
    const url = await pg.createDatabase('target_jobs_broken');
    const r = await runPgDr({ ...restoreInputs(url, tmp), prefix: 'broken/' });
    expectEveryAttemptFailed(r);
    for (const a of JSON.parse(r.outputs.report as string).attempts)
      expect(a.error).toMatch(/error: .*relation "lookup" does not exist/);
    expect(await leftIn(tmp)).toEqual([]);
    expect(await tableRowCounts(pg, 'target_jobs_broken')).toEqual({});
    expect(await pgDrDatabases()).toEqual([]);
  });

  it('failing mid-way (pg_restore -j rejects the rows of a table): both attempts fail, no file, no new database, the target unchanged', async () => {
    // A domain whose check calls a function that reads a table by an unqualified name:
    // pg_restore's empty search_path makes every row of "t" fail while its rows load.
    await pg.query('postgres', 'CREATE DATABASE midway_src');
    await pg.query(
      'midway_src',
      `CREATE TABLE lookup (n int); INSERT INTO lookup VALUES (1);
       CREATE FUNCTION positive_lookup(int) RETURNS boolean LANGUAGE sql STABLE
         AS 'SELECT $1 + (SELECT max(n) FROM lookup) > 0';
       CREATE DOMAIN checked_int AS int CHECK (positive_lookup(VALUE));
       CREATE TABLE t (id checked_int, pad text);
       INSERT INTO t SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 20000) g;
       CREATE INDEX t_id ON t ((id::int));`,
    );
    const b = await runPgDr({
      command: 'backup',
      prefix: 'midway/',
      'database-url': pg.url('midway_src'),
      'age-recipients': recipient,
      ...destinations(),
    });
    expect(b.failed, b.log).toBeUndefined();
    const tmp = join(work, 'tmp-midway');
    await mkdir(tmp);
    const url = await pg.createDatabase('target_jobs_midway');
    await pg.query(
      'target_jobs_midway',
      'CREATE TABLE keep_me (v int); INSERT INTO keep_me VALUES (7)',
    );
    const r = await runPgDr({ ...restoreInputs(url, tmp), prefix: 'midway/', force: 'true' });
    expectEveryAttemptFailed(r);
    expect(await leftIn(tmp)).toEqual([]);
    expect(await tableRowCounts(pg, 'target_jobs_midway')).toEqual({ 'public.keep_me': 1 });
    expect(await pgDrDatabases()).toEqual([]);
  });

  it('bytes that decrypt but do not match the SHA-256 in the manifest (at both destinations): nothing is switched in, no file, no new database', async () => {
    // The object is intact for age and pg_restore; only its recorded SHA-256 differs, so
    // the mismatch is known at the very end of the download, after every row went by.
    const key = `disaster_recovery/${backupId}/manifest.json`;
    const servers = [
      [s3.primary, 'pgdr-primary'],
      [s3.secondary, 'pgdr-secondary'],
    ] as const;
    const originals = await Promise.all(servers.map(([srv, bucket]) => srv.getObject(bucket, key)));
    const doc = JSON.parse(String(originals[0]));
    const db = doc.objects.find((o: { kind: string }) => o.kind === 'database');
    const wrong = (db.encrypted.sha256 as string).replace(/^./, (c) => (c === '0' ? '1' : '0'));
    db.encrypted.sha256 = wrong;
    const tmp = join(work, 'tmp-sha');
    await mkdir(tmp);
    try {
      for (const [srv, bucket] of servers)
        await srv.putObject(bucket, key, Buffer.from(JSON.stringify(doc)));
      const url = await pg.createDatabase('target_jobs_sha');
      await pg.query(
        'target_jobs_sha',
        'CREATE TABLE keep_me (v int); INSERT INTO keep_me VALUES (7)',
      );
      const r = await runPgDr({ ...restoreInputs(url, tmp), 'backup-id': backupId, force: 'true' });
      expect(r.failed).toBeDefined();
      expect(r.outputs.report, r.failed).toBeDefined();
      const report = JSON.parse(r.outputs.report as string);
      expect(report.attempts).toHaveLength(2);
      for (const a of report.attempts) {
        expect(a.ok).toBe(false);
        expect(a.error).toMatch(
          new RegExp(`SHA-256 [0-9a-f]{64} differs from the manifest's ${wrong}`),
        );
      }
      expect(await tableRowCounts(pg, 'target_jobs_sha')).toEqual({ 'public.keep_me': 1 });
      expect(await leftIn(tmp)).toEqual([]);
      expect(await pgDrDatabases()).toEqual([]);
    } finally {
      for (const [i, [srv, bucket]] of servers.entries())
        await srv.putObject(bucket, key, originals[i] as Buffer);
    }
  });

  it('as a non-superuser (ownership: restorer): the -L list of what it may restore works with -j 2', async () => {
    const admin = `jobs_admin_${suffix}`;
    await pg.query(
      'postgres',
      `CREATE ROLE ${quoteIdent(admin)} LOGIN CREATEDB CREATEROLE PASSWORD 'admin-pw-7'`,
    );
    // A database it does not own could not be renamed: the restore creates it.
    const url = new URL(pg.url('target_jobs_restorer'));
    url.username = admin;
    url.password = 'admin-pw-7';
    const tmp = join(work, 'tmp-restorer');
    await mkdir(tmp);
    const r = await runPgDr({
      ...restoreInputs(url.toString(), tmp),
      ownership: 'restorer',
    });
    expect(r.failed, r.log).toBeUndefined();
    expect(r.log).toContain('pg_restore -j 2 into');
    expect(await tableRowCounts(pg, 'target_jobs_restorer')).toEqual(source);
    const owners = await pg.query<{ owner: string }>(
      'target_jobs_restorer',
      `SELECT DISTINCT pg_catalog.pg_get_userbyid(relowner) AS owner FROM pg_catalog.pg_class c
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'`,
    );
    expect(owners).toEqual([{ owner: admin }]);
    // The privilege granted in the source is kept.
    const [grant] = await pg.query<{ ok: boolean }>(
      'target_jobs_restorer',
      `SELECT pg_catalog.has_table_privilege(${quoteLiteral(reader)}, 'public.owned_by_role', 'SELECT') AS ok`,
    );
    expect(grant?.ok).toBe(true);
    expect(await leftIn(tmp)).toEqual([]);
  });
});
