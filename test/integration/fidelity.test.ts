import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serverAccess } from '../../src/postgres/clients.js';
import type { Globals } from '../../src/postgres/globals.js';
import { checkSecurityDefiners } from '../../src/postgres/rebuild.js';
import { parseDatabaseUrl } from '../../src/postgres/url.js';
import { type PgCluster, quoteIdent, startPostgres } from '../harness/postgres.js';
import { destinationInputs, runPgDr } from '../harness/run.js';
import { type S3Pair, startS3Pair } from '../harness/s3.js';

/**
 * A restore gives back THE SAME database on a brand-new server: roles (attributes,
 * passwords, memberships, settings), owners, privileges (column grants, default privileges,
 * RLS policies naming roles, SECURITY DEFINER functions with EXECUTE revoked from PUBLIC),
 * database properties (ICU collation, comment, settings, grants, per-role settings), large
 * objects, a publication, a DDL-logging event trigger and a populated materialized view.
 */

let source: PgCluster;
let target: PgCluster;
let drills: PgCluster;
let managed: PgCluster;
let s3: S3Pair;
let identity: string;
let backupId: string;

const PASSWORDS: Record<string, string> = {
  app_owner: 'owner-pw-1',
  app_rw: 'rw-pw-2',
  app_ro: 'ro-pw-3',
  outsider: 'outsider-pw-4',
};
/** A name a hostile database owner might choose: quote, backslash, newline, a psql meta-command. */
const MARKER = join(tmpdir(), `pg-dr-pwned-${process.pid}`);
const HOSTILE = `b'\\\n\\! touch ${MARKER}\n--`;
/** The roles the database needs: owners, grantees, members of grantees. */
const ROLES = ['app_owner', 'app_rw', 'app_ro', 'app_read', HOSTILE];
/** A login role this database never names: not the database's, not backed up with it. */
const OUTSIDER = 'outsider';

const CLUSTER_SQL = `
CREATE ROLE app_owner LOGIN PASSWORD '${PASSWORDS.app_owner}';
CREATE ROLE app_rw LOGIN PASSWORD '${PASSWORDS.app_rw}';
CREATE ROLE app_ro LOGIN PASSWORD '${PASSWORDS.app_ro}' CONNECTION LIMIT 5;
CREATE ROLE app_read NOLOGIN;
CREATE ROLE outsider LOGIN PASSWORD '${PASSWORDS.outsider}';
GRANT app_read TO app_ro;
ALTER ROLE app_ro SET statement_timeout = '5s';
COMMENT ON ROLE app_read IS 'read-only group';
CREATE ROLE ${quoteIdent(HOSTILE)} NOLOGIN;
ALTER ROLE ${quoteIdent(HOSTILE)} SET application_name = E'x\\\\'' ; \\! touch ${MARKER}';
CREATE DATABASE app OWNER app_owner TEMPLATE template0 ENCODING 'UTF8'
  LOCALE_PROVIDER icu ICU_LOCALE 'de-DE' LOCALE 'C.UTF-8';
COMMENT ON DATABASE app IS 'The shop''s data \\ with a backslash';
ALTER DATABASE app SET work_mem = '8MB';
ALTER ROLE app_rw IN DATABASE app SET search_path = shop, "$user", public;
REVOKE CONNECT ON DATABASE app FROM PUBLIC;
GRANT CONNECT ON DATABASE app TO app_owner, app_rw, app_ro;
`;

const APP_SQL = `
CREATE TABLE public.ddl_log (id serial PRIMARY KEY, tag text NOT NULL);
CREATE FUNCTION public.log_ddl() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER AS
  $$ BEGIN INSERT INTO public.ddl_log (tag) VALUES (tg_tag); END $$;
CREATE EVENT TRIGGER log_ddl ON ddl_command_end EXECUTE FUNCTION public.log_ddl();
SET ROLE app_owner;
CREATE SCHEMA shop;
ALTER DEFAULT PRIVILEGES IN SCHEMA shop GRANT SELECT ON TABLES TO app_read;
CREATE TABLE shop.customers (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL, secret text);
CREATE TABLE shop.orders (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES shop.customers, amount numeric(10,2) NOT NULL);
CREATE TABLE shop.words (w text NOT NULL);
ALTER TABLE shop.customers ENABLE ROW LEVEL SECURITY;
CREATE POLICY ro_all ON shop.customers FOR SELECT TO app_ro USING (id % 2 = 0);
CREATE POLICY rw_all ON shop.customers TO app_rw USING (true);
GRANT USAGE ON SCHEMA shop TO app_rw, app_read;
GRANT SELECT (id, name) ON shop.customers TO app_ro;
GRANT SELECT ON shop.customers TO app_rw;
GRANT SELECT, INSERT ON shop.orders TO app_rw;
GRANT USAGE ON SEQUENCE shop.orders_id_seq TO app_rw;
CREATE FUNCTION shop.definer() RETURNS text LANGUAGE sql SECURITY DEFINER
  AS $$ SELECT current_user::text $$;
REVOKE EXECUTE ON FUNCTION shop.definer() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION shop.definer() TO app_rw;
CREATE FUNCTION shop.place_order(c int, a numeric) RETURNS int LANGUAGE sql SECURITY DEFINER
  SET search_path = shop AS $$ INSERT INTO shop.orders (customer_id, amount) VALUES (c, a) RETURNING id $$;
REVOKE EXECUTE ON FUNCTION shop.place_order(int, numeric) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION shop.place_order(int, numeric) TO app_rw;
INSERT INTO shop.customers SELECT g, 'name ' || g, 'c' || g || '@example.test', md5(g::text) FROM generate_series(1, 400) g;
INSERT INTO shop.orders (customer_id, amount) SELECT 1 + g % 400, g * 1.25 FROM generate_series(1, 3000) g;
INSERT INTO shop.words VALUES ('a'), ('B'), ('ä'), ('b'), ('Z'), ('z'), ('Ä'), ('ß'), ('ss'), ('Ö'), ('o');
CREATE MATERIALIZED VIEW shop.order_totals AS
  SELECT customer_id, sum(amount) AS total FROM shop.orders GROUP BY customer_id;
CREATE TABLE shop.later (x int);
CREATE TABLE shop."a\\" (x int);
CREATE TABLE shop.${quoteIdent(HOSTILE)} (x int);
INSERT INTO shop.${quoteIdent(HOSTILE)} VALUES (1), (2), (3);
GRANT SELECT ON shop.later TO ${quoteIdent(HOSTILE)};
INSERT INTO shop.later VALUES (1), (2);
SELECT lo_from_bytea(0, 'a large object, owned by app_owner');
CREATE PUBLICATION shop_pub FOR TABLE shop.orders;
RESET ROLE;
CREATE SUBSCRIPTION shop_sub CONNECTION 'host=127.0.0.1 port=1 dbname=upstream'
  PUBLICATION shop_pub WITH (connect = false);
`;

/** What each role can do, as `ok: <value>` or `denied: <SQLSTATE>`; the same on both servers. */
const PROBES: Record<string, string> = {
  'read customers (all columns)': 'SELECT count(*)::text FROM shop.customers',
  'read customers (id, name)':
    'SELECT count(id)::text FROM (SELECT id, name FROM shop.customers) c',
  'read orders': 'SELECT count(*)::text FROM shop.orders',
  'read later (default privileges)': 'SELECT count(*)::text FROM shop.later',
  'write orders': 'INSERT INTO shop.orders (customer_id, amount) VALUES (1, 1) RETURNING 1::text',
  'execute definer()': 'SELECT shop.definer()',
  'execute place_order()': 'SELECT shop.place_order(1, 2)::text',
  statement_timeout: 'SHOW statement_timeout',
  search_path: 'SHOW search_path',
  work_mem: 'SHOW work_mem',
};

async function probe(cluster: PgCluster, role: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const client = new pg.Client({
    host: cluster.host,
    port: cluster.port,
    user: role,
    password: PASSWORDS[role] ?? 'none',
    database: 'app',
  });
  try {
    await client.connect();
  } catch (e) {
    out.login = `denied: ${(e as { code?: string }).code ?? (e as Error).message}`;
    return out;
  }
  out.login = 'ok';
  try {
    for (const [name, sql] of Object.entries(PROBES)) {
      await client.query('BEGIN READ WRITE');
      try {
        const r = await client.query<Record<string, string>>(sql);
        out[name] = `ok: ${Object.values(r.rows[0] ?? {})[0]}`;
      } catch (e) {
        out[name] = `denied: ${(e as { code?: string }).code}`;
      } finally {
        await client.query('ROLLBACK');
      }
    }
  } finally {
    await client.end();
  }
  return out;
}

async function probeTable(cluster: PgCluster): Promise<Record<string, Record<string, string>>> {
  const t: Record<string, Record<string, string>> = {};
  for (const r of ROLES.filter((x) => x !== 'app_read' && x !== HOSTILE))
    t[r] = await probe(cluster, r);
  t[OUTSIDER] = await probe(cluster, OUTSIDER);
  return t;
}

/** `pg_dump --create --schema-only`: owners, privileges and the database's properties. */
function schemaDump(cluster: PgCluster): string {
  const out = execFileSync(
    join(cluster.binDir, 'pg_dump'),
    [
      '--create',
      '--schema-only',
      '-h',
      cluster.host,
      '-p',
      String(cluster.port),
      '-U',
      'postgres',
      'app',
    ],
    { env: { ...process.env, PGPASSWORD: cluster.password }, maxBuffer: 64e6 },
  ).toString();
  // pg_dump's \restrict key is random on every run.
  return out
    .split('\n')
    .filter((l) => !/^\\(un)?restrict /.test(l))
    .join('\n');
}

/** The roles of the cluster as pg_dumpall writes them (attributes, passwords, memberships, settings). */
function rolesDump(cluster: PgCluster): string {
  return (
    execFileSync(
      join(cluster.binDir, 'pg_dumpall'),
      ['--roles-only', '-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres'],
      { env: { ...process.env, PGPASSWORD: cluster.password } },
    )
      .toString()
      .split('\n')
      .filter((l) => !/^\\(un)?restrict /.test(l) && !l.startsWith('--'))
      // Each test cluster's own superuser has a random password of its own.
      .map((l) => (l.startsWith('ALTER ROLE postgres ') ? l.replace(/ PASSWORD '[^']*'/, '') : l))
      .join('\n')
  );
}

/** Row count and a hash of every row, per table. */
async function contents(cluster: PgCluster): Promise<Record<string, string>> {
  const tables = await cluster.query<{ s: string; t: string }>(
    'app',
    "SELECT schemaname AS s, tablename AS t FROM pg_tables WHERE schemaname IN ('public', 'shop') ORDER BY 1, 2",
  );
  const out: Record<string, string> = {};
  for (const { s, t } of tables) {
    const [r] = await cluster.query<{ n: string; h: string }>(
      'app',
      `SELECT count(*)::text AS n, md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text COLLATE "C"), '')) AS h FROM "${s}"."${t}" x`,
    );
    out[`${s}.${t}`] = `${r?.n} rows, ${r?.h}`;
  }
  const [lo] = await cluster.query<{ v: string }>(
    'app',
    "SELECT string_agg(pg_get_userbyid(lomowner) || ':' || convert_from(lo_get(oid), 'UTF8'), ',') AS v FROM pg_largeobject_metadata",
  );
  out['large objects'] = lo?.v ?? '';
  const [mv] = await cluster.query<{ n: string }>(
    'app',
    'SELECT count(*)::text AS n FROM shop.order_totals',
  );
  out['shop.order_totals (materialized view)'] = `${mv?.n} rows`;
  return out;
}

async function sortedWords(cluster: PgCluster): Promise<string> {
  const [r] = await cluster.query<{ v: string }>(
    'app',
    "SELECT string_agg(w, ',' ORDER BY w) AS v FROM shop.words",
  );
  return r?.v ?? '';
}

async function databases(cluster: PgCluster): Promise<string[]> {
  const rows = await cluster.query<{ d: string }>(
    'postgres',
    'SELECT datname AS d FROM pg_database ORDER BY 1',
  );
  return rows.map((r) => r.d);
}

const destinations = () => destinationInputs(s3.primary, s3.secondary);

beforeAll(async () => {
  [source, target, drills, managed, s3] = await Promise.all([
    startPostgres({ name: 'fidelity-source' }),
    startPostgres({ name: 'fidelity-target' }),
    startPostgres({ name: 'fidelity-drills' }),
    startPostgres({ name: 'fidelity-managed' }),
    startS3Pair(),
  ]);
  for (const statement of CLUSTER_SQL.split(/;\n/).filter((x) => x.trim()))
    await source.query('postgres', statement);
  await source.query('app', APP_SQL);
  // A setting that would break a restore that applied it first, and one that turns
  // backslashes in plain string literals into escapes (a database owner may set it).
  await source.query('postgres', 'ALTER DATABASE app SET default_transaction_read_only = on');
  await source.query('postgres', 'ALTER DATABASE app SET standard_conforming_strings = off');
  identity = await generateX25519Identity();
  const b = await runPgDr({
    command: 'backup',
    'database-url': source.url('app'),
    'age-recipients': await identityToRecipient(identity),
    ...destinations(),
  });
  expect(b.failed).toBeUndefined();
  backupId = b.outputs['backup-id'] as string;
}, 120_000);

afterAll(async () => {
  await Promise.all([source?.stop(), target?.stop(), drills?.stop(), managed?.stop(), s3?.stop()]);
  // Nothing read from the database ran as a shell command anywhere.
  expect(existsSync(MARKER)).toBe(false);
});

describe('the backup', () => {
  it('records encoding, locale and the roles (with password hashes) in an encrypted globals object', async () => {
    const m = JSON.parse(
      (
        await s3.primary.getObject('pgdr-primary', `disaster_recovery/${backupId}/manifest.json`)
      ).toString(),
    );
    expect(m.database.encoding).toBe('UTF8');
    expect(m.database.locale).toEqual({
      provider: 'icu',
      collate: 'C.UTF-8',
      ctype: 'C.UTF-8',
      locale: 'de-DE',
    });
    expect(m.database.systemIdentifier).toMatch(/^\d+$/);
    expect(m.globals).toEqual({ roles: ROLES.length + 1, passwords: 'included' });
    expect(m.database.rowCounts.tables).toContainEqual({ schema: 'shop', table: HOSTILE, rows: 3 });
    expect(m.objects.map((o: { kind: string; name: string }) => `${o.kind}:${o.name}`)).toEqual([
      'database:database.dump.zst.age',
      'config:config.tar.gz.age',
      'globals:globals.sql.age',
    ]);
    const stored = await s3.secondary.getObject(
      'pgdr-secondary',
      `disaster_recovery/${backupId}/globals.sql.age`,
    );
    // Encrypted: no role name, no hash in the stored bytes.
    expect(stored.toString('latin1')).not.toMatch(/app_owner|SCRAM-SHA-256/);
  });
});

describe('a drill', () => {
  it('runs twice in a row on the same drill server, each time in a database of its own, leaving nothing behind', async () => {
    const before = { dbs: await databases(drills), roles: rolesDump(drills) };
    for (const n of [1, 2]) {
      const r = await runPgDr({
        command: 'verify',
        'verify-level': 'restore',
        'age-identity': identity,
        'drill-database-url': drills.url('postgres'),
        ...destinations(),
      });
      expect(r.failed, `drill ${n}`).toBeUndefined();
      const report = JSON.parse(r.outputs.report as string);
      expect(report.verifications[0].drill).toMatchObject({ ok: true, mismatches: [] });
      expect(report.verifications[0].drill.tables).toBe(7);
      expect(await databases(drills)).toEqual(before.dbs);
      expect(rolesDump(drills)).toBe(before.roles);
    }
  });
});

describe('a restore onto a brand-new server', () => {
  it('that fails mid-stream leaves the server exactly as it was (no database, no role)', async () => {
    // A copy of the backup whose database object is damaged near its end, at both
    // destinations: pg_restore has written most of it when the damage is found.
    for (const [server, bucket] of [
      [s3.primary, 'pgdr-primary'],
      [s3.secondary, 'pgdr-secondary'],
    ] as const) {
      for (const key of await server.listKeys(bucket, `disaster_recovery/${backupId}/`)) {
        let body = await server.getObject(bucket, key);
        if (key.endsWith('database.dump.zst.age')) {
          body = Buffer.from(body);
          const at = body.length - 100;
          body[at] = (body[at] as number) ^ 0xff;
        }
        await server.putObject(bucket, key.replace('disaster_recovery/', 'cut/'), body);
      }
    }
    const before = { dbs: await databases(target), roles: rolesDump(target) };
    const r = await runPgDr({
      command: 'restore',
      prefix: 'cut/',
      'database-url': target.url('app'),
      'age-identity': identity,
      ...destinations(),
    });
    expect(r.outputs.status).toBe('failed');
    expect(r.failed).toMatch(/failed everywhere: b2: .*; r2: /);
    expect(r.log).toMatch(/Created role "app_owner"/);
    expect(await databases(target)).toEqual(before.dbs);
    expect(rolesDump(target)).toBe(before.roles);
  });

  it('gives back the same roles, owners, privileges, properties and rows', async () => {
    const r = await runPgDr({
      command: 'restore',
      'database-url': target.url('app'),
      'age-identity': identity,
      ...destinations(),
    });
    expect(r.failed).toBeUndefined();
    const report = JSON.parse(r.outputs.report as string);
    expect(report).toMatchObject({
      ok: true,
      database: 'app',
      previous: null,
      rowCounts: 'compared',
      mismatches: [],
      // The one true difference: the new server's own superuser, never altered.
      differences: [
        'Role "postgres" already existed and was left as it is; it differs from the source: another password.',
      ],
    });
    expect(report.rolesCreated.sort()).toEqual([...ROLES].sort());

    expect(schemaDump(target)).toBe(schemaDump(source));
    const notOutsider = (dump: string) =>
      dump
        .split('\n')
        .filter((l) => !new RegExp(`\\b${OUTSIDER}\\b`).test(l))
        .join('\n');
    expect(rolesDump(target)).toBe(notOutsider(rolesDump(source)));
    expect(rolesDump(target)).not.toContain(OUTSIDER);
    expect(await contents(target)).toEqual(await contents(source));
    const words = await sortedWords(source);
    expect(words).toBe('a,ä,Ä,b,B,o,Ö,ss,ß,z,Z');
    expect(await sortedWords(target)).toBe(words);
    // The subscription comes back, and stays disabled.
    expect(await target.query('app', 'SELECT subname, subenabled FROM pg_subscription')).toEqual([
      { subname: 'shop_sub', subenabled: false },
    ]);
    const probes = { source: await probeTable(source), restored: await probeTable(target) };
    // The escalation the old route opened stays closed: the read-only role cannot run the
    // SECURITY DEFINER functions, and definer() runs as its owner, not as a superuser.
    expect(probes.restored.app_ro?.['execute definer()']).toBe('denied: 42501');
    expect(probes.restored.app_ro?.['execute place_order()']).toBe('denied: 42501');
    expect(probes.restored.app_rw?.['execute definer()']).toBe('ok: app_owner');
    // The outsider could not connect in the source (CONNECT revoked from PUBLIC) and does
    // not exist on the new server: the only row of the probe table that differs.
    expect(probes.source[OUTSIDER]).toEqual({ login: 'denied: 42501' });
    expect(probes.restored[OUTSIDER]).toEqual({ login: 'denied: 28P01' });
    delete probes.source[OUTSIDER];
    delete probes.restored[OUTSIDER];
    expect(probes.restored).toEqual(probes.source);
    if (process.env.PG_DR_PROBE_TABLE)
      await writeFile(
        `${process.env.PG_DR_PROBE_TABLE}.source.json`,
        JSON.stringify(probes, null, 2),
      );
  });
});

describe('a restore as a non-superuser (ownership: restorer), as on a managed service', () => {
  /** The service's admin: CREATEDB and CREATEROLE, not a superuser. */
  const ADMIN = 'svc_admin';
  const adminUrl = (database: string) =>
    `postgresql://${ADMIN}:admin-pw-5@${managed.host}:${managed.port}/${database}`;
  const restoreAsAdmin = () =>
    runPgDr({
      command: 'restore',
      'database-url': adminUrl('app'),
      ownership: 'restorer',
      'age-identity': identity,
      ...destinations(),
    });

  it('is refused, before anything is written, without CREATEROLE when roles are missing', async () => {
    await managed.query('postgres', `CREATE ROLE ${ADMIN} LOGIN CREATEDB PASSWORD 'admin-pw-5'`);
    const before = { dbs: await databases(managed), roles: rolesDump(managed) };
    const r = await restoreAsAdmin();
    expect(r.failed).toMatch(
      /5 role\(s\) the backup needs do not exist on the target \("app_owner", .*svc_admin.* has no CREATEROLE/,
    );
    expect(await databases(managed)).toEqual(before.dbs);
    expect(rolesDump(managed)).toBe(before.roles);
  });

  it('keeps privileges, lists every difference, and lets nobody new run a SECURITY DEFINER function', async () => {
    await managed.query('postgres', `ALTER ROLE ${ADMIN} CREATEROLE`);
    const source_ = await probeTable(source);
    const r = await restoreAsAdmin();
    expect(r.failed).toBeUndefined();
    const report = JSON.parse(r.outputs.report as string);
    expect(report).toMatchObject({ ok: true, rowCounts: 'compared', mismatches: [] });
    expect(report.rolesCreated.sort()).toEqual([...ROLES].sort());
    const differences = (report.differences as string[]).join('\n');
    const notRestored = /Not restored \(a non-superuser cannot restore them\): ([^\n]*)\./.exec(
      differences,
    )?.[1];
    expect(notRestored?.split(', ').sort()).toEqual([
      'default acl shop DEFAULT PRIVILEGES FOR TABLES',
      'event trigger log_ddl',
      'subscription shop_sub',
    ]);
    expect(differences).toMatch(
      /Every object belongs to "svc_admin" instead of its source owner \(("app_owner", "postgres"|"postgres", "app_owner")\)/,
    );
    expect(differences).toMatch(
      /SECURITY DEFINER functions public\.log_ddl\(\), shop\.definer\(\), shop\.place_order\(c integer, a numeric\) now belong to "svc_admin"/,
    );
    // Every object of the schema belongs to the restoring user.
    const owners = await managed.query<{ o: string }>(
      'app',
      "SELECT DISTINCT pg_get_userbyid(relowner) AS o FROM pg_class WHERE relnamespace = 'shop'::regnamespace",
    );
    expect(owners.map((o) => o.o)).toEqual([ADMIN]);
    const expected = await contents(source);
    expected['large objects'] = (expected['large objects'] ?? '').replace(
      /^app_owner:/,
      `${ADMIN}:`,
    );
    expect(await contents(managed)).toEqual(expected);
    // What each role can do is the source's, but for what came from owning the objects:
    // SECURITY DEFINER functions now run as the restoring user, and app_owner holds only
    // what was granted to it.
    const restored = await probeTable(managed);
    // Sequences have moved on in the source since the backup: ids returned are not compared.
    const norm = (p: Record<string, string> | undefined) =>
      Object.fromEntries(
        Object.entries(p ?? {}).map(([k, v]) => [k, v.replace(/^ok: \d+$/, 'ok: <id>')]),
      );
    for (const role of ['app_rw', 'app_ro']) {
      const expected = norm(source_[role]);
      if (expected['execute definer()'] === 'ok: app_owner')
        expected['execute definer()'] = `ok: ${ADMIN}`;
      expect(norm(restored[role]), role).toEqual(expected);
    }
    if (process.env.PG_DR_PROBE_TABLE)
      await writeFile(
        `${process.env.PG_DR_PROBE_TABLE}.restorer.json`,
        JSON.stringify({ source: source_, restored }, null, 2),
      );
    expect(restored.app_ro?.['execute definer()']).toBe('denied: 42501');
    expect(restored.app_ro?.['execute place_order()']).toBe('denied: 42501');
    expect(restored.app_owner?.login).toBe('ok');
    expect(restored.app_owner?.['read orders']).toBe('denied: 42501');
  });

  it('revokes EXECUTE on a SECURITY DEFINER function from whoever could not run it in the source', async () => {
    const server = serverAccess(parseDatabaseUrl('database-url', adminUrl('app')), 'database-url', [
      'postgres',
    ]);
    const before = await probe(managed, 'app_rw');
    expect(before['execute definer()']).toBe(`ok: ${ADMIN}`);
    // As if the source had let only its owner run shop.definer().
    const globals = {
      securityDefiner: [
        { function: 'shop.definer()', owner: 'app_owner', executors: ['app_owner'] },
      ],
    } as unknown as Globals;
    const differences = await checkSecurityDefiners(server, 'app', globals, ADMIN);
    expect(differences).toContain(
      'EXECUTE on SECURITY DEFINER function shop.definer() revoked from "app_rw": it could not run it in the source.',
    );
    expect((await probe(managed, 'app_rw'))['execute definer()']).toBe('denied: 42501');
    expect(await checkSecurityDefiners(server, 'app', globals, ADMIN)).toEqual([
      expect.stringMatching(/now belong to "svc_admin"/),
    ]);
  });
});
