import { chmod, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest } from '../../src/manifest/schema.js';
import { parseLsn } from '../../src/postgres/lsn.js';
import { parseWalRunRecord } from '../../src/wal/record.js';
import { ageKeyPair, tempDir } from '../harness/fixtures.js';
import { startGitHubApi } from '../harness/github-api.js';
import { REPO_ROOT } from '../harness/node.js';
import { freePort } from '../harness/ports.js';
import { type PgCluster, startPostgres } from '../harness/postgres.js';
import { destinationInputs, runPgDr } from '../harness/run.js';
import { PRIMARY_BUCKET, type S3Pair, startS3Pair } from '../harness/s3.js';
import { requireBinary } from '../harness/tools.js';

/**
 * Point-in-time recovery as a user runs it: a physical backup that keeps its slot, rows
 * committed with known server times, two `wal` runs, rows never shipped, then the built CLI's
 * `restore` with `data-dir`, `start` and a recovery target. The server it starts fetches the
 * WAL through `pg-dr wal-get` (its restore_command, settings in a private env file), stops at
 * the target, is promoted, and holds exactly the rows committed before it.
 */
let pgc: PgCluster;
let s3: S3Pair;
let work: string;
let identity: string;
let recipient: string;
const PREFIX = 'pitr/';
const SLOT = 'pg_dr_pitr';
/** Restored data directories, stopped at the end. */
const started: string[] = [];

const asPostgres = (file: string, args: string[]) =>
  process.getuid?.() === 0
    ? execa('runuser', ['-u', 'postgres', '--', file, ...args], { reject: false })
    : execa(file, args, { reject: false });

/** Rows committed one batch at a time, with synchronous_commit on (the harness turns it off). */
async function insert(phase: string, n: number): Promise<void> {
  await pgc.query(
    'app',
    `SET synchronous_commit = on; INSERT INTO events (phase, n) SELECT '${phase}', g FROM generate_series(1, ${n}) g`,
  );
}

async function serverNow(): Promise<string> {
  const [r] = await pgc.query<{ t: string }>(
    'app',
    `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS t`,
  );
  return r?.t as string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `pg-dr restore …` through the built CLI (dist/cli/index.js), settings in PG_DR_* variables. */
async function restoreCli(extra: Record<string, string>) {
  const settings: Record<string, string> = {
    prefix: PREFIX,
    'age-identity': identity,
    format: 'json',
    ...destinationInputs(s3.primary, s3.secondary),
    ...extra,
  };
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: work };
  for (const [k, v] of Object.entries(settings))
    env[`PG_DR_${k.toUpperCase().replaceAll('-', '_')}`] = v;
  const r = await execa(process.execPath, [join(REPO_ROOT, 'dist/cli/index.js'), 'restore'], {
    env,
    extendEnv: false,
    reject: false,
    cwd: work,
    timeout: 300_000,
  });
  const doc = JSON.parse(String(r.stdout) || '{}');
  return { exitCode: r.exitCode, doc, stderr: String(r.stderr) };
}

async function phases(port: number): Promise<Record<string, number>> {
  const c = new pg.Client({
    host: '127.0.0.1',
    port,
    user: pgc.user,
    password: pgc.password,
    database: 'app',
  });
  await c.connect();
  try {
    const r = await c.query<{ phase: string; n: string }>(
      'SELECT phase, count(*)::text AS n FROM events GROUP BY phase ORDER BY phase',
    );
    const inRecovery = await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
    expect(inRecovery.rows[0]?.r).toBe(false);
    return Object.fromEntries(r.rows.map((x) => [x.phase, Number(x.n)]));
  } finally {
    await c.end();
  }
}

/**
 * `restore` with `start: true` into `<work>/<name>/data` on a free port (stopped at the end);
 * fails the test unless the CLI exits 0.
 */
async function recoverInto(name: string, extra: Record<string, string>) {
  const parent = join(work, name);
  await mkdir(parent);
  const dataDir = join(parent, 'data');
  started.push(dataDir);
  const port = await freePort();
  const r = await restoreCli({ 'data-dir': dataDir, start: 'true', port: String(port), ...extra });
  expect(r.exitCode, `${r.stderr}\n${JSON.stringify(r.doc)}`).toBe(0);
  return { r, port, parent };
}

let target: string;
let firstRunEnd: string;

beforeAll(async () => {
  for (const tool of ['age', 'zstd']) requireBinary(tool);
  [pgc, s3] = await Promise.all([startPostgres({ name: 'pitr' }), startS3Pair()]);
  await pgc.createDatabase('app');
  await pgc.query('app', 'CREATE TABLE events (phase text, n integer)');
  work = await tempDir('pitr');
  // The OS user postgres (the restored servers', when the tests run as root) reaches them.
  await chmod(work, 0o711);
  ({ identity, recipient } = await ageKeyPair());
  const dest = destinationInputs(s3.primary, s3.secondary);
  const common = { prefix: PREFIX, 'age-recipients': recipient, 'wal-slot': SLOT, ...dest };
  const base = await runPgDr(
    {
      command: 'backup',
      mode: 'physical',
      'database-url': pgc.url('app'),
      'create-slot': 'true',
      ...common,
    },
    { GITHUB_WORKSPACE: work },
  );
  expect(base.failed, base.log).toBeUndefined();
  await insert('a', 100);
  await sleep(1100);
  target = await serverNow();
  await sleep(1100);
  await insert('b', 50);
  const first = await runPgDr({ command: 'wal', 'database-url': pgc.url('app'), ...common });
  expect(first.failed, first.log).toBeUndefined();
  // PostgreSQL's default: a slot may hold WAL without limit; every run says so.
  expect(first.log).toContain('max_slot_wal_keep_size is unlimited: if wal runs stop');
  firstRunEnd = await serverNow();
  await insert('c', 25);
  const second = await runPgDr({ command: 'wal', 'database-url': pgc.url('app'), ...common });
  expect(second.failed, second.log).toBeUndefined();
  // Committed, never shipped: no recovery can have it.
  await insert('d', 10);
}, 180_000);

afterAll(async () => {
  for (const dir of started)
    await asPostgres(join(pgc.binDir, 'pg_ctl'), ['-D', dir, '-m', 'immediate', '-w', 'stop']);
  await Promise.all([pgc?.stop(), s3?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

describe('point-in-time recovery (restore with a recovery target)', () => {
  it('to a time between two commits: exactly the rows committed before it, then promoted', async () => {
    const { r, port, parent } = await recoverInto('to-time', { 'recovery-target-time': target });
    expect(await phases(port)).toEqual({ a: 100 });
    const rec = r.doc.report.physical.recovery;
    expect(rec.target).toBe(new Date(target).toISOString());
    expect(rec.end.stopLine).toMatch(/^recovery stopping before commit of transaction \d+, time /);
    expect(rec.end.timeline).toBe(2);
    expect(rec.end.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    // The private env file restore_command read is gone; only the data directory is left.
    expect(await readdir(parent)).toEqual(['data']);
  });

  it('carried into database-url by the logical route: the target database holds exactly the rows before the time, counts compared', async () => {
    const parent = join(work, 'carried');
    await mkdir(parent);
    const r = await restoreCli({
      'data-dir': join(parent, 'data'),
      start: 'true',
      'recovery-target-time': target,
      'database-url': pgc.url('app_carried'),
    });
    expect(r.exitCode, `${r.stderr}\n${JSON.stringify(r.doc)}`).toBe(0);
    const carried = r.doc.report.physical.carried;
    expect(carried.database).toBe('app_carried');
    expect(carried.check.mismatches).toEqual([]);
    const rows = await pgc.query<{ phase: string; n: string }>(
      'app_carried',
      'SELECT phase, count(*)::text AS n FROM events GROUP BY phase ORDER BY phase',
    );
    expect(rows).toEqual([{ phase: 'a', n: '100' }]);
    // The private recovered server is stopped; its data directory is left for inspection.
    expect(r.stderr).toContain('The private recovered server is stopped');
    expect((await readdir(parent)).sort()).toEqual(['data']);
  });

  it('to latest: every row up to the last wal run, none committed after it', async () => {
    const { r, port } = await recoverInto('to-latest', { 'recovery-target': 'latest' });
    expect(await phases(port)).toEqual({ a: 100, b: 50, c: 25 });
    expect(r.doc.report.physical.recovery.target).toBe('latest');
  });

  it('monitor: WAL fresh, and the achieved RPO of the two runs in its report and chart', async () => {
    const r = await runPgDr({
      command: 'monitor',
      prefix: PREFIX,
      ...destinationInputs(s3.primary, s3.secondary),
    });
    expect(r.failed, r.log).toBeUndefined();
    const report = JSON.parse(r.outputs.report as string);
    const wal = report.checks.find((c: { key: string }) => c.key === 'wal-stale');
    expect(wal.state).toBe('ok');
    expect(wal.detail).toMatch(/^newest WAL ends [0-9A-F]+\/[0-9A-F]+ at .* ago; run /);
    // Two runs: one exposure before the second finished, and the one now.
    expect(report.rpo.runs).toBe(1);
    expect(report.rpo.worstSeconds).toBeGreaterThan(0);
    expect(report.rpo.worstSeconds).toBeLessThan(600);
    const trends = r.tables.find((t) => t.title === 'Trends');
    expect(trends?.chart).toContain('Achieved RPO over 7 days: worst **');
    expect(trends?.chart).toContain('Worst RPO per day');
  });

  it('refuses a target before every base backup, naming it, before anything is written', async () => {
    const dataDir = join(work, 'too-early', 'data');
    await mkdir(join(work, 'too-early'));
    const r = await restoreCli({
      'data-dir': dataDir,
      start: 'true',
      'recovery-target-time': '2020-01-01T00:00:00Z',
    });
    expect(r.exitCode).not.toBe(0);
    expect(JSON.stringify(r.doc)).toMatch(
      /No physical backup finished before 2020-01-01T00:00:00\.000Z/,
    );
    expect(await readdir(join(work, 'too-early'))).toEqual([]);
    // The first run's end is after the base backup: a target there is accepted (used above).
    expect(Date.parse(firstRunEnd)).toBeGreaterThan(Date.parse(target));
  });

  it('prune: the WAL older than the oldest kept physical backup goes with it; what that backup needs stays, and recovers', async () => {
    const dest = destinationInputs(s3.primary, s3.secondary);
    const common = { prefix: PREFIX, 'age-recipients': recipient, 'wal-slot': SLOT, ...dest };
    const second = await runPgDr(
      { command: 'backup', mode: 'physical', 'database-url': pgc.url('app'), ...common },
      { GITHUB_WORKSPACE: work },
    );
    expect(second.failed, second.log).toBeUndefined();
    const start = parseLsn(
      parseManifest(second.outputs.manifest as string).physical?.startLsn as string,
    );
    await insert('e', 5);
    const run = await runPgDr({ command: 'wal', 'database-url': pgc.url('app'), ...common });
    expect(run.failed, run.log).toBeUndefined();
    const keep = {
      command: 'prune',
      prefix: PREFIX,
      'keep-last': '1',
      'keep-daily': '0',
      'keep-weekly': '0',
      'keep-monthly': '0',
      'keep-yearly': '0',
      ...dest,
    };
    const walKeys = async () => (await s3.primary.listKeys(PRIMARY_BUCKET, `${PREFIX}wal/`)).sort();
    const before = await walKeys();
    const dry = await runPgDr({ ...keep, 'dry-run': 'true' });
    expect(dry.failed, dry.log).toBeUndefined();
    expect(await walKeys()).toEqual(before);
    const pruned = await runPgDr(keep);
    expect(pruned.failed, pruned.log).toBeUndefined();
    const report = JSON.parse(pruned.outputs.report as string);
    for (const d of report.destinations) {
      expect(d.wal.result).toBe('deleted');
      expect(d.wal.objects).toBeGreaterThan(0);
      expect(d.wal.anchor).toContain(second.outputs['backup-id'] as string);
    }
    // What is left: every segment the kept backup needs (it ends after its start), and no other.
    const records = (await readRecords()).flatMap((r) =>
      r.objects.map((o) => ({ ...o, tl: r.timeline })),
    );
    const left = new Set(await walKeys());
    for (const o of records) {
      const key = `${PREFIX}wal/0000000${o.tl}/${o.name}`;
      if (o.endLsn && parseLsn(o.endLsn) > start) expect(left.has(key), key).toBe(true);
    }
    expect([...left].filter((k) => !k.includes('/runs/')).length).toBeLessThan(
      before.filter((k) => !k.includes('/runs/')).length,
    );
    // And the kept backup still recovers to latest with what is left.
    const { port } = await recoverInto('after-prune', { 'recovery-target': 'latest' });
    expect(await phases(port)).toEqual({ a: 100, b: 50, c: 25, d: 10, e: 5 });
  });

  it('wal warns when its slot nears max_slot_wal_keep_size, before the server invalidates it', async () => {
    await pgc.query('postgres', "ALTER SYSTEM SET max_slot_wal_keep_size = '64MB'");
    await pgc.query('postgres', 'SELECT pg_reload_conf()');
    try {
      await pgc.query(
        'app',
        'INSERT INTO events SELECT md5(g::text) || repeat(md5(random()::text), 20), g FROM generate_series(1, 60000) g',
      );
      const r = await runPgDr({
        command: 'wal',
        'database-url': pgc.url('app'),
        prefix: PREFIX,
        'age-recipients': recipient,
        'wal-slot': SLOT,
        ...destinationInputs(s3.primary, s3.secondary),
      });
      expect(r.failed, r.log).toBeUndefined();
      expect(r.log).toMatch(
        new RegExp(
          `The slot "${SLOT}" holds [\\d.]+ MiB of WAL, \\d+% of max_slot_wal_keep_size \\(64\\.0 MiB\\): past it the server invalidates the slot`,
        ),
      );
    } finally {
      await pgc.query('postgres', 'ALTER SYSTEM RESET max_slot_wal_keep_size');
      await pgc.query('postgres', 'SELECT pg_reload_conf()');
    }
  });

  it('a server restarted between two wal runs: the next run goes on from its slot, no gap, and latest recovers every row', async () => {
    const common = {
      prefix: PREFIX,
      'age-recipients': recipient,
      'wal-slot': SLOT,
      ...destinationInputs(s3.primary, s3.secondary),
    };
    await insert('f', 7);
    const before = await runPgDr({ command: 'wal', 'database-url': pgc.url('app'), ...common });
    expect(before.failed, before.log).toBeUndefined();
    await insert('g', 3);
    const ctl = join(pgc.binDir, 'pg_ctl');
    const restarted = await asPostgres(ctl, [
      '-D',
      pgc.dataDir,
      '-l',
      pgc.logFile,
      '-m',
      'fast',
      '-w',
      'restart',
    ]);
    expect(restarted.exitCode, restarted.stderr).toBe(0);
    await insert('h', 2);
    const after = await runPgDr({ command: 'wal', 'database-url': pgc.url('app'), ...common });
    expect(after.failed, after.log).toBeUndefined();
    const records = (await readRecords()).sort((a, b) => (a.runId < b.runId ? -1 : 1));
    const [prev, last] = records.slice(-2);
    // The last run starts where the one before it stopped confirming: no gap.
    expect(parseLsn(last?.startLsn as string)).toBeLessThanOrEqual(
      parseLsn(prev?.endLsn as string),
    );
    const { port } = await recoverInto('after-restart', { 'recovery-target': 'latest' });
    const got = await phases(port);
    expect({ f: got.f, g: got.g, h: got.h }).toEqual({ f: 7, g: 3, h: 2 });
  });

  it('a failed wal run opens a wal-failed issue (the slot did not move), and the next good run closes it', async () => {
    const api = await startGitHubApi({ token: 'ghs_pitrtoken', owner: 'acme', repo: 'platform' });
    try {
      const env = {
        GITHUB_REPOSITORY: 'acme/platform',
        GITHUB_API_URL: api.url,
        GITHUB_WORKSPACE: work,
      };
      const run = (slot: string) =>
        runPgDr(
          {
            command: 'wal',
            'database-url': pgc.url('app'),
            prefix: PREFIX,
            'age-recipients': recipient,
            'wal-slot': slot,
            'github-token': 'ghs_pitrtoken',
            ...destinationInputs(s3.primary, s3.secondary),
          },
          env,
        );
      const failed = await run('pg_dr_gone');
      expect(failed.failed).toMatch(/pg_dr_gone/);
      const issues = () =>
        api.state.issues.filter((x) => x.body?.includes('<!-- pg-dr:alert key=wal-failed -->'));
      expect(issues()).toHaveLength(1);
      expect(issues()[0]?.state).toBe('open');
      expect(issues()[0]?.title).toBe('pg-dr: WAL shipping failed');
      const good = await run(SLOT);
      expect(good.failed, good.log).toBeUndefined();
      expect(issues()).toHaveLength(1);
      expect(issues()[0]?.state).toBe('closed');
    } finally {
      await api.stop();
    }
  });
});

/** Every trusted-or-not run record at the primary (the test's records are unsigned). */
async function readRecords() {
  const keys = (await s3.primary.listKeys(PRIMARY_BUCKET, `${PREFIX}wal/`)).filter((k) =>
    /\/runs\/[^/]+\.json$/.test(k),
  );
  const out = [];
  for (const k of keys)
    out.push(parseWalRunRecord((await s3.primary.getObject(PRIMARY_BUCKET, k)).toString('utf8')));
  return out;
}
