import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Decrypter } from 'age-encryption';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest } from '../../src/manifest/schema.js';
import {
  ageKeyPair,
  createSeededDatabase,
  tableRowCounts,
  tempDir,
  writeTree,
} from '../harness/fixtures.js';
import { leasePostgres } from '../harness/lease.js';
import type { PgCluster } from '../harness/postgres.js';
import { destinationInputs, runPgDr } from '../harness/run.js';
import { type S3Pair, sha256, startS3Pair } from '../harness/s3.js';
import { requireBinary } from '../harness/tools.js';

let pg: PgCluster;
let s3: S3Pair;
let work: string;
let identity: string;
let recipient: string;
let sourceCounts: Record<string, number>;

const WORKSPACE_FILES: Record<string, string> = {
  'docker-compose.yml': 'services:\n  app:\n    image: app:1\n',
  Dockerfile: 'FROM node:20\nCOPY . .\n',
  '.dockerignore': 'node_modules\n',
  'app.env.example': 'DATABASE_URL=\n',
  'deploy/release.sh': '#!/bin/sh\necho deploy\n',
  'deploy/nginx/site.conf': 'server { listen 80; }\n',
  'services/api/compose.yaml': 'services: {}\n',
};

beforeAll(async () => {
  requireBinary('age');
  requireBinary('zstd');
  [pg, s3] = await Promise.all([leasePostgres({ name: 'backup' }), startS3Pair()]);
  sourceCounts = await createSeededDatabase(pg, 'app');
  work = await tempDir('backup-test');
  const ws = join(work, 'workspace');
  await writeTree(ws, WORKSPACE_FILES);
  // Never bundled: secrets, git internals, dependencies.
  await writeFile(join(ws, '.env'), 'SECRET=1\n');
  await mkdir(join(ws, 'node_modules/x'), { recursive: true });
  await writeFile(join(ws, 'node_modules/x/docker-compose.yml'), 'no\n');
  await mkdir(join(ws, '.git'), { recursive: true });
  await writeFile(join(ws, '.git/Dockerfile'), 'no\n');
  ({ identity, recipient } = await ageKeyPair());
});

afterAll(async () => {
  await Promise.all([pg?.stop(), s3?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

function baseInputs(extra: Record<string, string> = {}): Record<string, string> {
  return {
    command: 'backup',
    'database-url': pg.url('app'),
    'age-recipients': recipient,
    ...destinationInputs(s3.primary, s3.secondary),
    ...extra,
  };
}

const env = () => ({ GITHUB_WORKSPACE: join(work, 'workspace') });

async function decryptWithLibrary(
  data: Buffer,
  key: { identity?: string; passphrase?: string },
): Promise<Buffer> {
  const d = new Decrypter();
  if (key.identity) d.addIdentity(key.identity);
  if (key.passphrase) d.addPassphrase(key.passphrase);
  return Buffer.from(await d.decrypt(new Uint8Array(data)));
}

function ageCliDecrypt(data: Buffer, identityFile: string): Buffer {
  return execFileSync('age', ['--decrypt', '-i', identityFile], {
    input: data,
    maxBuffer: 1 << 30,
  });
}

async function restoreArchive(archive: Buffer, database: string): Promise<Record<string, number>> {
  await pg.createDatabase(database);
  const r = spawnSync(
    join(pg.binDir, 'pg_restore'),
    ['--no-owner', '--exit-on-error', '-d', database],
    {
      input: archive,
      env: {
        ...process.env,
        PGHOST: pg.host,
        PGPORT: String(pg.port),
        PGUSER: pg.user,
        PGPASSWORD: pg.password,
      },
      maxBuffer: 1 << 30,
    },
  );
  expect(r.stderr.toString()).toBe('');
  expect(r.status).toBe(0);
  return tableRowCounts(pg, database);
}

function countsFromManifest(m: ReturnType<typeof parseManifest>): Record<string, number> {
  return Object.fromEntries(
    m.database.rowCounts.tables.map((t) => [`${t.schema}.${t.table}`, t.rows]),
  );
}

describe('backup', () => {
  it('streams an encrypted zstd dump and the config bundle to both destinations, committed by a manifest', async () => {
    const r = await runPgDr(baseInputs(), env());
    expect(r.failed).toBeUndefined();
    expect(r.outputs.status).toBe('ok');
    const id = r.outputs['backup-id'] as string;
    expect(id).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{6}$/);
    const folder = `disaster_recovery/${id}/`;
    const expectedKeys = [
      `${folder}config.tar.gz.age`,
      `${folder}database.dump.zst.age`,
      `${folder}globals.sql.age`,
      `${folder}manifest.json`,
    ];
    expect(await s3.primary.listKeys('pgdr-primary')).toEqual(expectedKeys);
    expect(await s3.secondary.listKeys('pgdr-secondary')).toEqual(expectedKeys);

    const manifestText = (
      await s3.primary.getObject('pgdr-primary', `${folder}manifest.json`)
    ).toString();
    expect(await s3.secondary.getObject('pgdr-secondary', `${folder}manifest.json`)).toEqual(
      Buffer.from(manifestText),
    );
    const m = parseManifest(manifestText);
    expect(JSON.parse(r.outputs.manifest as string)).toEqual(m);
    expect(m.id).toBe(id);
    expect(m.database.compression).toBe('zstd');
    expect(m.database.name).toBe('app');
    expect(m.database.serverVersion).toMatch(/^\d+\.\d+$/);
    expect(m.database.pgDumpVersion).toMatch(/^\d+\.\d+$/);
    expect(m.database.rowCounts.method).toBe('exact');
    expect(countsFromManifest(m)).toEqual(sourceCounts);
    expect(m.encryption).toEqual({ scheme: 'age', mode: 'recipients', recipients: [recipient] });
    expect(m.destinations.map((d) => [d.name, d.ok, d.error])).toEqual([
      ['b2', true, null],
      ['r2', true, null],
    ]);
    expect(m.config.files).toEqual(Object.keys(WORKSPACE_FILES).sort());
    // No secret in the manifest.
    expect(manifestText).not.toContain(pg.password);
    expect(manifestText).not.toContain(encodeURIComponent(pg.password));
    expect(manifestText).not.toContain('AGE-SECRET-KEY');

    // Every object, from both servers, is exactly what the manifest says.
    for (const o of m.objects) {
      for (const [server, bucket] of [
        [s3.primary, 'pgdr-primary'],
        [s3.secondary, 'pgdr-secondary'],
      ] as const) {
        const data = await server.getObject(bucket, `${folder}${o.name}`);
        expect(data.length).toBe(o.encrypted.bytes);
        expect(sha256(data)).toBe(o.encrypted.sha256);
      }
    }
    const db = m.objects.find((o) => o.kind === 'database');
    expect(r.outputs['database-sha256']).toBe(db?.encrypted.sha256);
    expect(Number(r.outputs['size-bytes'])).toBe(
      m.objects.reduce((s, o) => s + o.encrypted.bytes, 0),
    );
    expect(JSON.parse(r.outputs.destinations as string)).toEqual([
      {
        name: 'b2',
        bucket: 'pgdr-primary',
        endpointHost: new URL(s3.primary.endpoint).host,
        ok: true,
        error: null,
      },
      {
        name: 'r2',
        bucket: 'pgdr-secondary',
        endpointHost: new URL(s3.secondary.endpoint).host,
        ok: true,
        error: null,
      },
    ]);

    // The standard age CLI decrypts it (the format is plain age), and so does the library.
    const stored = await s3.secondary.getObject('pgdr-secondary', `${folder}${db?.name}`);
    const idFile = join(work, 'identity.txt');
    await writeFile(idFile, `${identity}\n`, { mode: 0o600 });
    const compressed = ageCliDecrypt(stored, idFile);
    expect(sha256(compressed)).toBe(db?.plaintext.sha256);
    expect(compressed.length).toBe(db?.plaintext.bytes);
    expect(await decryptWithLibrary(stored, { identity })).toEqual(compressed);
    const archive = execFileSync('zstd', ['-d', '-c'], { input: compressed, maxBuffer: 1 << 30 });
    expect(archive.length).toBe(m.database.archiveBytes);
    expect(archive.subarray(0, 5).toString()).toBe('PGDMP');

    // Restored, every table has the rows of the source and of the manifest.
    const restored = await restoreArchive(archive, 'restored_zstd');
    expect(restored).toEqual(sourceCounts);
    // …and the same bytes: a digest over every column of the tables with the richest types.
    for (const table of ['attachments', 'customers', 'billing.invoices']) {
      const sql = `SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) AS d FROM ${table} t`;
      const [a] = await pg.query<{ d: string }>('app', sql);
      const [b] = await pg.query<{ d: string }>('restored_zstd', sql);
      expect(b?.d).toBe(a?.d);
    }

    // The config bundle holds the platform files, byte for byte, and nothing else.
    const cfg = m.objects.find((o) => o.kind === 'config');
    const bundle = ageCliDecrypt(
      await s3.primary.getObject('pgdr-primary', `${folder}${cfg?.name}`),
      idFile,
    );
    expect(sha256(bundle)).toBe(cfg?.plaintext.sha256);
    const out = join(work, 'bundle-out');
    await mkdir(out);
    execFileSync('tar', ['-xzf', '-', '-C', out], { input: bundle });
    const listed = execFileSync('tar', ['-tzf', '-'], { input: bundle })
      .toString()
      .trim()
      .split('\n')
      .filter((l) => !l.endsWith('/'))
      .sort();
    expect(listed).toEqual(Object.keys(WORKSPACE_FILES).sort());
    for (const [f, body] of Object.entries(WORKSPACE_FILES))
      expect(await readFile(join(out, f), 'utf8')).toBe(body);

    // The summary a person reads.
    const summary = r.tables[0];
    expect(summary?.header).toEqual(['Backup', id]);
    expect(summary?.rows.find((row) => row[0] === 'Destination b2')?.[1]).toContain('stored');
  });

  it.each([
    ['gzip', 'gz'],
    ['none', 'raw'],
  ])(
    'with a passphrase and compression %s, restores with plain pg_restore',
    async (compression, ext) => {
      const passphrase = `pass ${compression} ${Math.random().toString(36).slice(2)} phrase`;
      const r = await runPgDr(
        {
          ...baseInputs({
            compression,
            passphrase,
            prefix: `pp-${compression}/`,
            'row-counts': 'estimate',
          }),
          'age-recipients': '',
        },
        env(),
      );
      expect(r.failed).toBeUndefined();
      const m = parseManifest(r.outputs.manifest as string);
      expect(m.database.compression).toBe(compression);
      expect(m.encryption).toEqual({ scheme: 'age', mode: 'passphrase' });
      expect(m.database.rowCounts.method).toBe('estimate');
      const db = m.objects.find((o) => o.kind === 'database');
      expect(db?.name).toBe(`database.dump.${ext}.age`);
      const stored = await s3.primary.getObject(
        'pgdr-primary',
        `pp-${compression}/${m.id}/${db?.name}`,
      );
      const archive = await decryptWithLibrary(stored, { passphrase });
      expect(sha256(archive)).toBe(db?.plaintext.sha256);
      if (compression === 'none') expect(archive.length).toBe(m.database.archiveBytes);
      else expect(m.database.archiveBytes).toBeNull();
      expect(await restoreArchive(archive, `restored_${compression}`)).toEqual(sourceCounts);
      expect(r.log).not.toContain(passphrase);
    },
  );

  it('counts rows exactly on a database with thousands of tables, with the lock table of pg_dump alone', async () => {
    // 6,800 tables: this server's lock table (max_locks_per_transaction 64, the default)
    // holds about 7,800 locks of one transaction. pg_dump's 6,800 fit; counting every table
    // in the snapshot's own transaction as well (another 6,800, held until the dump ends)
    // ran it out of shared memory — measured: that is what this test did before.
    await pg.createDatabase('many');
    for (let i = 0; i < 6800; i += 200)
      await pg.query(
        'many',
        `DO $$ BEGIN FOR i IN ${i}..${i + 199} LOOP
           EXECUTE format('CREATE TABLE t_%s (id int)', i);
           EXECUTE format('INSERT INTO t_%s SELECT generate_series(1, %s)', i, i % 7);
         END LOOP; END $$`,
      );
    const [locks] = await pg.query<{ v: string }>(
      'postgres',
      "SELECT current_setting('max_locks_per_transaction') AS v",
    );
    expect(locks?.v).toBe('64');
    const r = await runPgDr(
      baseInputs({ 'database-url': pg.url('many'), prefix: 'many/', 'row-counts': 'exact' }),
      env(),
    );
    expect(r.failed).toBeUndefined();
    const tables = parseManifest(r.outputs.manifest as string).database.rowCounts.tables;
    expect(tables).toHaveLength(6800);
    expect(tables.every((t) => t.rows === Number(t.table.slice(2)) % 7)).toBe(true);
  });

  it('completes at one destination when the other is unreachable: degraded, and the step fails unless told not to', async () => {
    const deadEndpoint = 'http://127.0.0.1:9'; // discard port: nothing listens
    const inputs = baseInputs({ prefix: 'degraded/', 'secondary-endpoint': deadEndpoint });
    const r = await runPgDr(inputs, env());
    expect(r.outputs.status).toBe('degraded');
    expect(r.failed).toMatch(/degraded.*r2/);
    const m = parseManifest(r.outputs.manifest as string);
    expect(m.destinations.find((d) => d.name === 'r2')?.ok).toBe(false);
    expect(await s3.primary.listKeys('pgdr-primary', `degraded/${m.id}/`)).toContain(
      `degraded/${m.id}/manifest.json`,
    );
    expect(await s3.secondary.listKeys('pgdr-secondary', 'degraded/')).toEqual([]);

    const tolerant = await runPgDr({ ...inputs, 'fail-on-degraded': 'false' }, env());
    expect(tolerant.outputs.status).toBe('degraded');
    expect(tolerant.failed).toBeUndefined();
  });

  it('prune-after-backup applies the retention policy once the backup is stored', async () => {
    const inputs = baseInputs({
      prefix: 'pab/',
      'prune-after-backup': 'true',
      'keep-last': '1',
      'keep-daily': '0',
      'keep-weekly': '0',
      'keep-monthly': '0',
      'keep-yearly': '0',
    });
    const first = await runPgDr(inputs, env());
    // Ids order by their second; two backups within one second order by their random tail.
    await new Promise((r) => setTimeout(r, 1010 - (Date.now() % 1000)));
    const second = await runPgDr(inputs, env());
    expect(second.failed).toBeUndefined();
    const ids = (keys: string[]) => [...new Set(keys.map((k) => k.split('/')[1]))];
    expect(ids(await s3.primary.listKeys('pgdr-primary', 'pab/'))).toEqual([
      second.outputs['backup-id'],
    ]);
    expect(ids(await s3.secondary.listKeys('pgdr-secondary', 'pab/'))).toEqual([
      second.outputs['backup-id'],
    ]);
    const report = JSON.parse(second.outputs.report as string);
    const deleted = report.prune.destinations[0].backups.find(
      (b: { id: string }) => b.id === first.outputs['backup-id'],
    );
    expect(deleted.result).toBe('deleted');
    expect(second.tables.map((t) => t.title)).toEqual([
      'pg-dr backup: 🟢 ok',
      `Changes since ${first.outputs['backup-id']}`,
      'pg-dr prune: 🟢 ok',
      'Alerts',
    ]);
  });

  it('fails with no manifest anywhere when pg_dump fails after uploads began', async () => {
    // A role that may connect but not read one table: pg_dump fails on it.
    await pg.query('app', "CREATE ROLE limited LOGIN PASSWORD 'limited-pw-123'");
    await pg.query('app', 'GRANT USAGE ON SCHEMA public, billing TO limited');
    await pg.query('app', 'GRANT SELECT ON ALL TABLES IN SCHEMA public TO limited');
    const url = `postgresql://limited:limited-pw-123@127.0.0.1:${pg.port}/app`;
    const r = await runPgDr(
      baseInputs({ 'database-url': url, prefix: 'broken/', 'row-counts': 'off' }),
      env(),
    );
    expect(r.outputs.status).toBe('failed');
    expect(r.failed).toMatch(/pg_dump/);
    expect(r.failed).toMatch(/permission denied/);
    expect(await s3.primary.listKeys('pgdr-primary', 'broken/')).toEqual([]);
    expect(await s3.secondary.listKeys('pgdr-secondary', 'broken/')).toEqual([]);
    expect(r.log).not.toContain('limited-pw-123');
  });
});

describe('backup: bad input is refused before anything is written', () => {
  const cases: [string, Record<string, string>, RegExp][] = [
    ['missing database-url', { 'database-url': '' }, /'database-url'/],
    ['unparsable database-url', { 'database-url': 'not a url' }, /'database-url'.*not a URL/],
    ['wrong scheme', { 'database-url': 'mysql://u:p@h/db' }, /'database-url'.*scheme "mysql"/],
    [
      'both recipients and passphrase',
      { passphrase: 'a long enough passphrase' },
      /Both 'age-recipients' and 'passphrase'/,
    ],
    [
      'neither recipients nor passphrase',
      { 'age-recipients': '' },
      /Neither 'age-recipients' nor 'passphrase'/,
    ],
    ['malformed recipient', { 'age-recipients': 'age1notakey' }, /'age-recipients'.*"age1notakey"/],
    ['missing primary bucket', { 'primary-bucket': '' }, /Missing 'primary-bucket'/],
    ['missing primary endpoint', { 'primary-endpoint': '' }, /Missing 'primary-endpoint'/],
    ['endpoint not a URL', { 'primary-endpoint': 'b2 please' }, /'primary-endpoint': "b2 please"/],
    ['unknown command', { command: 'explode' }, /'command': "explode". Expected one of: backup/],
    [
      'unknown compression',
      { compression: 'lz4' },
      /'compression': "lz4". Expected one of: zstd, gzip, none/,
    ],
    ['unknown row-counts', { 'row-counts': 'some' }, /'row-counts': "some"/],
    [
      'bucket that does not exist',
      { 'primary-bucket': 'no-such-bucket' },
      /'primary-bucket'.*does not exist/,
    ],
    [
      'ssh-host without known hosts',
      { 'ssh-host': 'bastion', 'ssh-user': 'u', 'ssh-private-key': 'not-a-real-key-value' },
      /Missing 'ssh-known-hosts'/,
    ],
    ['bad config glob', { 'config-paths': '../etc/*' }, /'config-paths'/],
  ];
  it.each(cases)('%s', async (_label, override, message) => {
    const before = [
      await s3.primary.listKeys('pgdr-primary'),
      await s3.secondary.listKeys('pgdr-secondary'),
    ];
    const r = await runPgDr(baseInputs(override), env());
    expect(r.failed).toMatch(message);
    expect(r.outputs.status).toBe('failed');
    expect([
      await s3.primary.listKeys('pgdr-primary'),
      await s3.secondary.listKeys('pgdr-secondary'),
    ]).toEqual(before);
    expect(r.failed).not.toContain(pg.password);
  });

  it('a wrong database password names the problem and uploads nothing', async () => {
    const url = pg.url('app').replace(/:[^:@/]+@/, ':wrong-password@');
    const r = await runPgDr(baseInputs({ 'database-url': url, prefix: 'wrongpw/' }), env());
    expect(r.failed).toMatch(
      /Cannot connect to postgres@127.0.0.1:\d+\/app: .*password authentication failed/,
    );
    expect(await s3.primary.listKeys('pgdr-primary', 'wrongpw/')).toEqual([]);
    expect(r.log).not.toContain('wrong-password');
  });
});
