import { createHash } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { generateX25519Identity } from 'age-encryption';
import pgClient from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decryptStream, encryptStream } from '../../src/crypto/age.js';
import { parseVerification } from '../../src/manifest/verification.js';
import { ageKeyPair, createSeededDatabase, tableRowCounts, tempDir } from '../harness/fixtures.js';
import { leasePostgres } from '../harness/lease.js';
import type { PgCluster } from '../harness/postgres.js';
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
const passphrase = `correct horse battery staple ${Math.random().toString(36).slice(2)}`;
let passphraseBackupId: string;

const destinations = () => destinationInputs(s3.primary, s3.secondary);

/** `restore` into a new database, reading every destination in order; its report. */
async function restoreInto(db: string) {
  const url = await pg.createDatabase(db);
  const r = await runPgDr({
    command: 'restore',
    'database-url': url,
    'age-identity': identity,
    ...destinations(),
  });
  expect(r.failed).toBeUndefined();
  return JSON.parse(r.outputs.report as string);
}

async function drillDatabases(): Promise<string[]> {
  const rows = await pg.query<{ datname: string }>(
    'postgres',
    "SELECT datname FROM pg_database WHERE datname LIKE 'pg\\_dr\\_drill\\_%' OR datname LIKE '%\\_pgdr\\_%'",
  );
  return rows.map((r) => r.datname);
}

async function databasesLike(pattern: string): Promise<string[]> {
  const rows = await pg.query<{ datname: string }>(
    'postgres',
    'SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY 1',
    [pattern],
  );
  return rows.map((r) => r.datname);
}

async function userTables(db: string): Promise<number> {
  const [r] = await pg.query<{ n: string }>(
    db,
    "SELECT count(*)::text AS n FROM pg_tables WHERE schemaname NOT IN ('pg_catalog','information_schema')",
  );
  return Number(r?.n);
}

beforeAll(async () => {
  [pg, s3] = await Promise.all([leasePostgres({ name: 'recovery' }), startS3Pair()]);
  source = await createSeededDatabase(pg, 'app');
  work = await tempDir('recovery');
  ({ identity, recipient } = await ageKeyPair());
  const ws = join(work, 'ws');
  await import('node:fs/promises').then(async (fs) => {
    await fs.mkdir(join(ws, 'deploy'), { recursive: true });
    await fs.writeFile(join(ws, 'docker-compose.yml'), 'services: {}\n');
    await fs.writeFile(join(ws, 'deploy/run.sh'), 'echo run\n');
  });
  const b = await runPgDr(
    {
      command: 'backup',
      'database-url': pg.url('app'),
      'age-recipients': recipient,
      ...destinations(),
    },
    { GITHUB_WORKSPACE: ws },
  );
  expect(b.failed).toBeUndefined();
  backupId = b.outputs['backup-id'] as string;
  dumpName = JSON.parse(b.outputs.manifest as string).objects.find(
    (o: { kind: string }) => o.kind === 'database',
  ).name;
  const p = await runPgDr(
    {
      command: 'backup',
      'database-url': pg.url('app'),
      passphrase,
      prefix: 'pp/',
      ...destinations(),
    },
    { GITHUB_WORKSPACE: ws },
  );
  expect(p.failed).toBeUndefined();
  passphraseBackupId = p.outputs['backup-id'] as string;
});

afterAll(async () => {
  await Promise.all([pg?.stop(), s3?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

describe('verify', () => {
  it.each(['checksum', 'decrypt', 'restore'])(
    'level %s passes at both destinations and is recorded there',
    async (level) => {
      const drill = level === 'restore' ? await pg.createDatabase(`drill_${level}`) : '';
      const r = await runPgDr({
        command: 'verify',
        'verify-level': level,
        ...(level !== 'checksum' ? { 'age-identity': identity } : {}),
        ...(drill ? { 'drill-database-url': drill } : {}),
        ...destinations(),
      });
      expect(r.failed).toBeUndefined();
      expect(r.outputs.status).toBe('ok');
      const report = JSON.parse(r.outputs.report as string);
      expect(
        report.verifications.map((v: { destination: string; ok: boolean }) => [
          v.destination,
          v.ok,
        ]),
      ).toEqual([
        ['b2', true],
        ['r2', true],
      ]);
      if (level !== 'checksum') expect(report.verifications[0].archive.ok).toBe(true);
      if (level === 'decrypt') expect(report.verifications[0].archive.entries).toBeGreaterThan(10);
      if (level === 'restore') {
        expect(report.verifications[0].drill).toMatchObject({ ok: true, mismatches: [] });
        expect(report.verifications[0].drill.tables).toBe(Object.keys(source).length);
        // The drill restored into a database of its own and dropped it: the one named in
        // drill-database-url is only where pg-dr connects, and stays empty.
        expect(await userTables(`drill_${level}`)).toBe(0);
        expect(await drillDatabases()).toEqual([]);
      }
      for (const [server, bucket] of [
        [s3.primary, 'pgdr-primary'],
        [s3.secondary, 'pgdr-secondary'],
      ] as const) {
        const keys = await server.listKeys(bucket, `disaster_recovery/${backupId}/verifications/`);
        const records = await Promise.all(
          keys.map(async (k) => parseVerification((await server.getObject(bucket, k)).toString())),
        );
        expect(records.some((v) => v.level === level && v.ok && v.backupId === backupId)).toBe(
          true,
        );
      }
      const table = r.tables[0];
      expect(table?.header).toEqual(['backup', 'destination', 'level', 'result', 'duration']);
    },
  );

  it('a drill through the source database itself writes nothing there', async () => {
    const r = await runPgDr({
      command: 'verify',
      'verify-level': 'restore',
      'age-identity': identity,
      'drill-database-url': pg.url('app'),
      ...destinations(),
    });
    expect(r.failed).toBeUndefined();
    expect(await tableRowCounts(pg, 'app')).toEqual(source);
    expect(await drillDatabases()).toEqual([]);
  });

  it('a wrong identity fails decrypt-level verification without touching anything', async () => {
    const other = await generateX25519Identity();
    const r = await runPgDr({
      command: 'verify',
      'verify-level': 'decrypt',
      'age-identity': other,
      ...destinations(),
    });
    expect(r.outputs.status).toBe('failed');
    expect(r.failed).toMatch(/cannot decrypt/);
  });
});

describe('restore', () => {
  it('restores the latest backup into an empty database and extracts the config bundle', async () => {
    const url = await pg.createDatabase('target_ok');
    const configDir = join(work, 'restored-config');
    const r = await runPgDr({
      command: 'restore',
      'database-url': url,
      'age-identity': identity,
      'config-dir': configDir,
      ...destinations(),
    });
    expect(r.failed).toBeUndefined();
    const report = JSON.parse(r.outputs.report as string);
    expect(report).toMatchObject({
      ok: true,
      backupId,
      restoredFrom: 'b2',
      rowCounts: 'compared',
      mismatches: [],
    });
    expect(await tableRowCounts(pg, 'target_ok')).toEqual(source);
    expect((await readdir(configDir)).sort()).toEqual(['deploy', 'docker-compose.yml']);
    expect(await readFile(join(configDir, 'deploy/run.sh'), 'utf8')).toBe('echo run\n');
  });

  it('needs no zstd program: a laptop with Node and pg_restore is enough', async () => {
    const url = await pg.createDatabase('target_nozstd');
    const r = await runPgDr(
      { command: 'restore', 'database-url': url, 'age-identity': identity, ...destinations() },
      { PATH: '/nonexistent' },
    );
    expect(r.failed).toBeUndefined();
    expect(await tableRowCounts(pg, 'target_nozstd')).toEqual(source);
  });

  it('refuses a non-empty target without force, leaving it untouched', async () => {
    const url = await pg.createDatabase('target_busy');
    await pg.query(
      'target_busy',
      'CREATE TABLE keep_me (x int); INSERT INTO keep_me VALUES (1), (2)',
    );
    const r = await runPgDr({
      command: 'restore',
      'database-url': url,
      'age-identity': identity,
      ...destinations(),
    });
    expect(r.failed).toMatch(/"target_busy" already has 1 objects.*force: true/);
    expect(await tableRowCounts(pg, 'target_busy')).toEqual({ 'public.keep_me': 2 });
  });

  it('with force, replaces a target that holds an older copy and keeps that copy under another name', async () => {
    const url = await pg.createDatabase('target_force');
    const first = await runPgDr({
      command: 'restore',
      'database-url': url,
      'age-identity': identity,
      ...destinations(),
    });
    expect(first.failed).toBeUndefined();
    // The copy drifts: rows added and removed, an extra table.
    await pg.query('target_force', 'DELETE FROM billing.invoices WHERE id % 2 = 0');
    await pg.query('target_force', 'CREATE TABLE scratch (x int)');
    const r = await runPgDr({
      command: 'restore',
      'database-url': url,
      'age-identity': identity,
      force: 'true',
      ...destinations(),
    });
    expect(r.failed).toBeUndefined();
    expect(await tableRowCounts(pg, 'target_force')).toEqual(source);
    const [kept, ...more] = await databasesLike('target\\_force\\_before\\_%');
    expect(more).toEqual([]);
    expect(JSON.parse(r.outputs.report as string).previous).toBe(kept);
    expect(await tableRowCounts(pg, kept as string)).toEqual({
      ...source,
      'billing.invoices': (source['billing.invoices'] as number) / 2,
      'public.scratch': 0,
    });
    expect(await drillDatabases()).toEqual([]);
  });

  it('with force, a target whose schema diverged is replaced whole; drop-previous drops it', async () => {
    const url = await pg.createDatabase('target_diverged');
    await pg.query(
      'target_diverged',
      'CREATE TABLE customers (x int); INSERT INTO customers VALUES (1)',
    );
    const r = await runPgDr({
      command: 'restore',
      'database-url': url,
      'age-identity': identity,
      force: 'true',
      'drop-previous': 'true',
      ...destinations(),
    });
    expect(r.failed).toBeUndefined();
    expect(await tableRowCounts(pg, 'target_diverged')).toEqual(source);
    expect(JSON.parse(r.outputs.report as string).previous).toBeNull();
    expect(await databasesLike('target\\_diverged%')).toEqual(['target_diverged']);
  });

  it('refuses a target with open connections before writing; terminate-connections ends them at the switch', async () => {
    const url = await pg.createDatabase('target_live');
    await pg.query('target_live', 'CREATE TABLE old_copy (x int); INSERT INTO old_copy VALUES (1)');
    const app = new pgClient.Client({
      host: pg.host,
      port: pg.port,
      user: pg.user,
      password: pg.password,
      database: 'target_live',
      application_name: 'the-app',
    });
    await app.connect();
    app.on('error', () => undefined);
    try {
      const refused = await runPgDr({
        command: 'restore',
        'database-url': url,
        'age-identity': identity,
        force: 'true',
        ...destinations(),
      });
      expect(refused.failed).toMatch(
        /"target_live" has 1 open connection\(s\) \(postgres \(the-app\)\).*terminate-connections: true/,
      );
      expect(await tableRowCounts(pg, 'target_live')).toEqual({ 'public.old_copy': 1 });
      expect(await drillDatabases()).toEqual([]);

      const r = await runPgDr({
        command: 'restore',
        'database-url': url,
        'age-identity': identity,
        force: 'true',
        'terminate-connections': 'true',
        ...destinations(),
      });
      expect(r.failed).toBeUndefined();
      expect(r.log).toMatch(/1 session\(s\) on the target were ended/);
      expect(await tableRowCounts(pg, 'target_live')).toEqual(source);
      await expect(app.query('SELECT 1')).rejects.toThrow();
    } finally {
      await app.end().catch(() => undefined);
    }
  });

  it('restores a backup made before pg-dr backed up roles: contents only, and says so', async () => {
    // Such a backup: no globals object, no globals in the manifest.
    for (const [server, bucket] of [
      [s3.primary, 'pgdr-primary'],
      [s3.secondary, 'pgdr-secondary'],
    ] as const) {
      for (const key of await server.listKeys(bucket, `disaster_recovery/${backupId}/`)) {
        if (key.includes('/verifications/') || key.endsWith('globals.sql.age')) continue;
        let body = await server.getObject(bucket, key);
        if (key.endsWith('manifest.json')) {
          const m = JSON.parse(body.toString());
          m.objects = m.objects.filter((o: { kind: string }) => o.kind !== 'globals');
          delete m.globals;
          body = Buffer.from(`${JSON.stringify(m, null, 2)}\n`);
        }
        await server.putObject(bucket, key.replace('disaster_recovery/', 'legacy/'), body);
      }
    }
    const r = await runPgDr({
      command: 'restore',
      prefix: 'legacy/',
      'database-url': pg.url('target_legacy'),
      'age-identity': identity,
      ...destinations(),
    });
    expect(r.failed).toBeUndefined();
    expect(await tableRowCounts(pg, 'target_legacy')).toEqual(source);
    expect(JSON.parse(r.outputs.report as string).differences.join(' ')).toMatch(
      /no globals .*every object belongs to the restoring user/,
    );
    const [row] = await pg.query<{ c: string | null }>(
      'postgres',
      "SELECT shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = 'target_legacy'",
    );
    expect(row?.c).toBeNull();
  });

  it('refuses an identity that matches none of the recipients, before writing anything', async () => {
    const url = await pg.createDatabase('target_wrongkey');
    const other = await generateX25519Identity();
    const r = await runPgDr({
      command: 'restore',
      'database-url': url,
      'age-identity': other,
      ...destinations(),
    });
    expect(r.failed).toMatch(/'age-identity'.*match(es)? none of the backup's recipients/);
    expect(r.failed).not.toContain(other);
    expect(await userTables('target_wrongkey')).toBe(0);
  });

  it('a wrong passphrase fails on the age header and leaves the target empty', async () => {
    const url = await pg.createDatabase('target_wrongpass');
    const r = await runPgDr({
      command: 'restore',
      'database-url': url,
      passphrase: 'not the passphrase at all',
      prefix: 'pp/',
      ...destinations(),
    });
    expect(r.outputs.status).toBe('failed');
    expect(r.failed).toMatch(/cannot decrypt/);
    expect(await userTables('target_wrongpass')).toBe(0);
    // The right passphrase restores it.
    const ok = await runPgDr({
      command: 'restore',
      'database-url': url,
      passphrase,
      prefix: 'pp/',
      ...destinations(),
    });
    expect(ok.failed).toBeUndefined();
    expect(ok.outputs['backup-id']).toBe(passphraseBackupId);
    expect(await tableRowCounts(pg, 'target_wrongpass')).toEqual(source);
  });
});

describe('damage', () => {
  it('one corrupted byte in the primary: verify names it, restore recovers from the secondary', async () => {
    const key = `disaster_recovery/${backupId}/${dumpName}`;
    const original = await s3.primary.getObject('pgdr-primary', key);
    const bad = Buffer.from(original);
    const at = Math.floor(bad.length / 2);
    bad[at] = (bad[at] as number) ^ 0xff;
    await s3.primary.putObject('pgdr-primary', key, bad);
    try {
      const v = await runPgDr({ command: 'verify', 'backup-id': backupId, ...destinations() });
      expect(v.outputs.status).toBe('failed');
      expect(v.failed).toMatch(
        new RegExp(
          `at b2: ${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: SHA-256 [0-9a-f]{64} differs`,
        ),
      );
      expect(v.failed).not.toMatch(/at r2/);

      const report = await restoreInto('target_fallback');
      expect(report.restoredFrom).toBe('r2');
      expect(report.attempts[0]).toMatchObject({ destination: 'b2', ok: false });
      expect(await tableRowCounts(pg, 'target_fallback')).toEqual(source);
    } finally {
      await s3.primary.putObject('pgdr-primary', key, original);
    }
  });

  it('a missing object or manifest makes the backup incomplete: list marks it, restore refuses it', async () => {
    const b = await runPgDr({
      command: 'backup',
      'database-url': pg.url('app'),
      'age-recipients': recipient,
      prefix: 'dmg/',
      ...destinations(),
    });
    const id = b.outputs['backup-id'] as string;
    const objects = JSON.parse(b.outputs.manifest as string).objects as {
      name: string;
      kind: string;
    }[];
    const cfg = objects.find((o) => o.kind === 'config')?.name;
    // An object gone from the secondary only: still complete (and restorable) at the primary.
    await s3.secondary.client().send(
      new (await import('@aws-sdk/client-s3')).DeleteObjectCommand({
        Bucket: 'pgdr-secondary',
        Key: `dmg/${id}/${cfg}`,
      }),
    );
    let l = await runPgDr({ command: 'list', prefix: 'dmg/', format: 'json', ...destinations() });
    let listed = JSON.parse(l.outputs.report as string).backups[0];
    expect(listed).toMatchObject({ id, complete: true });
    expect(listed.destinations).toEqual([
      expect.objectContaining({ name: 'b2', complete: true }),
      expect.objectContaining({ name: 'r2', complete: false, problem: `${cfg} is missing` }),
    ]);
    // The primary's manifest removed too: incomplete everywhere.
    await s3.primary.client().send(
      new (await import('@aws-sdk/client-s3')).DeleteObjectCommand({
        Bucket: 'pgdr-primary',
        Key: `dmg/${id}/manifest.json`,
      }),
    );
    l = await runPgDr({ command: 'list', prefix: 'dmg/', ...destinations() });
    listed = JSON.parse(l.outputs.report as string).backups[0];
    expect(listed).toMatchObject({ id, complete: false });
    expect(l.tables[0]?.rows[0]?.[0]).toBe(`${id} (INCOMPLETE)`);
    const url = await pg.createDatabase('target_incomplete');
    const r = await runPgDr({
      command: 'restore',
      'backup-id': id,
      prefix: 'dmg/',
      'database-url': url,
      'age-identity': identity,
      ...destinations(),
    });
    expect(r.failed).toMatch(new RegExp(`Backup ${id} is incomplete everywhere: b2: no manifest`));
    expect(await userTables('target_incomplete')).toBe(0);
    const latest = await runPgDr({
      command: 'restore',
      prefix: 'dmg/',
      'database-url': url,
      'age-identity': identity,
      ...destinations(),
    });
    expect(latest.failed).toMatch(/No complete backup/);
  });

  it('a backup-id that does not exist is named in the error', async () => {
    const r = await runPgDr({
      command: 'verify',
      'backup-id': '20200101T000000Z-abcdef',
      ...destinations(),
    });
    expect(r.failed).toMatch(/Backup 20200101T000000Z-abcdef does not exist at any destination/);
  });
});

describe('list', () => {
  it('shows complete backups newest first with their destinations and last verification', async () => {
    const r = await runPgDr({ command: 'list', ...destinations() });
    expect(r.failed).toBeUndefined();
    const report = JSON.parse(r.outputs.report as string);
    const b = report.backups.find((x: { id: string }) => x.id === backupId);
    expect(b).toMatchObject({
      complete: true,
      database: 'app',
      kind: 'logical',
      encoding: 'UTF8',
      locale: 'libc C',
    });
    const row = r.tables[0]?.rows.find((x) => x[0] === backupId);
    expect(row?.[2]).toBe('app (UTF8, libc C)');
    expect(b.destinations.map((d: { name: string }) => d.name)).toEqual(['b2', 'r2']);
    expect(r.tables[0]?.header).toEqual([
      'backup',
      'made',
      'database',
      'kind',
      'size',
      'commit',
      'destinations',
      'last verification',
    ]);
  });
});

describe('the first cause', () => {
  const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const escaped = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  /** pg_restore's words about a cut input, which must never stand for the cause. */
  const CUT_INPUT = /too short|no message|pg_restore|premature|cancel/i;

  async function verifyAt(
    level: string,
    tag: string,
    prefix = 'disaster_recovery/',
    id = backupId,
  ) {
    const drill = level === 'restore' ? await pg.createDatabase(`drill_cause_${tag}`) : '';
    const v = await runPgDr({
      command: 'verify',
      'backup-id': id,
      'verify-level': level,
      prefix,
      ...(level !== 'checksum' ? { 'age-identity': identity } : {}),
      ...(drill ? { 'drill-database-url': drill } : {}),
      ...destinations(),
    });
    expect(v.outputs.status).toBe('failed');
    const report = JSON.parse(v.outputs.report as string);
    const at = (name: string) =>
      report.verifications.find((x: { destination: string }) => x.destination === name);
    return { failed: v.failed as string, b2: at('b2'), r2: at('r2') };
  }

  /** 4 bytes of the primary's archive overwritten at `where`, for the time of `body`. */
  async function withDamagedPrimary(
    where: 'start' | 'middle' | 'end',
    body: (key: string) => Promise<void>,
  ): Promise<void> {
    const key = `disaster_recovery/${backupId}/${dumpName}`;
    const original = await s3.primary.getObject('pgdr-primary', key);
    const bad = Buffer.from(original);
    // 300: inside the first payload chunk, past the age header.
    const at = { start: 300, middle: Math.floor(bad.length / 2), end: bad.length - 4 }[where];
    bad.writeUInt32BE((bad.readUInt32BE(at) ^ 0xdeadbeef) >>> 0, at);
    await s3.primary.putObject('pgdr-primary', key, bad);
    try {
      await body(key);
    } finally {
      await s3.primary.putObject('pgdr-primary', key, original);
    }
  }

  // What the stored copy says first: a SHA-256 that differs (the whole object read), or
  // age's authentication of the chunk that was altered (the read stops there).
  const damaged = (key: string) =>
    new RegExp(
      `^${escaped(key)}: (SHA-256 [0-9a-f]{64} differs from the manifest's [0-9a-f]{64}|decryption failed: age payload chunk \\d+ (\\(the last one read\\) )?fails authentication: the object is (corrupted or was modified|truncated or corrupted))$`,
    );

  describe.each(['start', 'middle', 'end'] as const)('4 bytes overwritten at the %s', (where) => {
    it.each(['checksum', 'decrypt', 'restore'])(
      'verify at level %s names the damage once, not what pg_restore said',
      async (level) => {
        await withDamagedPrimary(where, async (key) => {
          const v = await verifyAt(level, where);
          expect(v.b2.error).toMatch(damaged(key));
          if (level === 'checksum') expect(v.b2.error).toMatch(/SHA-256/);
          expect(v.r2.ok).toBe(true);
          // One line, no repeats: the alert's text is the command's failure.
          expect(v.failed).toBe(`Verification failed: ${backupId} at b2: ${v.b2.error}`);
          expect(v.failed).not.toMatch(CUT_INPUT);
          // pg_restore --list reads the table of contents only: damage past it leaves it open.
          if (level !== 'checksum' && !v.b2.archive.ok) expect(v.b2.archive.error).toBe(v.b2.error);
          if (level === 'decrypt' && where === 'start') expect(v.b2.archive.ok).toBe(false);
          if (level === 'restore')
            expect(v.b2.drill).toMatchObject({ ok: false, error: v.b2.error });
        });
      },
    );

    it('restore names the damage at b2 and restores from r2', async () => {
      await withDamagedPrimary(where, async (key) => {
        const report = await restoreInto(`target_cause_${where}`);
        expect(report.restoredFrom).toBe('r2');
        expect(report.attempts[0].destination).toBe('b2');
        expect(report.attempts[0].error).toMatch(damaged(key));
        expect(report.attempts[0].error).not.toMatch(CUT_INPUT);
      });
    });
  });

  /**
   * A backup under `prefix` whose archive at the primary is replaced by `rewrite(archive)`,
   * with both manifests saying the new one's size and SHA-256 (the plaintext's too), so
   * the checksums match and only what follows them can find the damage.
   */
  async function tampered(
    prefix: string,
    rewrite: (
      stored: Buffer,
    ) => Promise<{ stored: Buffer; plaintext?: { bytes: number; sha256: string } }>,
  ): Promise<{ id: string; key: string }> {
    const b = await runPgDr({
      command: 'backup',
      'database-url': pg.url('app'),
      'age-recipients': recipient,
      prefix,
      ...destinations(),
    });
    expect(b.failed).toBeUndefined();
    const id = b.outputs['backup-id'] as string;
    const manifest = JSON.parse(b.outputs.manifest as string);
    const db = manifest.objects.find((o: { kind: string }) => o.kind === 'database');
    const key = `${prefix}${id}/${db.name}`;
    const next = await rewrite(await s3.primary.getObject('pgdr-primary', key));
    db.encrypted = { bytes: next.stored.length, sha256: sha256(next.stored) };
    if (next.plaintext) db.plaintext = next.plaintext;
    const body = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
    await s3.primary.putObject('pgdr-primary', key, next.stored);
    await s3.primary.putObject('pgdr-primary', `${prefix}${id}/manifest.json`, body);
    await s3.secondary.putObject('pgdr-secondary', `${prefix}${id}/manifest.json`, body);
    return { id, key };
  }

  async function restoreFrom(prefix: string, id: string, tag: string) {
    const url = await pg.createDatabase(`target_cause_${tag}`);
    return runPgDr({
      command: 'restore',
      'backup-id': id,
      prefix,
      'database-url': url,
      'age-identity': identity,
      ...destinations(),
    });
  }

  it('ciphertext altered under a matching checksum: age authentication is the cause, at every level and in restore', async () => {
    const { id, key } = await tampered('cause-age/', async (stored) => {
      const bad = Buffer.from(stored);
      const at = Math.floor(bad.length / 2);
      bad.writeUInt32BE((bad.readUInt32BE(at) ^ 0xdeadbeef) >>> 0, at);
      return { stored: bad };
    });
    const age = new RegExp(
      `^${escaped(key)}: decryption failed: age payload chunk \\d+ fails authentication: the object is corrupted or was modified$`,
    );
    for (const level of ['decrypt', 'restore']) {
      const v = await verifyAt(level, `age_${level}`, 'cause-age/', id);
      expect(v.b2.error).toMatch(age);
      expect(v.failed).toMatch(`at b2: ${v.b2.error}`);
      expect(v.failed.match(/fails authentication/g)).toHaveLength(1);
      expect(v.failed).not.toMatch(CUT_INPUT);
    }
    const r = await restoreFrom('cause-age/', id, 'age');
    const report = JSON.parse(r.outputs.report as string);
    expect(report.attempts[0].error).toMatch(age);
    expect(report.attempts[0].error).not.toMatch(CUT_INPUT);
  });

  it('a zstd stream altered under matching checksums: the decompression is the cause, at every level and in restore', async () => {
    const { id, key } = await tampered('cause-zstd/', async (stored) => {
      const plain = await buffer(
        await decryptStream(
          { mode: 'identities', identities: [identity] },
          Readable.from([stored]),
        ),
      );
      const bad = Buffer.from(plain);
      const at = Math.floor(bad.length / 2);
      bad.writeUInt32BE((bad.readUInt32BE(at) ^ 0xdeadbeef) >>> 0, at);
      const again = await buffer(
        await encryptStream({ mode: 'recipients', recipients: [recipient] }, Readable.from([bad])),
      );
      return { stored: again, plaintext: { bytes: bad.length, sha256: sha256(bad) } };
    });
    const zstd = new RegExp(`^${escaped(key)}: zstd decompression failed`);
    for (const level of ['decrypt', 'restore']) {
      const v = await verifyAt(level, `zstd_${level}`, 'cause-zstd/', id);
      expect(v.b2.error).toMatch(zstd);
      expect(v.failed.match(/decompression failed/g)).toHaveLength(1);
      expect(v.failed).not.toMatch(CUT_INPUT);
    }
    const r = await restoreFrom('cause-zstd/', id, 'zstd');
    const report = JSON.parse(r.outputs.report as string);
    expect(report.attempts[0].error).toMatch(zstd);
    expect(report.attempts[0].error).not.toMatch(CUT_INPUT);
  });
});
