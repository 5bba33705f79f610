import { appendFile, chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest } from '../../src/manifest/schema.js';
import { parseLsn, segmentStart } from '../../src/postgres/lsn.js';
import { parseWalRunRecord, type WalRunRecord } from '../../src/wal/record.js';
import { type HttpFaultProxy, startHttpFaultProxy } from '../harness/faults.js';
import { ageKeyPair, tempDir } from '../harness/fixtures.js';
import { REPO_ROOT } from '../harness/node.js';
import { freePort } from '../harness/ports.js';
import { type PgCluster, startPostgres } from '../harness/postgres.js';
import { destinationInputs, runPgDr } from '../harness/run.js';
import { PRIMARY_BUCKET, type S3Pair, SECONDARY_BUCKET, startS3Pair } from '../harness/s3.js';
import { ed25519KeyPair } from '../harness/ssh-keys.js';
import { requireBinary } from '../harness/tools.js';

/**
 * The `wal` command against a real cluster (wal_level replica, pg_hba's replication line
 * from initdb) and a real pair of S3 servers: what it ships is compared byte for byte with
 * the server's own pg_wal files, runs are chained without gap or overlap, a run that fails
 * before its record advances nothing, and `wal-get` (run as PostgreSQL's restore_command
 * would run it) fetches, refuses and exits as restore_command needs.
 */
let pgc: PgCluster;
let s3: S3Pair;
let work: string;
let identity: string;
let recipient: string;
let keyFile: string;
const PREFIX = 'dr/';
const SLOT = 'pg_dr_test';

function inputs(extra: Record<string, string> = {}): Record<string, string> {
  return {
    command: 'wal',
    prefix: PREFIX,
    'database-url': pgc.url('app'),
    'age-recipients': recipient,
    'wal-slot': SLOT,
    ...destinationInputs(s3.primary, s3.secondary),
    ...extra,
  };
}

const env = () => ({ GITHUB_WORKSPACE: work });

async function slotRestart(): Promise<string | null> {
  const [row] = await pgc.query<{ r: string | null }>(
    'postgres',
    'SELECT restart_lsn::text AS r FROM pg_replication_slots WHERE slot_name = $1',
    [SLOT],
  );
  return row === undefined ? null : row.r;
}

/** Every run record at a destination, oldest first. */
async function records(bucket = PRIMARY_BUCKET): Promise<WalRunRecord[]> {
  const server = bucket === PRIMARY_BUCKET ? s3.primary : s3.secondary;
  const keys = (await server.listKeys(bucket, `${PREFIX}wal/`)).filter((k) =>
    /\/runs\/[^/]+\.json$/.test(k),
  );
  const out: WalRunRecord[] = [];
  for (const k of keys)
    out.push(parseWalRunRecord((await server.getObject(bucket, k)).toString('utf8')));
  return out.sort((a, b) => (a.runId < b.runId ? -1 : 1));
}

/** A stored WAL object decrypted and decompressed with the standard age and zstd CLIs. */
async function plainWal(name: string, timeline = 1, bucket = PRIMARY_BUCKET): Promise<Buffer> {
  const server = bucket === PRIMARY_BUCKET ? s3.primary : s3.secondary;
  const tl = timeline.toString(16).toUpperCase().padStart(8, '0');
  const stored = await server.getObject(bucket, `${PREFIX}wal/${tl}/${name}`);
  const r = await execa('sh', ['-c', `age -d -i "${keyFile}" | zstd -d -q`], {
    input: stored,
    encoding: 'buffer',
  });
  return Buffer.from(r.stdout);
}

/** The server's own copy of a segment, from its data directory. */
async function pgWalFile(name: string): Promise<Buffer | null> {
  try {
    return await readFile(join(pgc.dataDir, 'pg_wal', name));
  } catch {
    return null;
  }
}

/** Writes about `mb` MB of WAL (rows of incompressible text). */
async function writeWal(mb: number): Promise<void> {
  await pgc.query(
    'app',
    `INSERT INTO filler SELECT g, md5(g::text) || repeat(md5(random()::text), 30)
       FROM generate_series(1, ${Math.ceil((mb * 1024 * 1024) / 1100)}) g`,
  );
}

/** Inserts rows one by one until stopped. */
function startWriter() {
  const client = new pg.Client({ connectionString: pgc.url('app') });
  let stop = false;
  let n = 0;
  const running = (async () => {
    await client.connect();
    while (!stop) await client.query('INSERT INTO ticks (n) VALUES ($1)', [++n]);
    await client.end();
  })();
  return {
    async stop() {
      stop = true;
      await running;
      return n;
    },
  };
}

/** `pg-dr wal-get <file> <path>` as PostgreSQL's restore_command runs it: a process, settings in PG_DR_*. */
async function walGet(file: string, path: string, extra: Record<string, string> = {}) {
  const settings: Record<string, string> = {
    prefix: PREFIX,
    'age-identity': identity,
    ...destinationInputs(s3.primary, s3.secondary),
    ...extra,
  };
  const childEnv: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: work };
  for (const [k, v] of Object.entries(settings))
    childEnv[`PG_DR_${k.toUpperCase().replaceAll('-', '_')}`] = v;
  return execa(
    join(REPO_ROOT, 'node_modules', '.bin', 'tsx'),
    [join(REPO_ROOT, 'src/cli.ts'), 'wal-get', file, path],
    {
      env: childEnv,
      extendEnv: false,
      reject: false,
      cwd: work,
    },
  );
}

beforeAll(async () => {
  for (const tool of ['age', 'zstd']) requireBinary(tool);
  [pgc, s3] = await Promise.all([startPostgres({ name: 'wal' }), startS3Pair()]);
  await pgc.createDatabase('app');
  await pgc.query('app', 'CREATE TABLE filler (n integer, t text); CREATE TABLE ticks (n integer)');
  work = await tempDir('wal');
  ({ identity, recipient } = await ageKeyPair());
  keyFile = join(work, 'key.txt');
  await writeFile(keyFile, `${identity}\n`, { mode: 0o600 });
});

/** The server recovered from the archive (promoted to timeline 2), once a test started it. */
let recovered: { port: number; data: string; stop: () => Promise<unknown> } | null = null;

afterAll(async () => {
  await recovered?.stop();
  await Promise.all([pgc?.stop(), s3?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

describe('wal', () => {
  let second: WalRunRecord;
  /** The physical base backup the last tests take. */
  let baseId: string;

  it('refuses a missing slot without create-slot, naming the slot and the fix', async () => {
    const r = await runPgDr(inputs(), env());
    expect(r.failed).toContain(`"${SLOT}" does not exist`);
    expect(r.failed).toContain('create-slot: true');
    expect(await slotRestart()).toBeNull();
  });

  it('creates its slot, then ships every segment written under a background writer, byte-identical to pg_wal', async () => {
    const first = await runPgDr(inputs({ 'create-slot': 'true' }), env());
    expect(first.failed, first.log).toBeUndefined();
    const created = await slotRestart();
    expect(created).not.toBeNull();
    await writeWal(40);
    const writer = startWriter();
    const r = await runPgDr(inputs(), env()).finally(() => writer.stop());
    expect(r.failed, r.log).toBeUndefined();
    expect(r.outputs.status).toBe('ok');
    const all = await records();
    expect(all).toHaveLength(2);
    second = all[1] as WalRunRecord;
    const segments = second.objects.filter((o) => o.kind === 'segment');
    expect(segments.length).toBeGreaterThanOrEqual(2);
    // Contiguous, segment after segment, from the start to the end, then the partial.
    let at = parseLsn(second.startLsn);
    for (const o of second.objects) {
      expect(parseLsn(o.startLsn as string)).toBe(at);
      at = parseLsn(o.endLsn as string);
    }
    expect(at).toBe(parseLsn(second.endLsn));
    let compared = 0;
    for (const o of second.objects) {
      const plain = await plainWal(o.name);
      expect(plain.length).toBe(o.wal.bytes);
      const server = await pgWalFile(o.walFile);
      if (server === null) continue;
      if (o.kind === 'segment') expect(plain.equals(server)).toBe(true);
      else expect(plain.equals(server.subarray(0, plain.length))).toBe(true);
      compared++;
    }
    expect(compared).toBeGreaterThanOrEqual(3);
    // Both destinations hold every object and the record.
    expect((await records(SECONDARY_BUCKET)).map((x) => x.runId)).toEqual(all.map((x) => x.runId));
    // The slot was advanced to the start of the partial segment, no further.
    expect(second.confirmLsn).toBe(
      `${(segmentStart(parseLsn(second.endLsn), second.segmentBytes) >> 32n).toString(16).toUpperCase()}/${(segmentStart(parseLsn(second.endLsn), second.segmentBytes) & 0xffffffffn).toString(16).toUpperCase()}`,
    );
    expect(await slotRestart()).toBe(second.confirmLsn);
  });

  it('the next run continues exactly where the last ended: the partial segment again, whole', async () => {
    await writeWal(3);
    const r = await runPgDr(inputs(), env());
    expect(r.failed, r.log).toBeUndefined();
    const third = (await records()).at(-1) as WalRunRecord;
    expect(third.startLsn).toBe(second.confirmLsn);
    const partialOfSecond = second.objects.find((o) => o.kind === 'partial');
    expect(third.objects[0]?.walFile).toBe(partialOfSecond?.walFile);
    // The earlier partial's bytes are the start of the re-sent segment.
    const before = await plainWal(partialOfSecond?.name as string);
    const again = await plainWal(third.objects[0]?.name as string);
    expect(again.subarray(0, before.length).equals(before)).toBe(true);
    expect(again.length).toBeGreaterThan(before.length);
    second = third;
  });

  it('a run whose record cannot be stored advances nothing, and the next run ships the same WAL', async () => {
    const proxies: HttpFaultProxy[] = await Promise.all([
      startHttpFaultProxy({ target: { port: s3.primary.port } }),
      startHttpFaultProxy({ target: { port: s3.secondary.port } }),
    ]);
    try {
      await writeWal(20);
      const before = await slotRestart();
      for (const p of proxies) p.failRequests({ status: 403, match: /\/runs\// });
      const through = {
        ...destinationInputs(
          { ...s3.primary, endpoint: (proxies[0] as HttpFaultProxy).endpoint },
          { ...s3.secondary, endpoint: (proxies[1] as HttpFaultProxy).endpoint },
        ),
      };
      const failed = await runPgDr(inputs(through), env());
      expect(failed.failed).toContain('the slot was not advanced');
      expect(await slotRestart()).toBe(before);
      expect((await records()).at(-1)?.runId).toBe(second.runId);
      // Mid-upload: every WAL object refused at both destinations, the run stops there.
      for (const p of proxies) {
        p.clearFailures();
        p.failRequests({ status: 403, match: /\/wal\/00000001\/0000/ });
      }
      const cut = await runPgDr(inputs(through), env());
      expect(cut.failed).toContain('could not be stored anywhere');
      expect(await slotRestart()).toBe(before);
      expect((await records()).at(-1)?.runId).toBe(second.runId);
      for (const p of proxies) p.clearFailures();
      const r = await runPgDr(inputs(through), env());
      expect(r.failed, r.log).toBeUndefined();
      const next = (await records()).at(-1) as WalRunRecord;
      expect(next.startLsn).toBe(second.confirmLsn);
      expect(next.objects.filter((o) => o.kind === 'segment').length).toBeGreaterThanOrEqual(1);
      expect(await slotRestart()).toBe(next.confirmLsn);
      second = next;
    } finally {
      await Promise.all(proxies.map((p) => p.stop()));
    }
  });

  it('wal-get fetches a segment byte-identical, pads a partial, refuses a tampered object and exits 1 quietly for a missing file', async () => {
    const seg = second.objects.find((o) => o.kind === 'segment');
    const part = second.objects.find((o) => o.kind === 'partial');
    if (!seg || !part) throw new Error('the last run shipped no segment and partial');
    const out = join(work, 'RECOVERYXLOG');
    const got = await walGet(seg.walFile, out);
    expect(got.exitCode, String(got.stderr)).toBe(0);
    expect((await readFile(out)).equals(await plainWal(seg.name))).toBe(true);
    const server = await pgWalFile(seg.walFile);
    if (server) expect((await readFile(out)).equals(server)).toBe(true);

    const gotPartial = await walGet(part.walFile, out);
    expect(gotPartial.exitCode, String(gotPartial.stderr)).toBe(0);
    const padded = await readFile(out);
    expect(padded.length).toBe(second.segmentBytes);
    expect(padded.subarray(0, part.wal.bytes).equals(await plainWal(part.name))).toBe(true);
    expect(padded.subarray(part.wal.bytes).every((b) => b === 0)).toBe(true);

    const missing = await walGet('0000000100000FFF000000FF', join(work, 'none'));
    expect(missing.exitCode).toBe(1);
    expect(String(missing.stderr).trim().split('\n')).toHaveLength(1);
    expect(String(missing.stderr)).toContain('not in the WAL archive');

    // One byte changed at the primary: the secondary's good copy is used.
    const key = `${PREFIX}wal/00000001/${seg.name}`;
    const good = await s3.primary.getObject(PRIMARY_BUCKET, key);
    const bad = Buffer.from(good);
    bad[bad.length - 10] = (bad[bad.length - 10] as number) ^ 1;
    await s3.primary.putObject(PRIMARY_BUCKET, key, bad);
    const fallback = await walGet(seg.walFile, out);
    expect(fallback.exitCode, String(fallback.stderr)).toBe(0);
    expect((await readFile(out)).equals(await plainWal(seg.name, 1, SECONDARY_BUCKET))).toBe(true);
    // …and at both: refused, with an exit status that stops recovery (above 125).
    await s3.secondary.putObject(SECONDARY_BUCKET, key, bad);
    await rm(out, { force: true });
    const refused = await walGet(seg.walFile, out);
    expect(refused.exitCode).toBe(126);
    expect(String(refused.stderr)).toContain('matches no trusted record');
    await expect(readFile(out)).rejects.toThrow();
    await s3.primary.putObject(PRIMARY_BUCKET, key, good);
    await s3.secondary.putObject(SECONDARY_BUCKET, key, good);
  });

  it('one destination failing: stored at the other, degraded (the step fails unless fail-on-degraded: false), the slot advanced', async () => {
    const proxy = await startHttpFaultProxy({ target: { port: s3.secondary.port } });
    try {
      await writeWal(5);
      proxy.failRequests({ status: 403, match: /\/wal\// });
      const r = await runPgDr(
        inputs(destinationInputs(s3.primary, { ...s3.secondary, endpoint: proxy.endpoint })),
        env(),
      );
      expect(r.outputs.status).toBe('degraded');
      expect(r.failed).toContain('degraded');
      expect(r.failed).toContain('fail-on-degraded: false');
      const next = (await records()).at(-1) as WalRunRecord;
      expect(next.startLsn).toBe(second.confirmLsn);
      expect(next.destinations.find((d) => d.name === 'r2')?.ok).toBe(false);
      expect((await records(SECONDARY_BUCKET)).map((x) => x.runId)).not.toContain(next.runId);
      expect(await slotRestart()).toBe(next.confirmLsn);
      second = next;
    } finally {
      await proxy.stop();
    }
  });

  it('a dropped slot is detected: the run refuses and says a fresh base backup is needed', async () => {
    await pgc.query('postgres', 'SELECT pg_drop_replication_slot($1)', [SLOT]);
    const r = await runPgDr(inputs({ 'create-slot': 'true' }), env());
    expect(r.failed).toContain(`"${SLOT}" is gone`);
    expect(r.failed).toContain('fresh physical base backup');
    expect(await slotRestart()).toBeNull();
  });

  it('a physical backup with wal-slot creates the slot before it starts; wal starts the chain again there', async () => {
    // WAL written and checkpointed after the last run: a new slot holds none of it (a gap).
    await writeWal(20);
    await pgc.query('postgres', 'CHECKPOINT');
    const b = await runPgDr(
      {
        command: 'backup',
        mode: 'physical',
        prefix: PREFIX,
        'database-url': pgc.url('app'),
        'age-recipients': recipient,
        'wal-slot': SLOT,
        'create-slot': 'true',
        ...destinationInputs(s3.primary, s3.secondary),
      },
      env(),
    );
    expect(b.failed, b.log).toBeUndefined();
    const manifest = parseManifest(b.outputs.manifest as string);
    baseId = manifest.id;
    const slot = await slotRestart();
    expect(slot).not.toBeNull();
    expect(parseLsn(slot as string)).toBeLessThanOrEqual(
      parseLsn(manifest.physical?.startLsn as string),
    );
    const r = await runPgDr(inputs(), env());
    expect(r.failed, r.log).toBeUndefined();
    const next = (await records()).at(-1) as WalRunRecord;
    expect(parseLsn(next.startLsn)).toBeLessThanOrEqual(
      parseLsn(manifest.physical?.startLsn as string),
    );
    expect(r.log).toContain(`covered by base backup ${manifest.id}`);
  });
  it('PostgreSQL recovers the base backup through wal-get as its restore_command: every row committed before the last run, none after', async () => {
    await pgc.query('app', 'CREATE TABLE marks (n integer, phase text)');
    await pgc.query('app', "INSERT INTO marks SELECT g, 'shipped' FROM generate_series(1, 500) g");
    await writeWal(20);
    // The harness runs with synchronous_commit off; a committed row is flushed WAL only with it on
    // (PostgreSQL's default), and wal ships up to the flushed position.
    await pgc.query(
      'app',
      "SET synchronous_commit = on; INSERT INTO marks SELECT g, 'shipped' FROM generate_series(501, 600) g",
    );
    const shipped = await runPgDr(inputs(), env());
    expect(shipped.failed, shipped.log).toBeUndefined();
    await pgc.query('app', "INSERT INTO marks SELECT g, 'late' FROM generate_series(1, 100) g");

    // The runbook's manual restore of the base backup, then recovery from the archive.
    const asPostgres = (file: string, args: string[]) =>
      process.getuid?.() === 0
        ? execa('runuser', ['-u', 'postgres', '--', file, ...args], { reject: false })
        : execa(file, args, { reject: false });
    const root = join(work, 'recovered');
    const data = join(root, 'data');
    await chmod(work, 0o711);
    await mkdir(data, { recursive: true });
    const tar = await s3.secondary.getObject(
      SECONDARY_BUCKET,
      `${PREFIX}${baseId}/base.tar.zst.age`,
    );
    await execa('sh', ['-c', `age -d -i "${keyFile}" | zstd -d -q | tar -x -C "${data}"`], {
      input: tar,
    });
    const envFile = join(root, 'pg-dr.env');
    const settings: Record<string, string> = {
      prefix: PREFIX,
      'age-identity': identity,
      ...destinationInputs(s3.primary, s3.secondary),
    };
    await writeFile(
      envFile,
      Object.entries(settings)
        .map(([k, v]) => `PG_DR_${k.toUpperCase().replaceAll('-', '_')}='${v}'`)
        .join('\n'),
      { mode: 0o600 },
    );
    const port = await freePort();
    const cli = [
      process.execPath,
      join(REPO_ROOT, 'node_modules/tsx/dist/cli.mjs'),
      join(REPO_ROOT, 'src/cli.ts'),
    ]
      .map((a) => `"${a}"`)
      .join(' ');
    await appendFile(
      join(data, 'postgresql.auto.conf'),
      [
        `port = ${port}`,
        "listen_addresses = '127.0.0.1'",
        `unix_socket_directories = '${root}'`,
        `restore_command = '${cli} wal-get %f %p --env-file "${envFile}"'`,
        '',
      ].join('\n'),
    );
    await writeFile(join(data, 'recovery.signal'), '');
    if (process.getuid?.() === 0) await execa('chown', ['-R', 'postgres:postgres', root]);
    await chmod(data, 0o700);
    const pgCtl = join(pgc.binDir, 'pg_ctl');
    const started = await asPostgres(pgCtl, [
      '-D',
      data,
      '-l',
      join(root, 'log'),
      '-w',
      '-t',
      '180',
      'start',
    ]);
    const log = () => readFile(join(root, 'log'), 'utf8').catch(() => '');
    recovered = {
      port,
      data,
      stop: () => asPostgres(pgCtl, ['-D', data, '-m', 'immediate', '-w', 'stop']),
    };
    {
      expect(started.exitCode, `${started.stderr}\n${await log()}`).toBe(0);
      const client = new pg.Client({
        host: '127.0.0.1',
        port,
        user: pgc.user,
        password: pgc.password,
        database: 'app',
      });
      await client.connect();
      // Recovery ends at the end of the archive, then the server is promoted.
      for (let i = 0; i < 240; i++) {
        const r = await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
        if (r.rows[0]?.r === false) break;
        await new Promise((res) => setTimeout(res, 500));
      }
      const rows = await client.query<{ phase: string; n: string }>(
        'SELECT phase, count(*)::text AS n FROM marks GROUP BY phase ORDER BY phase',
      );
      await client.end();
      expect(rows.rows, await log()).toEqual([{ phase: 'shipped', n: '600' }]);
      const text = await log();
      expect(text).toMatch(/restored log file "[0-9A-F]{24}" from archive/);
      expect(text).not.toMatch(/FATAL/);
    }
  });

  it('after a promotion (timeline 2): the run says so and, without its slot there, stops; a base backup on the new timeline starts the chain again under wal/00000002/ with the history file', async () => {
    if (!recovered) throw new Error('the recovered server is not running');
    const url = pgc.url('app').replace(`:${pgc.port}/`, `:${recovered.port}/`);
    const refused = await runPgDr(inputs({ 'database-url': url, 'create-slot': 'true' }), env());
    expect(refused.failed).toContain(`"${SLOT}" is gone`);
    expect(refused.log).toContain('The server is on timeline 2; the last run shipped timeline 1');
    const b = await runPgDr(
      {
        command: 'backup',
        mode: 'physical',
        prefix: PREFIX,
        'database-url': url,
        'age-recipients': recipient,
        'wal-slot': SLOT,
        'create-slot': 'true',
        ...destinationInputs(s3.primary, s3.secondary),
      },
      env(),
    );
    expect(b.failed, b.log).toBeUndefined();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query("SET synchronous_commit = on; INSERT INTO marks VALUES (1, 'timeline 2')");
    await client.end();
    const r = await runPgDr(inputs({ 'database-url': url }), env());
    expect(r.failed, r.log).toBeUndefined();
    const last = (await records()).at(-1) as WalRunRecord;
    expect(last.timeline).toBe(2);
    expect(last.objects[0]).toMatchObject({ kind: 'history', walFile: '00000002.history' });
    expect(last.objects.slice(1).every((o) => o.walFile.startsWith('00000002'))).toBe(true);
    const history = join(work, 'history');
    const got = await walGet('00000002.history', history);
    expect(got.exitCode, String(got.stderr)).toBe(0);
    expect(
      (await readFile(history)).equals(
        await readFile(join(recovered.data, 'pg_wal', '00000002.history')),
      ),
    ).toBe(true);
    expect((await walGet('00000003.history', history)).exitCode).toBe(1);
  });
  it('signed records: with trusted-signers wal-get takes a signed run’s WAL, and refuses (126, not "missing") a file only unsigned records list', async () => {
    if (!recovered) throw new Error('the recovered server is not running');
    const keys = ed25519KeyPair(work, 'wal-signer');
    const trust = { 'trusted-signers': keys.publicKey };
    const url = pgc.url('app').replace(`:${pgc.port}/`, `:${recovered.port}/`);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(
      "SET synchronous_commit = on; INSERT INTO marks SELECT g, 'signed' FROM generate_series(1, 20000) g",
    );
    await client.end();
    const r = await runPgDr(
      inputs({ 'database-url': url, 'signing-key': keys.privateKey, ...trust }),
      env(),
    );
    expect(r.failed, r.log).toBeUndefined();
    // The earlier, unsigned records are not believed, and said so.
    expect(r.log).toMatch(/Ignored .*runs\/.*\.json: .*no signature/);
    const signed = (await records()).at(-1) as WalRunRecord;
    expect(signed.signedBy?.split(' ').slice(0, 2)).toEqual(keys.publicKey.split(' ').slice(0, 2));
    const key = `${PREFIX}wal/00000002/runs/${signed.runId}.json`;
    expect(await s3.primary.listKeys(PRIMARY_BUCKET, key)).toEqual([key, `${key}.sig`]);
    const out = join(work, 'signed-wal');
    const wanted = signed.objects.find(
      (o) => o.kind !== 'history',
    ) as WalRunRecord['objects'][number];
    const got = await walGet(wanted.walFile, out, trust);
    expect(got.exitCode, String(got.stderr)).toBe(0);
    const unsignedOnly = await walGet('000000010000000000000003', out, trust);
    expect(unsignedOnly.exitCode).toBe(126);
    expect(String(unsignedOnly.stderr)).toContain(
      'listed only by run records that are not trusted',
    );
  });
});
