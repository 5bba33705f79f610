/**
 * `check` with `mode: physical` against a real cluster: one set up as initdb leaves it (wal_level
 * replica, max_wal_senders 10, a pg_hba `replication` line for 127.0.0.1) passes every physical
 * row, directly and through the SSH tunnel; a role without REPLICATION, a pg_hba.conf without a
 * replication line and a tablespace of its own each fail with the fix — and the pg_hba fix,
 * applied as written, turns the row ✓. A dedicated cluster: the tests edit its pg_hba.conf and
 * create a tablespace in it.
 */
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import pgDriver from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckRow } from '../../src/check/row.js';
import { createSeededDatabase, tempDir } from '../harness/fixtures.js';
import { serverBinDir } from '../harness/majors.js';
import { type PgCluster, startPostgres } from '../harness/postgres.js';
import { destinationInputs, type RunOutcome, runPgDr } from '../harness/run.js';
import { type S3Pair, startS3Pair } from '../harness/s3.js';
import { type SshdServer, startSshd } from '../harness/sshd.js';

let pg: PgCluster;
let s3: S3Pair;
let bastion: SshdServer;
let work: string;
const ROLE_PASSWORD = 'plain-backup-pw-4f1c';

beforeAll(async () => {
  [pg, s3, bastion] = await Promise.all([
    startPostgres({ name: 'check-physical' }),
    startS3Pair(),
    startSshd(),
  ]);
  await createSeededDatabase(pg, 'app');
  work = await tempDir('check-physical');
  // The postgres OS user reaches the tablespace's directory under it.
  await chmod(work, 0o711);
}, 120_000);

afterAll(async () => {
  await Promise.all([pg?.stop(), s3?.stop(), bastion?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

const env = () => ({ GITHUB_WORKSPACE: work });

function inputs(extra: Record<string, string> = {}): Record<string, string> {
  return {
    command: 'check',
    mode: 'physical',
    ...destinationInputs(s3.primary, s3.secondary),
    'database-url': pg.url('app'),
    'github-token': '',
    ...extra,
  };
}

const rowsOf = (r: RunOutcome): CheckRow[] =>
  (JSON.parse(r.outputs.report as string) as { rows: CheckRow[] }).rows;

function row(r: RunOutcome, name: RegExp): CheckRow {
  const found = rowsOf(r).filter((x) => name.test(x.check));
  expect(found.map((x) => x.check)).toHaveLength(1);
  return found[0] as CheckRow;
}

/** Every ✗ is one of `names`, each of them is ✗ with a fix, and the step failed. */
function failsOnly(r: RunOutcome, ...names: RegExp[]): CheckRow[] {
  const failed = rowsOf(r).filter((x) => x.state === 'fail');
  expect(failed.map((f) => f.check).sort()).toEqual(
    names.map((n) => rowsOf(r).find((x) => n.test(x.check))?.check).sort(),
  );
  expect(r.outputs.status).toBe('failed');
  for (const f of failed) expect(f.fix, f.check).toBeTruthy();
  return names.map((n) => failed.find((f) => n.test(f.check)) as CheckRow);
}

/** Sets server parameters that take a restart (ALTER SYSTEM, one at a time) and restarts. */
async function restartWith(...statements: string[]): Promise<void> {
  for (const sql of statements) await pg.query('postgres', sql);
  const args = ['-D', pg.dataDir, '-l', pg.logFile, '-m', 'fast', '-w', 'restart'];
  const ctl = join(pg.binDir, 'pg_ctl');
  if (process.getuid?.() === 0) await execa('runuser', ['-u', 'postgres', '--', ctl, ...args]);
  else await execa(ctl, args);
}

const PHYSICAL = [
  'physical: PostgreSQL 13 or newer',
  'physical: the role has REPLICATION',
  'physical: a replication connection is accepted',
  'physical: wal_level and a free WAL sender',
  'physical: no tablespace of its own',
  'physical: pg_basebackup and pg_verifybackup',
];

describe('check mode physical, a server set up for replication', () => {
  it('every physical row ✓: the replication connection identifies the cluster; the rows pg_dump alone needs ⚪', async () => {
    const [control] = await pg.query<{ id: string }>(
      'postgres',
      'SELECT system_identifier::text AS id FROM pg_control_system()',
    );
    const r = await runPgDr(inputs(), env());
    expect(r.failed, r.log).toBeUndefined();
    expect(r.outputs.status).toBe('ok');
    const rows = rowsOf(r);
    expect(rows.filter((x) => x.check.startsWith('physical:')).map((x) => x.check)).toEqual(
      PHYSICAL,
    );
    for (const name of PHYSICAL) expect(row(r, new RegExp(`^${name}$`)).state).toBe('ok');
    expect(row(r, /replication connection/).detail).toMatch(
      new RegExp(
        `^postgres@127\\.0\\.0\\.1:${pg.port}/app: IDENTIFY_SYSTEM: system identifier ${control?.id}, timeline 1, WAL at [0-9A-F]+/[0-9A-F]+$`,
      ),
    );
    expect(row(r, /WAL sender/).detail).toBe(
      'wal_level replica; 0 of max_wal_senders 10 in use, 10 free (a base backup takes 1)',
    );
    expect(row(r, /tablespace/).detail).toBe('only the built-in ones: pg_default, pg_global');
    expect(row(r, /pg_verifybackup/).detail).toMatch(
      /^pg_basebackup 15\.\d+ \(.+\), pg_verifybackup 15\.\d+ \(.+\): the server's major 15$/,
    );
    // What pg_dump alone needs does not apply to a physical copy.
    for (const name of [
      /pg_dump and pg_restore/,
      /can read what pg_dump reads/,
      /row security/,
      /lock budget/,
    ])
      expect(row(r, name)).toMatchObject({
        state: 'skipped',
        detail: 'not used by mode physical: pg_basebackup copies the files, pg_dump is not run',
      });
    expect(row(r, /roles \(globals\)/).state).toBe('ok');
    // The check's own WAL sender is gone when it is done.
    const [senders] = await pg.query<{ n: number }>(
      'postgres',
      'SELECT count(*)::int AS n FROM pg_stat_replication',
    );
    expect(senders?.n).toBe(0);
  });

  it('through the SSH tunnel: the replication connection goes the same way', async () => {
    const r = await runPgDr(
      inputs({
        'ssh-host': `${bastion.host}:${bastion.port}`,
        'ssh-user': bastion.user,
        'ssh-private-key': bastion.privateKey,
        'ssh-known-hosts': bastion.knownHosts,
      }),
      env(),
    );
    expect(r.failed, r.log).toBeUndefined();
    const c = row(r, /replication connection/);
    expect(c.state).toBe('ok');
    expect(c.detail).toMatch(
      /through the SSH tunnel via .*: IDENTIFY_SYSTEM: system identifier \d+/,
    );
  });

  it('mode logical (the default): no physical row, the table as before', async () => {
    const { mode: _physical, ...logical } = inputs();
    const r = await runPgDr(logical, env());
    expect(r.failed, r.log).toBeUndefined();
    expect(rowsOf(r).some((x) => x.check.startsWith('physical:'))).toBe(false);
    expect(row(r, /pg_dump and pg_restore/).state).toBe('ok');
    expect(row(r, /lock budget/).state).toBe('ok');
  });
});

describe('check mode physical, each refusal on its own', () => {
  it('a role without REPLICATION: the role row and the server refusing the WAL sender, each with the fix; with REPLICATION, ✓', async () => {
    await pg.query(
      'postgres',
      `CREATE ROLE plain_backup LOGIN PASSWORD '${ROLE_PASSWORD}'; GRANT CONNECT ON DATABASE app TO plain_backup`,
    );
    const url = new URL(pg.url('app'));
    url.username = 'plain_backup';
    url.password = ROLE_PASSWORD;
    const r = await runPgDr(inputs({ 'database-url': url.toString() }), env());
    const [role, connection] = failsOnly(r, /has REPLICATION/, /replication connection/);
    expect(role?.detail).toBe(
      'mode physical connects for replication, and role "plain_backup" has neither REPLICATION nor SUPERUSER.',
    );
    expect(role?.fix).toMatch(/^ALTER ROLE "plain_backup" REPLICATION/);
    expect(connection?.detail).toMatch(
      /the server refused a replication connection: FATAL: must be superuser or replication role to start walsender/,
    );
    expect(connection?.detail).toMatch(
      /Managed services \(RDS, Cloud SQL, Supabase, …\) usually refuse/,
    );
    expect(connection?.fix).toMatch(/^ALTER ROLE plain_backup REPLICATION \(see the role row\)/);
    expect(`${r.log}${JSON.stringify(r.outputs)}`).not.toContain(ROLE_PASSWORD);

    await pg.query('postgres', 'ALTER ROLE plain_backup REPLICATION');
    const fixed = await runPgDr(inputs({ 'database-url': url.toString() }), env());
    expect(fixed.failed, fixed.log).toBeUndefined();
    for (const name of PHYSICAL) expect(row(fixed, new RegExp(`^${name}$`)).state).toBe('ok');
    // Not a superuser: no password hashes, a warning as the backup gives.
    expect(row(fixed, /roles \(globals\)/).state).toBe('warn');
  });

  it("a pg_hba.conf without a replication line: the server's words, the managed-services note, and a fix that works as written", async () => {
    const hba = join(pg.dataDir, 'pg_hba.conf');
    const original = await readFile(hba, 'utf8');
    const without = original
      .split('\n')
      .filter((l) => !/^\s*(host|local)\s+replication\b/.test(l))
      .join('\n');
    expect(without).not.toBe(original);
    await writeFile(hba, without);
    await pg.query('postgres', 'SELECT pg_reload_conf()');
    try {
      const r = await runPgDr(inputs(), env());
      const [f] = failsOnly(r, /replication connection/);
      expect(f?.detail).toMatch(
        /: the server refused a replication connection: FATAL: no pg_hba\.conf entry for replication connection from host "127\.0\.0\.1", user "postgres"/,
      );
      expect(f?.detail).toMatch(
        /Managed services \(RDS, Cloud SQL, Supabase, …\) usually refuse physical replication connections: mode physical is for self-hosted PostgreSQL\.$/,
      );
      expect(f?.fix).toMatch(
        /^Add the line "host replication postgres 127\.0\.0\.1\/32 scram-sha-256" to pg_hba\.conf .*then reload: SELECT pg_reload_conf\(\)/,
      );
      expect(f?.detail).not.toContain(pg.password);
      // Every other row as before: the role may replicate, the settings allow it.
      expect(row(r, /has REPLICATION/).state).toBe('ok');
      expect(row(r, /WAL sender/).state).toBe('ok');

      // The fix, applied as written.
      const line = /"(host replication [^"]+)"/.exec(f?.fix ?? '')?.[1];
      await writeFile(hba, `${without}\n${line}\n`);
      await pg.query('postgres', 'SELECT pg_reload_conf()');
      const fixed = await runPgDr(inputs(), env());
      expect(fixed.failed, fixed.log).toBeUndefined();
      expect(row(fixed, /replication connection/).state).toBe('ok');
    } finally {
      await writeFile(hba, original);
      await pg.query('postgres', 'SELECT pg_reload_conf()');
    }
  });

  it('a tablespace of its own: named with its location, the fix the backup gives', async () => {
    const dir = join(work, 'ts_check');
    await mkdir(dir, { recursive: true });
    if (process.getuid?.() === 0) await execa('chown', ['postgres:postgres', dir]);
    await pg.query('postgres', `CREATE TABLESPACE ts_check LOCATION '${dir}'`);
    try {
      const r = await runPgDr(inputs(), env());
      const [f] = failsOnly(r, /tablespace/);
      expect(f?.detail).toBe(
        `mode physical backs up clusters without tablespaces of their own; this one has 1: "ts_check" (${dir})`,
      );
      expect(f?.fix).toBe(
        'Move their objects to pg_default (ALTER TABLE … SET TABLESPACE pg_default), or use mode: logical.',
      );
    } finally {
      await pg.query('postgres', 'DROP TABLESPACE ts_check');
    }
  });

  it('every WAL sender taken, then wal_level minimal: the settings row names both, the server refuses the connection', async () => {
    await restartWith('ALTER SYSTEM SET max_wal_senders = 1');
    // Another WAL receiver holds the only sender.
    const holder = new pgDriver.Client({
      connectionString: pg.url('app'),
      replication: 'true',
    } as pgDriver.ClientConfig);
    await holder.connect();
    try {
      await holder.query('IDENTIFY_SYSTEM');
      const r = await runPgDr(inputs(), env());
      const [senders, connection] = failsOnly(r, /WAL sender/, /replication connection/);
      expect(senders?.detail).toBe(
        'wal_level replica; 1 of max_wal_senders 1 in use, 0 free (a base backup takes 1)',
      );
      expect(senders?.fix).toMatch(
        /^ALTER SYSTEM SET max_wal_senders = 10, or take the backup when/,
      );
      expect(senders?.fix).toMatch(/after a server restart/);
      expect(connection?.detail).toMatch(
        /number of requested standby connections exceeds max_wal_senders \(currently 1\)/,
      );
      expect(connection?.fix).toMatch(/^Every WAL sender is in use: raise max_wal_senders/);
    } finally {
      await holder.end();
    }
    await restartWith(
      'ALTER SYSTEM SET wal_level = minimal',
      'ALTER SYSTEM SET max_wal_senders = 0',
    );
    try {
      const r = await runPgDr(inputs(), env());
      const [senders] = failsOnly(r, /WAL sender/, /replication connection/);
      expect(senders?.detail).toBe(
        'wal_level minimal; 0 of max_wal_senders 0 in use, 0 free (a base backup takes 1)',
      );
      expect(senders?.fix).toMatch(
        /^ALTER SYSTEM SET wal_level = replica \(with max_wal_senders above 0\); ALTER SYSTEM SET max_wal_senders = 10/,
      );
    } finally {
      await restartWith('ALTER SYSTEM RESET wal_level', 'ALTER SYSTEM RESET max_wal_senders');
    }
    const back = await runPgDr(inputs(), env());
    expect(back.failed, back.log).toBeUndefined();
  }, 120_000);
});

// The oldest and the newest major pg-dr takes physical backups of, from the embedded server
// packages (server binaries only: no pg_basebackup of that major on this machine).
describe.each([13, 18])('check mode physical on PostgreSQL %i', (major) => {
  let server: PgCluster;

  beforeAll(async () => {
    server = await startPostgres({
      name: `check-physical-${major}`,
      binDir: await serverBinDir(major),
    });
    await server.createDatabase('app');
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
  });

  it("every row ✓ but the clients: no pg_basebackup of the server's major, both named (install-client auto off a GitHub-hosted runner: ✗; on one: ⚠️, the backup installs it)", async () => {
    const r = await runPgDr(inputs({ 'database-url': server.url('app') }), env());
    const [clients] = failsOnly(r, /pg_verifybackup/);
    expect(clients?.detail).toMatch(
      new RegExp(
        `^No pg_basebackup of major ${major}: the server runs PostgreSQL ${major}\\.\\d+ and a physical backup needs pg_basebackup of the same major; found 15\\.\\d+ \\(`,
      ),
    );
    expect(clients?.fix).toMatch(new RegExp(`^install postgresql-client-${major} `));
    for (const name of PHYSICAL.slice(0, -1))
      expect(row(r, new RegExp(`^${name}$`)).state).toBe('ok');
    expect(row(r, /replication connection/).detail).toMatch(
      /IDENTIFY_SYSTEM: system identifier \d+, timeline 1, WAL at [0-9A-F]+\/[0-9A-F]+$/,
    );

    const hosted = await runPgDr(inputs({ 'database-url': server.url('app') }), {
      ...env(),
      RUNNER_ENVIRONMENT: 'github-hosted',
    });
    expect(hosted.failed, hosted.log).toBeUndefined();
    expect(row(hosted, /pg_verifybackup/)).toMatchObject({
      state: 'warn',
      detail: `none installed of the server's major ${major}; the backup installs postgresql-client-${major} (install-client: auto)`,
    });
  });

  it("a role without REPLICATION: this major's words for the refused WAL sender", async () => {
    await server.query('postgres', `CREATE ROLE plain_backup LOGIN PASSWORD '${ROLE_PASSWORD}'`);
    const url = new URL(server.url('app'));
    url.username = 'plain_backup';
    url.password = ROLE_PASSWORD;
    const r = await runPgDr(
      inputs({ 'database-url': url.toString(), 'install-client': 'false' }),
      env(),
    );
    const [, connection] = failsOnly(
      r,
      /has REPLICATION/,
      /replication connection/,
      /pg_verifybackup/,
    );
    expect(connection?.detail).toMatch(
      major >= 16
        ? /FATAL: permission denied to start WAL sender/
        : /FATAL: must be superuser or replication role to start walsender/,
    );
    expect(connection?.fix).toMatch(/^ALTER ROLE plain_backup REPLICATION/);
  });
});
