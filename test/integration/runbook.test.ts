import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { execa } from 'execa';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDatabase, tableRowCounts, tempDir } from '../harness/fixtures.js';
import { leasePostgres } from '../harness/lease.js';
import { type PgCluster, startPostgres } from '../harness/postgres.js';
import { destinationInputs, runPgDr } from '../harness/run.js';
import { PRIMARY_BUCKET, type S3Pair, startS3Pair } from '../harness/s3.js';
import { ed25519KeyPair } from '../harness/ssh-keys.js';
import { requireBinary } from '../harness/tools.js';

/**
 * The restore runbook's manual path (docs/runbook.md, Path B), run exactly as written: every
 * `sh` block between the runbook-test markers, in order, in one bash, against a real backup
 * made by pg-dr — with the AWS CLI, jq, sha256sum, age, zstd, pg_restore and psql, and no
 * pg-dr code at all — onto a brand-new PostgreSQL cluster, as on the worst day. If the page and
 * the backups drift apart, or the page gives back a database that is not the source's (other
 * owners, lost REVOKEs, missing roles), this fails.
 */
const RUNBOOK = 'docs/runbook.md';

/** The shell blocks between `<!-- runbook-test:begin … -->` and `<!-- runbook-test:end -->`. */
function runbookScript(markdown: string): string {
  const begin = markdown.indexOf('<!-- runbook-test:begin');
  const end = markdown.indexOf('<!-- runbook-test:end -->');
  if (begin < 0 || end < begin) throw new Error(`${RUNBOOK}: runbook-test markers not found`);
  const section = markdown.slice(begin, end);
  const blocks = [...section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1] ?? '');
  if (blocks.length === 0) throw new Error(`${RUNBOOK}: no sh block between the markers`);
  return blocks.join('\n');
}

const WORKSPACE_FILES: Record<string, string> = {
  'docker-compose.yml': 'services:\n  app:\n    image: app:1\n',
  'deploy/release.sh': '#!/bin/sh\necho deploy\n',
};

/** The roles the source database needs besides the superuser. */
const ROLES = ['app_owner', 'app_reader', 'readonly'] as const;
const READER_PASSWORD = 'reader: p@ss/word';

/**
 * The source's roles and database: `app_owner` owns the database, a schema, its tables, a
 * materialized view and a SECURITY DEFINER function whose EXECUTE is revoked from PUBLIC;
 * `readonly` (a group) may SELECT them; `app_reader` logs in and is a member of `readonly`.
 * The database has an ICU collation, a comment, settings, a per-role setting, a connection
 * limit and CONNECT revoked from PUBLIC.
 */
const ROLES_SQL = `
CREATE ROLE app_owner LOGIN CREATEDB PASSWORD 'owner secret' CONNECTION LIMIT 20
  VALID UNTIL '2031-01-01 00:00:00+00';
COMMENT ON ROLE app_owner IS 'owns the application''s objects';
CREATE ROLE readonly NOLOGIN NOINHERIT;
CREATE ROLE app_reader LOGIN PASSWORD '${READER_PASSWORD}';
ALTER ROLE app_reader SET statement_timeout = '5s';
GRANT readonly TO app_reader;
`;
const CREATE_DATABASE_SQL = `CREATE DATABASE app OWNER app_owner TEMPLATE template0
  ENCODING 'UTF8' LOCALE 'C' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'`;
const DATABASE_PROPERTIES_SQL = `
COMMENT ON DATABASE app IS 'the platform''s database';
ALTER DATABASE app SET work_mem = '8MB';
ALTER ROLE app_reader IN DATABASE app SET default_transaction_read_only = on;
ALTER DATABASE app CONNECTION LIMIT 40;
REVOKE CONNECT, TEMPORARY ON DATABASE app FROM PUBLIC;
GRANT CONNECT ON DATABASE app TO readonly;
`;
/** In `app`, as the superuser; the event trigger logs every DDL command, a restore's too. */
const LEDGER_SQL = `
CREATE SCHEMA ledger AUTHORIZATION app_owner;
SET ROLE app_owner;
CREATE TABLE ledger.accounts (id integer PRIMARY KEY, name text NOT NULL);
INSERT INTO ledger.accounts SELECT i, 'account ' || i FROM generate_series(1, 25) AS i;
CREATE TABLE ledger.entries (
  id          bigserial PRIMARY KEY,
  account_id  integer NOT NULL REFERENCES ledger.accounts (id),
  amount      numeric(12, 2) NOT NULL
);
INSERT INTO ledger.entries (account_id, amount)
SELECT 1 + i % 25, i / 4.0 FROM generate_series(1, 300) AS i;
CREATE MATERIALIZED VIEW ledger.balances AS
  SELECT account_id, sum(amount) AS balance FROM ledger.entries GROUP BY account_id;
CREATE FUNCTION ledger.post(account integer, amount numeric) RETURNS bigint
  LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
  AS $$ INSERT INTO ledger.entries (account_id, amount) VALUES (account, amount) RETURNING id $$;
REVOKE EXECUTE ON FUNCTION ledger.post(integer, numeric) FROM PUBLIC;
GRANT USAGE ON SCHEMA ledger TO readonly;
GRANT SELECT ON ALL TABLES IN SCHEMA ledger TO readonly;
RESET ROLE;
CREATE TABLE public.ddl_log (id bigserial PRIMARY KEY, tag text NOT NULL, at timestamptz DEFAULT now());
CREATE FUNCTION public.log_ddl() RETURNS event_trigger LANGUAGE plpgsql
  AS $$ BEGIN INSERT INTO public.ddl_log (tag) VALUES (tg_tag); END $$;
CREATE EVENT TRIGGER log_ddl ON ddl_command_end EXECUTE FUNCTION public.log_ddl();
`;

/**
 * What must come back equal, as text rows that do not depend on the cluster (no oids):
 * the roles (pg_roles and their password hashes), the database's properties and settings,
 * and the owner and ACL of every schema, relation and function.
 */
const FIDELITY_QUERIES: Record<string, { db: 'postgres' | 'app'; sql: string }> = {
  roles: {
    db: 'postgres',
    sql: `SELECT (to_jsonb(r) - 'oid')::text AS row, a.rolpassword AS password
          FROM pg_roles r JOIN pg_authid a ON a.rolname = r.rolname
          WHERE r.rolname IN (${ROLES.map((r) => `'${r}'`).join(', ')}) ORDER BY r.rolname`,
  },
  memberships: {
    db: 'postgres',
    sql: `SELECT r.rolname AS role, u.rolname AS member, m.admin_option
          FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
          WHERE u.rolname !~ '^pg_' ORDER BY 1, 2`,
  },
  database: {
    db: 'postgres',
    // Every column (encoding, locale provider, collation, ICU locale under this major's name,
    // connection limit, ACL) except those that differ between clusters: oids and xid horizons.
    sql: `SELECT (to_jsonb(d) - 'oid' - 'datdba' - 'datfrozenxid' - 'datminmxid')::text AS row,
                 pg_get_userbyid(datdba) AS owner, shobj_description(oid, 'pg_database') AS comment
          FROM pg_database d WHERE datname = 'app'`,
  },
  settings: {
    db: 'postgres',
    sql: `SELECT coalesce(pg_get_userbyid(s.setrole), '') AS role, s.setconfig::text AS config
          FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase
          WHERE coalesce(d.datname, '') IN ('', 'app') AND s.setrole IN
            (0, ${ROLES.map((r) => `'${r}'::regrole`).join(', ')}) ORDER BY 1, 2`,
  },
  schemas: {
    db: 'app',
    sql: `SELECT nspname AS name, pg_get_userbyid(nspowner) AS owner, nspacl::text AS acl
          FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' ORDER BY 1`,
  },
  relations: {
    db: 'app',
    sql: `SELECT c.oid::regclass::text AS name, c.relkind, pg_get_userbyid(c.relowner) AS owner,
                 c.relacl::text AS acl
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' ORDER BY 1`,
  },
  functions: {
    db: 'app',
    sql: `SELECT p.oid::regprocedure::text AS name, pg_get_userbyid(p.proowner) AS owner,
                 p.prosecdef, p.proacl::text AS acl
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' ORDER BY 1`,
  },
  eventTriggers: {
    db: 'app',
    sql: `SELECT evtname, evtevent, evtenabled, pg_get_userbyid(evtowner) AS owner
          FROM pg_event_trigger ORDER BY 1`,
  },
};

async function fidelity(cluster: PgCluster): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const [name, q] of Object.entries(FIDELITY_QUERIES))
    out[name] = await cluster.query(q.db, q.sql);
  return out;
}

let source: PgCluster;
let s3: S3Pair;
let work: string;
let identity: string;
let keyFile: string;
/** The backup job's signing key, and the operator's allowed_signers file for it. */
let signingKey: string;
let allowedSigners: string;
let script: string;
let olderId: string;
let newestId: string;
/** The source's row counts when each backup was taken. */
let olderCounts: Record<string, number>;
let newestCounts: Record<string, number>;
/** Clusters started for the restores, stopped at the end. */
const servers: PgCluster[] = [];

/** A brand-new PostgreSQL cluster: only the `postgres` superuser and the default databases. */
async function newServer(name: string): Promise<PgCluster> {
  const server = await startPostgres({ name });
  servers.push(server);
  return server;
}

async function backup(ws: string): Promise<string> {
  const r = await runPgDr(
    {
      command: 'backup',
      'database-url': source.url('app'),
      'age-recipients': await identityToRecipient(identity),
      'signing-key': signingKey,
      ...destinationInputs(s3.primary, s3.secondary),
    },
    { GITHUB_WORKSPACE: ws },
  );
  expect(r.failed).toBeUndefined();
  return r.outputs['backup-id'] as string;
}

/** Runs the runbook's blocks with the operator's variables set, in a fresh folder. */
async function followRunbook(vars: Record<string, string>) {
  const cwd = await mkdtemp(join(work, 'operator-'));
  // Asynchronous: the S3 servers run in this process and must keep answering meanwhile.
  const result = await execa('bash', ['-c', `set -euo pipefail\n${script}`], {
    cwd,
    reject: false,
    stdin: 'ignore',
    timeout: 120_000,
    extendEnv: false,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      LANG: 'C.UTF-8',
      // What the operator sets before the tested blocks (docs/runbook.md, "Set the variables").
      AWS_ACCESS_KEY_ID: s3.primary.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.primary.secretAccessKey,
      ENDPOINT: s3.primary.endpoint,
      REGION: s3.primary.region,
      BUCKET: PRIMARY_BUCKET,
      PREFIX: 'disaster_recovery/',
      AGE_KEY_FILE: keyFile,
      ALLOWED_SIGNERS: allowedSigners,
      ...vars,
    },
  });
  const status = result.exitCode ?? null;
  const { stdout, stderr } = result;
  return { status, stdout, stderr, cwd, output: `${stdout}\n${stderr}` };
}

/** The server's databases and non-system roles: what "nothing was written" compares. */
async function serverState(cluster: PgCluster) {
  const [databases, roles] = await Promise.all([
    cluster.query<{ datname: string }>('postgres', 'SELECT datname FROM pg_database ORDER BY 1'),
    cluster.query<{ rolname: string }>(
      'postgres',
      "SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY 1",
    ),
  ]);
  return { databases: databases.map((d) => d.datname), roles: roles.map((r) => r.rolname) };
}

/** Runs `sql` on `cluster`'s `app` as `app_reader`, logging in with its source password. */
async function asReader(cluster: PgCluster, sql: string): Promise<unknown[]> {
  const client = new pg.Client({
    host: cluster.host,
    port: cluster.port,
    user: 'app_reader',
    password: READER_PASSWORD,
    database: 'app',
  });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  for (const tool of ['aws', 'jq', 'sha256sum', 'age', 'zstd', 'pg_restore', 'psql'])
    requireBinary(tool);
  script = runbookScript(await readFile(RUNBOOK, 'utf8'));
  [source, s3] = await Promise.all([leasePostgres({ name: 'runbook' }), startS3Pair()]);
  await source.query('postgres', ROLES_SQL);
  await source.query('postgres', CREATE_DATABASE_SQL);
  await seedDatabase(source, 'app');
  await source.query('app', LEDGER_SQL);
  await source.query('postgres', DATABASE_PROPERTIES_SQL);
  work = await tempDir('runbook');
  const ws = join(work, 'workspace');
  for (const [f, body] of Object.entries(WORKSPACE_FILES)) {
    await mkdir(join(ws, f, '..'), { recursive: true });
    await writeFile(join(ws, f), body);
  }
  identity = await generateX25519Identity();
  keyFile = join(work, 'key.txt');
  // As age-keygen writes it: comment lines, then the secret key.
  await writeFile(
    keyFile,
    `# created: 2026-11-26T00:00:00Z\n# public key: ${await identityToRecipient(identity)}\n${identity}\n`,
    { mode: 0o600 },
  );

  const signing = ed25519KeyPair(work, 'signing');
  signingKey = signing.privateKey;
  allowedSigners = join(work, 'allowed_signers');
  await writeFile(allowedSigners, `pg-dr ${signing.publicKey}\n`);

  olderCounts = await tableRowCounts(source, 'app');
  olderId = await backup(ws);
  // One more row after the first backup: restoring that one (ID=…) must not have it.
  await source.query(
    'app',
    "INSERT INTO public.audit_log (message) VALUES ('after the first backup')",
  );
  newestCounts = await tableRowCounts(source, 'app');
  // Ids order by their second; two backups within one second order by their random tail.
  await new Promise((r) => setTimeout(r, 1010 - (Date.now() % 1000)));
  newestId = await backup(ws);
  expect(newestCounts['public.audit_log']).toBe((olderCounts['public.audit_log'] as number) + 1);
  // Nothing wrote to the source during the backups (no DDL was logged, for one).
  expect(await tableRowCounts(source, 'app')).toEqual(newestCounts);

  // Decoys the "newest complete backup" pattern must skip: a newer backup still in flight (no
  // manifest), and a newer complete-looking backup of another database under a deeper prefix.
  const inFlight = 'disaster_recovery/29991231T235959Z-ffffff/database.dump.zst.age';
  await s3.primary.putObject(PRIMARY_BUCKET, inFlight, Buffer.from('partial upload'));
  const manifest = await s3.primary.getObject(
    PRIMARY_BUCKET,
    `disaster_recovery/${newestId}/manifest.json`,
  );
  await s3.primary.putObject(
    PRIMARY_BUCKET,
    'disaster_recovery/billing/29991231T235959Z-eeeeee/manifest.json',
    manifest,
  );
});

afterAll(async () => {
  await Promise.all([source?.stop(), s3?.stop(), ...servers.map((s) => s.stop())]);
  if (work) await rm(work, { recursive: true, force: true });
});

describe('docs/runbook.md, Path B (no pg-dr)', () => {
  it('has the manual commands between its markers', () => {
    for (const command of [
      'aws s3',
      'sha256sum -c',
      'age -d',
      'zstd -d',
      '-f globals.sql',
      'pg_restore --create',
      'session_replication_role=replica',
      'psql',
    ])
      expect(script).toContain(command);
    expect(script).not.toContain('--no-owner');
    expect(script).not.toContain('--no-privileges');
  });

  it('restores the newest backup onto a brand-new server: roles, owners, privileges, database properties and rows as in the source', async () => {
    const server = await newServer('runbook-new');
    const run = await followRunbook({ SERVER_URL: server.url('postgres') });
    expect(run.status, run.output).toBe(0);
    expect(run.stdout).toContain(`Restoring backup ${newestId}`);
    expect(run.stdout).toContain('globals.sql: OK');
    expect(run.stdout).toContain(
      'Roles in the backup: app_owner, app_reader, postgres, readonly; passwords included',
    );
    expect(run.stdout).toContain('Tablespaces: none');
    expect(run.stdout).toContain('Already on the server, left as they are: postgres\n');
    expect(run.stdout).not.toContain('MISMATCH');

    // Rows: equal to the source's, and no event trigger fired during the restore.
    expect(await tableRowCounts(server, 'app')).toEqual(newestCounts);
    expect(await tableRowCounts(server, 'app')).toEqual(await tableRowCounts(source, 'app'));

    // Roles, memberships, database properties, owners and ACLs: equal to the source's.
    const restored = await fidelity(server);
    expect(restored).toEqual(await fidelity(source));
    // …and, spelled out, the ones that matter most.
    expect(restored.roles).toHaveLength(ROLES.length);
    const [owner] = await server.query<{ table: string; fn: string; db: string }>(
      'app',
      `SELECT (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'ledger.entries'::regclass) AS table,
              (SELECT pg_get_userbyid(proowner) FROM pg_proc
                WHERE oid = 'ledger.post(integer, numeric)'::regprocedure) AS fn,
              (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app') AS db`,
    );
    expect(owner).toEqual({ table: 'app_owner', fn: 'app_owner', db: 'app_owner' });
    const [access] = await server.query<Record<string, boolean>>(
      'app',
      `CREATE ROLE nobody_granted NOLOGIN;
       SELECT has_function_privilege('nobody_granted', 'ledger.post(integer, numeric)', 'EXECUTE') AS nobody_executes,
              has_function_privilege('app_reader', 'ledger.post(integer, numeric)', 'EXECUTE') AS reader_executes,
              has_function_privilege('app_owner', 'ledger.post(integer, numeric)', 'EXECUTE') AS owner_executes,
              EXISTS (SELECT FROM pg_proc p, aclexplode(p.proacl) a
                      WHERE p.oid = 'ledger.post(integer, numeric)'::regprocedure AND a.grantee = 0) AS public_in_acl,
              has_table_privilege('readonly', 'ledger.entries', 'SELECT') AS readonly_selects,
              has_table_privilege('readonly', 'ledger.entries', 'INSERT') AS readonly_inserts,
              has_database_privilege('nobody_granted', 'app', 'CONNECT') AS nobody_connects`,
    );
    expect(access).toEqual({
      nobody_executes: false,
      reader_executes: false,
      owner_executes: true,
      public_in_acl: false,
      readonly_selects: true,
      readonly_inserts: false,
      nobody_connects: false,
    });
    await server.query('postgres', 'DROP ROLE nobody_granted');

    // The reader logs in with its old password, reads through its group, and can do no more.
    expect(await asReader(server, 'SELECT count(*)::int AS n FROM ledger.entries')).toEqual([
      { n: newestCounts['ledger.entries'] },
    ]);
    await expect(asReader(server, 'SELECT ledger.post(1, 1)')).rejects.toThrow(
      /permission denied for function post/,
    );

    // The platform's files came back byte for byte.
    for (const [f, body] of Object.entries(WORKSPACE_FILES))
      expect(await readFile(join(run.cwd, `pg-dr-restore-${newestId}`, 'config', f), 'utf8')).toBe(
        body,
      );
  });

  it('restores an older backup when ID is set, leaving a role that already exists as it is', async () => {
    const server = await newServer('runbook-older');
    // The new server already has one of the roles, with other attributes and password.
    await server.query('postgres', "CREATE ROLE app_reader LOGIN CREATEDB PASSWORD 'other'");
    const before = await server.query(
      'postgres',
      "SELECT (to_jsonb(r) - 'oid')::text AS row, rolpassword FROM pg_authid r WHERE rolname = 'app_reader'",
    );
    const run = await followRunbook({ SERVER_URL: server.url('postgres'), ID: olderId });
    expect(run.status, run.output).toBe(0);
    expect(run.stdout).toContain(`Restoring backup ${olderId}`);
    expect(run.stdout).toContain('Already on the server, left as they are: app_reader, postgres\n');
    expect(await tableRowCounts(server, 'app')).toEqual(olderCounts);
    expect(
      await server.query(
        'postgres',
        "SELECT (to_jsonb(r) - 'oid')::text AS row, rolpassword FROM pg_authid r WHERE rolname = 'app_reader'",
      ),
    ).toEqual(before);
    // The roles that were missing were created; the membership was granted to the existing one.
    expect((await serverState(server)).roles).toEqual([
      'app_owner',
      'app_reader',
      'postgres',
      'readonly',
    ]);
    expect(
      await server.query(
        'postgres',
        "SELECT pg_has_role('app_reader', 'readonly', 'MEMBER') AS member",
      ),
    ).toEqual([{ member: true }]);
  });

  it('stops at the checksum step when a stored byte changed, before touching the server', async () => {
    const server = await newServer('runbook-tampered');
    const untouched = await serverState(server);
    const key = `disaster_recovery/${newestId}/database.dump.zst.age`;
    const original = await s3.primary.getObject(PRIMARY_BUCKET, key);
    const altered = Buffer.from(original);
    const at = Math.floor(altered.length / 2);
    altered[at] = (altered[at] ?? 0) ^ 0x01;
    await s3.primary.putObject(PRIMARY_BUCKET, key, altered);
    try {
      const run = await followRunbook({ SERVER_URL: server.url('postgres') });
      expect(run.status).not.toBe(0);
      expect(run.stdout).toMatch(/database\.dump\.zst\.age: FAILED/);
      expect(run.stdout).not.toContain('Superuser on the target server');
      expect(await serverState(server)).toEqual(untouched);
    } finally {
      await s3.primary.putObject(PRIMARY_BUCKET, key, original);
    }
  });

  it('stops at the signature step when the manifest was changed, before touching the server', async () => {
    const server = await newServer('runbook-forged');
    const untouched = await serverState(server);
    const key = `disaster_recovery/${newestId}/manifest.json`;
    const original = await s3.primary.getObject(PRIMARY_BUCKET, key);
    // A forger with the bucket key rewrites the manifest (its own hashes would follow).
    const forged = Buffer.from(
      original.toString().replace('"compression": "zstd"', '"compression":  "zstd"'),
    );
    expect(forged.equals(original)).toBe(false);
    await s3.primary.putObject(PRIMARY_BUCKET, key, forged);
    try {
      const run = await followRunbook({ SERVER_URL: server.url('postgres') });
      expect(run.status).not.toBe(0);
      expect(run.output).toMatch(
        /Could not verify signature|Signature verification failed|verify failed/i,
      );
      expect(run.stdout).not.toMatch(/: OK$/m);
      expect(await serverState(server)).toEqual(untouched);
    } finally {
      await s3.primary.putObject(PRIMARY_BUCKET, key, original);
    }
  });

  it('refuses a server that already has a database of that name, before writing anything', async () => {
    const untouched = await serverState(source);
    const run = await followRunbook({ SERVER_URL: source.url('postgres') });
    expect(run.status).not.toBe(0);
    expect(run.stdout).toContain('Databases named app on the target server: 1 (must be 0)');
    expect(run.stdout).not.toContain('Roles in the backup');
    expect(run.stderr).not.toContain('pg_restore:');
    expect(await serverState(source)).toEqual(untouched);
    expect(await tableRowCounts(source, 'app')).toEqual(newestCounts);
  });

  it('refuses a connection that is not a superuser, before writing anything', async () => {
    const server = await newServer('runbook-nosuper');
    await server.query('postgres', "CREATE ROLE ops LOGIN CREATEDB CREATEROLE PASSWORD 'ops'");
    const untouched = await serverState(server);
    const run = await followRunbook({
      SERVER_URL: `postgresql://ops:ops@${server.host}:${server.port}/postgres`,
    });
    expect(run.status).not.toBe(0);
    expect(run.stdout).toContain('Superuser on the target server: f (must be t)');
    expect(run.stdout).not.toContain('Roles in the backup');
    expect(await serverState(server)).toEqual(untouched);
  });
});
