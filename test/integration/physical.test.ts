import { createHash } from 'node:crypto';
import { chmod, chown, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest } from '../../src/manifest/schema.js';
import { pickSameMajor } from '../../src/postgres/clients.js';
import { ageKeyPair, createSeededDatabase, tableRowCounts, tempDir } from '../harness/fixtures.js';
import { freePort } from '../harness/ports.js';
import { type PgCluster, startPostgres } from '../harness/postgres.js';
import { destinationInputs, runPgDr } from '../harness/run.js';
import { PRIMARY_BUCKET, type S3Pair, SECONDARY_BUCKET, startS3Pair } from '../harness/s3.js';
import { requireBinary } from '../harness/tools.js';

/**
 * `mode: physical`: pg_basebackup of a running cluster under write load, through the same
 * pipeline as a dump, then docs/runbook.md's manual path ("Restore a physical backup by
 * hand", run as written) into a new data directory, started and compared with what the
 * writer committed before the backup's end LSN. A dedicated cluster: the test writes to it
 * throughout, creates tablespaces in it, and its initdb pg_hba allows replication from
 * 127.0.0.1 (scram), as a self-hosted server's usually does.
 */
const RUNBOOK = 'docs/runbook.md';

function runbookScript(markdown: string): string {
  const begin = markdown.indexOf('<!-- physical-runbook-test:begin');
  const end = markdown.indexOf('<!-- physical-runbook-test:end -->');
  if (begin < 0 || end < begin)
    throw new Error(`${RUNBOOK}: physical-runbook-test markers not found`);
  const blocks = [...markdown.slice(begin, end).matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map(
    (m) => m[1] ?? '',
  );
  if (blocks.length === 0) throw new Error(`${RUNBOOK}: no sh block between the markers`);
  return blocks.join('\n');
}

let source: PgCluster;
let s3: S3Pair;
let work: string;
let identity: string;
let recipient: string;
let keyFile: string;
let seedCounts: Record<string, number>;
/** Restored servers' data directories, stopped at the end. */
const restored: string[] = [];

const asPostgres = (file: string, args: string[]) =>
  process.getuid?.() === 0
    ? execa('runuser', ['-u', 'postgres', '--', file, ...args], { reject: false })
    : execa(file, args, { reject: false });

function inputs(extra: Record<string, string> = {}): Record<string, string> {
  return {
    command: 'backup',
    mode: 'physical',
    'database-url': source.url('app'),
    'age-recipients': recipient,
    ...destinationInputs(s3.primary, s3.secondary),
    ...extra,
  };
}

const env = () => ({ GITHUB_WORKSPACE: join(work, 'workspace') });

/** `0/2000028` → a number that orders as WAL positions do. */
function lsn(text: string): bigint {
  const [hi, lo] = text.split('/');
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

interface Tick {
  readonly n: number;
  /** The WAL insert position before the INSERT began: its commit record lies after it. */
  readonly before: bigint;
  /** …and after it committed: its commit record lies before it. */
  readonly after: bigint;
}

/** Inserts rows one by one (each its own transaction) until stopped, recording where each committed in the WAL. */
function startWriter(client: pg.Client) {
  const ticks: Tick[] = [];
  let stop = false;
  const lsnNow = async () =>
    lsn(
      (await client.query<{ l: string }>('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0]
        ?.l as string,
    );
  const running = (async () => {
    for (let n = 1; !stop; n++) {
      const before = await lsnNow();
      await client.query('INSERT INTO ticks (n) VALUES ($1)', [n]);
      ticks.push({ n, before, after: await lsnNow() });
    }
  })();
  return {
    ticks,
    async stop() {
      stop = true;
      await running;
    },
  };
}

beforeAll(async () => {
  for (const tool of ['age', 'zstd', 'aws', 'jq', 'sha256sum', 'tar']) requireBinary(tool);
  [source, s3] = await Promise.all([startPostgres({ name: 'physical' }), startS3Pair()]);
  seedCounts = await createSeededDatabase(source, 'app');
  await source.query('app', 'CREATE TABLE ticks (n integer PRIMARY KEY)');
  work = await tempDir('physical');
  // The postgres OS user reaches the tablespaces and the restored data directory under it.
  await chmod(work, 0o711);
  await mkdir(join(work, 'workspace'), { recursive: true });
  await writeFile(join(work, 'workspace', 'docker-compose.yml'), 'services: {}\n');
  ({ identity, recipient } = await ageKeyPair());
  keyFile = join(work, 'key.txt');
  await writeFile(keyFile, `${identity}\n`, { mode: 0o600 });
});

afterAll(async () => {
  for (const dir of restored)
    await asPostgres(join(source.binDir, 'pg_ctl'), ['-D', dir, '-m', 'immediate', '-w', 'stop']);
  await Promise.all([source?.stop(), s3?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

describe('backup mode physical', () => {
  let id: string;
  let manifest: ReturnType<typeof parseManifest>;
  let ticks: Tick[];

  /** The restored server at `port` holds every tick committed before the end LSN, no gap, and the seeded tables whole. */
  async function expectBackAsOfEnd(port: number, how: string): Promise<void> {
    const p = manifest.physical;
    if (!p) throw new Error('no physical facts in the manifest');
    const server = new pg.Client({
      host: '127.0.0.1',
      port,
      user: source.user,
      password: source.password,
      database: 'app',
    });
    await server.connect();
    try {
      const present = new Set(
        (await server.query<{ n: number }>('SELECT n FROM ticks ORDER BY n')).rows.map((r) => r.n),
      );
      const end = lsn(p.endLsn);
      const committedBeforeEnd = ticks.filter((t) => t.after <= end);
      expect(committedBeforeEnd.length).toBeGreaterThan(0);
      // Every row whose commit lies before the end LSN is there.
      expect(committedBeforeEnd.filter((t) => !present.has(t.n))).toEqual([]);
      // The writer committed one row at a time: what came back is a prefix, with no gap,
      // and nothing the writer did not commit.
      const max = Math.max(...present);
      expect(present.size).toBe(max);
      expect(max).toBeLessThanOrEqual(ticks.length);
      // Rows whose INSERT began after the end LSN can only be there when the WAL files the
      // backup fetched went on past its end (-X fetch copies whole segments); say how many.
      const afterEnd = ticks.filter((t) => t.before > end && present.has(t.n)).length;
      console.log(
        `physical restore (${how}): ${present.size} ticks back, ${committedBeforeEnd.length} committed before the end LSN, ${afterEnd} begun after it, of ${ticks.length}`,
      );
    } finally {
      await server.end();
    }
    // The rest of the database is the source's (nothing else was written to it).
    const restoredCounts = await tableRowCounts(
      { ...source, port, query: queryAt(port) } as PgCluster,
      'app',
    );
    const { 'public.ticks': _ticks, ...others } = restoredCounts;
    expect(others).toEqual(seedCounts);
  }

  const restoreInputs = (extra: Record<string, string>) => ({
    command: 'restore',
    'backup-id': id,
    'age-identity': identity,
    ...destinationInputs(s3.primary, s3.secondary),
    ...extra,
  });

  it('copies a running cluster under write load to both destinations, with its start and end LSN, timeline and backup_label', async () => {
    const client = new pg.Client({ connectionString: source.url('app') });
    await client.connect();
    const writer = startWriter(client);
    // The writer is running before the backup starts.
    while (writer.ticks.length < 50) await new Promise((r) => setTimeout(r, 10));
    const r = await runPgDr(inputs(), env()).finally(() => writer.stop());
    await client.end();
    ticks = writer.ticks;
    expect(r.failed, r.log).toBeUndefined();
    expect(r.outputs.status).toBe('ok');
    id = r.outputs['backup-id'] as string;

    const bodies = await Promise.all([
      s3.primary.getObject(PRIMARY_BUCKET, `disaster_recovery/${id}/manifest.json`),
      s3.secondary.getObject(SECONDARY_BUCKET, `disaster_recovery/${id}/manifest.json`),
    ]);
    expect(bodies[0].equals(bodies[1])).toBe(true);
    manifest = parseManifest(bodies[0].toString('utf8'));
    expect(manifest.mode).toBe('physical');
    expect(manifest.objects.map((o) => [o.kind, o.name])).toEqual([
      ['base', 'base.tar.zst.age'],
      ['config', 'config.tar.gz.age'],
      ['globals', 'globals.sql.age'],
    ]);
    const p = manifest.physical;
    if (!p) throw new Error('no physical facts in the manifest');
    expect(p.timeline).toBe(1);
    expect(lsn(p.endLsn)).toBeGreaterThan(lsn(p.startLsn));
    expect(p.backupLabel).toContain(`START WAL LOCATION: ${p.startLsn}`);
    expect(p.backupLabel).toContain(`LABEL: pg-dr ${id}`);
    expect(p.tablespaces.map((t) => t.name)).toEqual(['pg_default', 'pg_global']);
    expect(p.pgBasebackupVersion).toMatch(/^15\./);
    // No snapshot matches a physical copy: the counts are planner estimates, said so.
    expect(manifest.database.rowCounts.method).toBe('estimate');
    // The writer wrote while the backup ran: rows committed between its start and end LSN.
    const during = ticks.filter(
      (t) => t.before > lsn(p.startLsn) && t.after < lsn(p.endLsn),
    ).length;
    expect(during).toBeGreaterThan(0);
    // …and after it, so the end is a cut through a stream of commits.
    expect(ticks.some((t) => t.before > lsn(p.endLsn))).toBe(true);
    // Both destinations hold the same bytes.
    const key = `disaster_recovery/${id}/base.tar.zst.age`;
    const [a, b] = await Promise.all([
      s3.primary.getObject(PRIMARY_BUCKET, key),
      s3.secondary.getObject(SECONDARY_BUCKET, key),
    ]);
    expect(a.equals(b)).toBe(true);
    expect(a.length).toBe(manifest.objects[0]?.encrypted.bytes);
  });

  it("comes back by the runbook's manual path: every row committed before the end LSN, no gap, the seeded tables whole", async () => {
    const script = runbookScript(await readFile(RUNBOOK, 'utf8'));
    const p = manifest.physical;
    if (!p) throw new Error('no physical facts in the manifest');
    const operator = join(work, 'operator');
    await mkdir(operator, { recursive: true });
    // The data directory's parent must be the postgres user's to write in (runuser mkdir).
    const parent = join(work, 'restored');
    await mkdir(parent, { recursive: true });
    if (process.getuid?.() === 0) {
      const uid = Number((await execa('id', ['-u', 'postgres'])).stdout);
      const gid = Number((await execa('id', ['-g', 'postgres'])).stdout);
      await chown(parent, uid, gid);
    }
    const dataDir = join(parent, 'data');
    restored.push(dataDir);
    const port = await freePort();
    const awsConfig = join(operator, 'aws.conf');
    // B1, as the runbook's Path B writes it (runbook.test.ts runs B1 itself).
    await writeFile(
      awsConfig,
      `[default]\nregion = ${s3.primary.region}\nrequest_checksum_calculation = when_required\nresponse_checksum_validation = when_required\ns3 =\n    addressing_style = path\n`,
    );
    const run = await execa('bash', ['-c', `set -euo pipefail\n${script}`], {
      cwd: operator,
      reject: false,
      stdin: 'ignore',
      timeout: 180_000,
      extendEnv: false,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        LANG: 'C.UTF-8',
        AWS_CONFIG_FILE: awsConfig,
        AWS_ACCESS_KEY_ID: s3.primary.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.primary.secretAccessKey,
        ENDPOINT: s3.primary.endpoint,
        REGION: s3.primary.region,
        BUCKET: PRIMARY_BUCKET,
        PREFIX: 'disaster_recovery/',
        AGE_KEY_FILE: keyFile,
        ALLOWED_SIGNERS: join(work, 'no-allowed-signers'),
        ID: id,
        PG_BIN: source.binDir,
        DATA_DIR: dataDir,
        PORT: String(port),
        AS_PG: process.getuid?.() === 0 ? 'runuser -u postgres --' : '',
        PGPASSWORD: source.password,
      },
    });
    expect(run.exitCode, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toContain('base.tar.zst.age: OK');
    expect(run.stdout).toContain('backup successfully verified');

    await expectBackAsOfEnd(port, 'runbook');
  });

  it('is restored by pg-dr into a data directory, checked by pg_verifybackup, started on the port asked: every row committed before the end LSN, the seeded tables whole', async () => {
    const parent = join(work, 'pgdr-restored');
    await mkdir(parent, { recursive: true });
    const dataDir = join(parent, 'data');
    restored.push(dataDir);
    const port = await freePort();
    const configDir = join(work, 'pgdr-restored-config');
    const r = await runPgDr(
      restoreInputs({
        'data-dir': dataDir,
        start: 'true',
        port: String(port),
        'config-dir': configDir,
      }),
    );
    expect(r.failed, r.log).toBeUndefined();
    expect(r.outputs.status).toBe('ok');
    expect(r.outputs['backup-id']).toBe(id);
    const report = JSON.parse(r.outputs.report as string);
    expect(report.physical.verified).toMatchObject({ ok: true, walParsed: true });
    expect(report.physical.started, JSON.stringify(report.physical.started)).toMatchObject({
      port,
      state: 'in production',
    });
    expect(report.physical.files).toBeGreaterThan(900);
    expect(await readFile(join(configDir, 'docker-compose.yml'), 'utf8')).toBe('services: {}\n');
    expect(r.log).toContain('pg_verifybackup: every file matches');
    expect(await readFile(join(dataDir, 'postgresql.auto.conf'), 'utf8')).toMatch(
      /^archive_mode = 'off'$/m,
    );
    // Nothing of the staging folder is left beside it.
    expect((await readdir(parent)).filter((f) => f !== 'data')).toEqual([]);
    await expectBackAsOfEnd(port, 'pg-dr restore');
  });

  it('into a non-empty data directory only with force, keeping the old one; never under a running server', async () => {
    const parent = join(work, 'pgdr-force');
    const dataDir = join(parent, 'data');
    await mkdir(dataDir, { recursive: true });
    await writeFile(join(dataDir, 'precious.txt'), 'keep me\n');
    const refused = await runPgDr(restoreInputs({ 'data-dir': dataDir }));
    expect(refused.failed).toMatch(
      /'data-dir' .* is not empty \(1 entries, e\.g\. precious\.txt\)\. .*set force: true/,
    );
    expect(await readdir(parent)).toEqual(['data']);
    const forced = await runPgDr(restoreInputs({ 'data-dir': dataDir, force: 'true' }));
    expect(forced.failed, forced.log).toBeUndefined();
    const report = JSON.parse(forced.outputs.report as string);
    expect(report.physical.previous).toMatch(/\/data_before_\d{8}T\d{6}Z$/);
    expect(await readFile(join(report.physical.previous, 'precious.txt'), 'utf8')).toBe(
      'keep me\n',
    );
    expect(await readFile(join(dataDir, 'PG_VERSION'), 'utf8')).toBe('15\n');
    // The source's own data directory, with its server running: refused even with force.
    const running = await runPgDr(restoreInputs({ 'data-dir': source.dataDir, force: 'true' }));
    expect(running.failed).toMatch(
      /A server is running on 'data-dir' .*postmaster\.pid: process \d+/,
    );
  });

  it('refuses a stored base backup with one byte changed at both destinations: nothing left, the data directory as it was', async () => {
    const key = `disaster_recovery/${id}/base.tar.zst.age`;
    const originals = await Promise.all([
      s3.primary.getObject(PRIMARY_BUCKET, key),
      s3.secondary.getObject(SECONDARY_BUCKET, key),
    ]);
    const flip = (b: Buffer, at: number) => {
      const c = Buffer.from(b);
      c[at] = (c[at] as number) ^ 0x01;
      return c;
    };
    const at = Math.floor((originals[0]?.length ?? 0) * 0.7);
    await s3.primary.putObject(PRIMARY_BUCKET, key, flip(originals[0] as Buffer, at));
    await s3.secondary.putObject(SECONDARY_BUCKET, key, flip(originals[1] as Buffer, at));
    const parent = join(work, 'pgdr-corrupt');
    const dataDir = join(parent, 'data');
    await mkdir(dataDir, { recursive: true });
    try {
      const r = await runPgDr(restoreInputs({ 'data-dir': dataDir }));
      expect(r.outputs.status).toBe('failed');
      const report = JSON.parse(r.outputs.report as string);
      expect(report.attempts.map((a: { ok: boolean }) => a.ok)).toEqual([false, false]);
      expect(report.attempts[0].error).toMatch(/base\.tar\.zst\.age/);
      expect(await readdir(parent)).toEqual(['data']);
      expect(await readdir(dataDir)).toEqual([]);
    } finally {
      await s3.primary.putObject(PRIMARY_BUCKET, key, originals[0] as Buffer);
      await s3.secondary.putObject(SECONDARY_BUCKET, key, originals[1] as Buffer);
    }
  });

  it('is listed as physical', async () => {
    const r = await runPgDr({ command: 'list', ...destinationInputs(s3.primary, s3.secondary) });
    expect(r.failed).toBeUndefined();
    const b = JSON.parse(r.outputs.report as string).backups.find(
      (x: { id: string }) => x.id === id,
    );
    expect(b.kind).toBe('physical');
    const header = r.tables[0]?.header ?? [];
    expect(r.tables[0]?.rows.find((x) => x[0] === id)?.[header.indexOf('kind')]).toBe('physical');
  });

  it('is refused by restore without data-dir, naming it; verify checksum passes', async () => {
    const target = await source.createDatabase('restore_target');
    const restore = await runPgDr({
      command: 'restore',
      'backup-id': id,
      'database-url': target,
      'age-identity': identity,
      ...destinationInputs(s3.primary, s3.secondary),
    });
    expect(restore.failed).toContain(
      `Backup ${id} is a physical backup (pg_basebackup of the whole cluster): it is restored into a data directory, not by pg_restore into 'database-url'. Set 'data-dir'`,
    );
    expect(restore.log).not.toMatch(/pg_restore:/);
    const ok = await runPgDr({
      command: 'verify',
      'backup-id': id,
      'verify-level': 'checksum',
      ...destinationInputs(s3.primary, s3.secondary),
    });
    expect(ok.failed).toBeUndefined();
    expect(ok.outputs.status).toBe('ok');
  });

  it('verifies at level restore without a drill server: pg_verifybackup, a throwaway copy started, every table read, amcheck on heaps and indexes', async () => {
    const r = await runPgDr({
      command: 'verify',
      'backup-id': id,
      'verify-level': 'restore',
      'age-identity': identity,
      ...destinationInputs(s3.primary, s3.secondary),
    });
    expect(r.failed, r.log).toBeUndefined();
    const report = JSON.parse(r.outputs.report as string);
    const [b2, r2] = report.verifications;
    expect(b2.archive).toMatchObject({ ok: true, error: null });
    expect(b2.archive.entries).toBeGreaterThan(900);
    expect(b2.drill.ok).toBe(true);
    expect(b2.drill.tables).toBe(Object.keys(seedCounts).length + 1);
    expect(b2.drill.proven).toEqual(
      expect.arrayContaining([
        'pg_verifybackup passed',
        expect.stringMatching(/^amcheck: \d+ heaps and [1-9]\d* B-tree indexes checked/),
        'row counts not compared (a physical backup records planner estimates)',
      ]),
    );
    // One drill per backup; the other destination is decrypted and checked by pg_verifybackup.
    expect(r2.drill).toBeNull();
    expect(r2.archive.ok).toBe(true);
    // Nothing is left in the temporary folder.
    expect(r.log).not.toMatch(/could not be removed|did not stop/);
  });

  it('refuses a backup whose files were changed inside a well-formed archive: pg_verifybackup, on restore and on verify', async () => {
    const tampered = await tamperedCopy();
    const dataDir = join(work, 'pgdr-tampered', 'data');
    await mkdir(join(work, 'pgdr-tampered'));
    const restore = await runPgDr({
      ...restoreInputs({ 'data-dir': dataDir }),
      prefix: tampered,
    });
    expect(restore.outputs.status).toBe('failed');
    expect(restore.failed).toMatch(/pg_verifybackup refused the restored files: .*PG_VERSION/);
    await expect(readdir(join(work, 'pgdr-tampered'))).resolves.toEqual([]);
    const v = await runPgDr({
      command: 'verify',
      'backup-id': id,
      prefix: tampered,
      'verify-level': 'decrypt',
      'age-identity': identity,
      ...destinationInputs(s3.primary, s3.secondary),
    });
    expect(v.outputs.status).toBe('failed');
    expect(v.failed ?? v.log).toMatch(/pg_verifybackup refused the files: .*PG_VERSION/);
  });

  /**
   * The backup copied under another prefix with PG_VERSION changed inside its tar, then
   * re-compressed, re-encrypted to the same key and described by a rewritten manifest: every
   * checksum pg-dr keeps matches; only pg_verifybackup (backup_manifest) can tell.
   */
  async function tamperedCopy(): Promise<string> {
    const prefix = 'tampered/';
    const dir = join(work, 'tamper');
    await mkdir(join(dir, 'tar'), { recursive: true });
    const from = `disaster_recovery/${id}/`;
    const stored = await s3.primary.getObject(PRIMARY_BUCKET, `${from}base.tar.zst.age`);
    const plain = Buffer.from(
      (await execa('age', ['-d', '-i', keyFile], { input: stored, encoding: 'buffer' })).stdout,
    );
    const tar = Buffer.from(
      (await execa('zstd', ['-dc'], { input: plain, encoding: 'buffer' })).stdout,
    );
    await execa('tar', ['-x', '-C', join(dir, 'tar')], { input: tar });
    await writeFile(join(dir, 'tar', 'PG_VERSION'), '16\n');
    const retar = Buffer.from(
      (await execa('tar', ['-c', '-C', join(dir, 'tar'), '.'], { encoding: 'buffer' })).stdout,
    );
    const zst = Buffer.from(
      (await execa('zstd', ['-c', '-3'], { input: retar, encoding: 'buffer' })).stdout,
    );
    const enc = Buffer.from(
      (await execa('age', ['-r', recipient], { input: zst, encoding: 'buffer' })).stdout,
    );
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const m = structuredClone(manifest);
    const base = m.objects.find((o) => o.kind === 'base');
    if (!base) throw new Error('no base object');
    base.plaintext = { bytes: zst.length, sha256: sha(zst) };
    base.encrypted = { bytes: enc.length, sha256: sha(enc) };
    m.database.archiveBytes = retar.length;
    for (const d of m.destinations) d.etags = {};
    const body = `${JSON.stringify(m, null, 2)}\n`;
    for (const [client, bucket] of [
      [s3.primary, PRIMARY_BUCKET],
      [s3.secondary, SECONDARY_BUCKET],
    ] as const) {
      for (const o of m.objects) {
        const bytes = o.kind === 'base' ? enc : await client.getObject(bucket, `${from}${o.name}`);
        await client.putObject(bucket, `${prefix}${id}/${o.name}`, bytes);
      }
      await client.putObject(bucket, `${prefix}${id}/manifest.json`, Buffer.from(body));
    }
    return prefix;
  }

  it('fails verify checksum when one byte of the stored base backup changes', async () => {
    const key = `disaster_recovery/${id}/base.tar.zst.age`;
    const body = await s3.secondary.getObject(SECONDARY_BUCKET, key);
    const changed = Buffer.from(body);
    const at = Math.floor(changed.length / 2);
    changed[at] = (changed[at] as number) ^ 0x01;
    await s3.secondary.putObject(SECONDARY_BUCKET, key, changed);
    const v = await runPgDr({
      command: 'verify',
      'backup-id': id,
      'verify-level': 'checksum',
      ...destinationInputs(s3.primary, s3.secondary),
    });
    expect(v.outputs.status).toBe('failed');
    const report = JSON.parse(v.outputs.report as string);
    const at2 = report.verifications.find((x: { destination: string }) => x.destination === 'r2');
    expect(at2.ok).toBe(false);
    expect(at2.error).toMatch(/base\.tar\.zst\.age/);
    expect(
      report.verifications.find((x: { destination: string }) => x.destination === 'b2').ok,
    ).toBe(true);
  });
});

describe('backup mode physical with compression gzip and none', () => {
  for (const compression of ['gzip', 'none'] as const) {
    it(`${compression}: the tar (pg_basebackup's own gzip, or none) still yields its LSNs, and holds backup_manifest`, async () => {
      const r = await runPgDr(inputs({ compression, prefix: `physical-${compression}/` }), env());
      expect(r.failed, r.log).toBeUndefined();
      const m = parseManifest(r.outputs.manifest as string);
      const name = compression === 'gzip' ? 'base.tar.gz.age' : 'base.tar.raw.age';
      expect(m.objects[0]).toMatchObject({ kind: 'base', name });
      expect(m.database.compression).toBe(compression);
      expect(m.physical?.backupLabel).toContain(`LABEL: pg-dr ${r.outputs['backup-id']}`);
      const stored = await s3.primary.getObject(
        PRIMARY_BUCKET,
        `physical-${compression}/${r.outputs['backup-id']}/${name}`,
      );
      const age = await execa('age', ['-d', '-i', keyFile], { input: stored, encoding: 'buffer' });
      const listing = await execa('tar', compression === 'gzip' ? ['-tz'] : ['-t'], {
        input: age.stdout,
      });
      expect(listing.stdout.split('\n')).toEqual(
        expect.arrayContaining(['backup_label', 'backup_manifest', 'PG_VERSION']),
      );
      if (compression === 'none') expect(m.database.archiveBytes).toBe(age.stdout.length);
    });
  }
});

describe('backup mode physical refuses', () => {
  it('a cluster with tablespaces of its own, naming them, before anything is uploaded', async () => {
    const dirs = [join(work, 'ts_a'), join(work, 'ts_b')];
    for (const d of dirs) {
      await mkdir(d, { recursive: true });
      if (process.getuid?.() === 0) await execa('chown', ['postgres:postgres', d]);
    }
    await source.query('postgres', `CREATE TABLESPACE ts_a LOCATION '${dirs[0]}'`);
    await source.query('postgres', `CREATE TABLESPACE ts_b LOCATION '${dirs[1]}'`);
    try {
      const before = await Promise.all([
        s3.primary.listKeys(PRIMARY_BUCKET),
        s3.secondary.listKeys(SECONDARY_BUCKET),
      ]);
      const r = await runPgDr(inputs(), env());
      expect(r.failed).toContain(`this one has 2: "ts_a" (${dirs[0]}), "ts_b" (${dirs[1]})`);
      expect(r.failed).toMatch(/mode: logical/);
      expect(
        await Promise.all([
          s3.primary.listKeys(PRIMARY_BUCKET),
          s3.secondary.listKeys(SECONDARY_BUCKET),
        ]),
      ).toEqual(before);
    } finally {
      await source.query('postgres', 'DROP TABLESPACE ts_a');
      await source.query('postgres', 'DROP TABLESPACE ts_b');
    }
  });

  it('a role without REPLICATION, naming it and the fix, before anything is uploaded', async () => {
    await source.query(
      'postgres',
      `CREATE ROLE plain_backup LOGIN PASSWORD 'plain-backup-pw'; GRANT CONNECT ON DATABASE app TO plain_backup;`,
    );
    const url = new URL(source.url('app'));
    url.username = 'plain_backup';
    url.password = 'plain-backup-pw';
    const before = await Promise.all([
      s3.primary.listKeys(PRIMARY_BUCKET),
      s3.secondary.listKeys(SECONDARY_BUCKET),
    ]);
    const r = await runPgDr(inputs({ 'database-url': url.toString() }), env());
    expect(r.failed).toContain(
      'role "plain_backup" has neither REPLICATION nor SUPERUSER. Fix: ALTER ROLE "plain_backup" REPLICATION',
    );
    expect(
      await Promise.all([
        s3.primary.listKeys(PRIMARY_BUCKET),
        s3.secondary.listKeys(SECONDARY_BUCKET),
      ]),
    ).toEqual(before);
  });

  it("a server whose pg_hba.conf has no replication line: pg_basebackup's own words, and nothing left behind", async () => {
    const hba = join(source.dataDir, 'pg_hba.conf');
    const original = await readFile(hba, 'utf8');
    const without = original
      .split('\n')
      .filter((l) => !/^\s*(host|local)\s+replication\b/.test(l))
      .join('\n');
    expect(without).not.toBe(original);
    await writeFile(hba, without);
    await source.query('postgres', 'SELECT pg_reload_conf()');
    try {
      const before = await Promise.all([
        s3.primary.listKeys(PRIMARY_BUCKET),
        s3.secondary.listKeys(SECONDARY_BUCKET),
      ]);
      const r = await runPgDr(inputs(), env());
      expect(r.failed).toMatch(
        /pg_basebackup exited with code 1: .*no pg_hba\.conf entry for replication connection from host "127\.0\.0\.1", user "postgres"/,
      );
      expect(r.failed).not.toContain(source.password);
      // What was stored before pg_basebackup failed (config, globals) is removed again.
      expect(
        await Promise.all([
          s3.primary.listKeys(PRIMARY_BUCKET),
          s3.secondary.listKeys(SECONDARY_BUCKET),
        ]),
      ).toEqual(before);
    } finally {
      await writeFile(hba, original);
      await source.query('postgres', 'SELECT pg_reload_conf()');
    }
  });

  it('pg_basebackup of another major than the server, naming both', async () => {
    // The real clients on this machine, asked for a server of the next major.
    const major = Number(/^(\d+)/.exec(manifestMajor())?.[1]) + 1;
    await expect(
      pickSameMajor(
        'pg_basebackup',
        major,
        `the server runs PostgreSQL ${major}.2`,
        { binDir: '', install: false },
        process.env,
        () => undefined,
      ),
    ).rejects.toThrow(
      new RegExp(
        `No pg_basebackup of major ${major}: the server runs PostgreSQL ${major}\\.2 .*found 15\\.\\d+ \\(`,
      ),
    );
  });
});

function manifestMajor(): string {
  return source.binDir.match(/postgresql\/(\d+)\//)?.[1] ?? '15';
}

/** The harness's `query`, at another port (the restored server), for tableRowCounts. */
function queryAt(port: number) {
  return async <T>(database: string, sql: string, params?: unknown[]): Promise<T[]> => {
    const c = new pg.Client({
      host: '127.0.0.1',
      port,
      user: source.user,
      password: source.password,
      database,
    });
    await c.connect();
    try {
      return (await c.query(sql, params)).rows as T[];
    } finally {
      await c.end();
    }
  };
}
