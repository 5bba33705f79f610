/**
 * Point-in-time recovery as the CLI runs it (`node dist/cli/index.js`, zstd, age, 2 × s3rver):
 * the two figures issue 20 asks for.
 *
 * 1. The RPO, measured: a small cluster with a physical base backup that keeps its slot; a
 *    writer commits one timestamped row at a time (synchronous_commit on), `--tick-ms` apart;
 *    `wal` runs every `--interval` seconds (a 5-minute cron, scaled down), `--runs` runs;
 *    then the disaster, at a moment between two runs that is not aligned with them: the
 *    writer stops, the source's newest committed row is the truth, and `restore` with
 *    `recovery-target: latest` into a new data directory says what survived. Seconds lost =
 *    newest committed − newest recovered; rows lost = committed − recovered. `--disasters`
 *    cycles, each at another phase of the interval.
 * 2. The recovery time of the `--mb` database (scripts/bench/generate.ts) restored to a point
 *    in time with one hour of write load replayed: a physical base backup, then `--wal-mb` MB
 *    of WAL (an hour at `--wal-mb`/60 MB a minute) written by UPDATE loops over the
 *    generated tables, one marker row committed per step, shipped by about `--wal-runs` `wal`
 *    runs spread through it; `restore` with `recovery-target-time` shortly before the end of
 *    the load: its wall time, split into download + extract + verify, start, and replay; the
 *    WAL replayed and the segments fetched; the marker rows against those committed before
 *    the target. Beside it, the same base backup restored and started with no target.
 *
 * Needs `npm run package` first; run under the shared lock:
 *
 *   flock /tmp/pg-dr-bench.lock npm run bench:pitr            # writes BENCHMARKS.md ('pitr')
 *   npx tsx scripts/bench-pitr.ts --mb 50 --wal-mb 64 --interval 5 --runs 3 --no-write
 */
import { chmod, mkdir, readFile, rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import pg from 'pg';
import { ageKeyPair, tempDir } from '../test/harness/fixtures.js';
import { freePort } from '../test/harness/ports.js';
import { type PgCluster, startPostgres } from '../test/harness/postgres.js';
import { destinationInputs } from '../test/harness/run.js';
import { type S3Pair, startS3Pair } from '../test/harness/s3.js';
import { generateDatabase } from './bench/generate.js';
import { writeBenchSection } from './bench/section.js';

/** Phases of the interval, after the last run's start, where the disasters strike. */
const PHASES = [0.62, 0.31, 0.87];
const SLOT = 'pg_dr_bench_pitr';

interface Options {
  readonly mb: number;
  readonly walMb: number;
  readonly walRuns: number;
  readonly interval: number;
  readonly runs: number;
  readonly disasters: number;
  readonly tickMs: number;
  readonly parts: ReadonlySet<string>;
  readonly cli: string;
  readonly write: boolean;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      mb: { type: 'string', default: '1536' },
      'wal-mb': { type: 'string', default: '1024' },
      'wal-runs': { type: 'string', default: '12' },
      interval: { type: 'string', default: '60' },
      runs: { type: 'string', default: '3' },
      disasters: { type: 'string', default: '3' },
      'tick-ms': { type: 'string', default: '5' },
      parts: { type: 'string', default: 'rpo,hour' },
      cli: { type: 'string', default: 'dist/cli/index.js' },
      'no-write': { type: 'boolean' },
    },
  });
  const whole = (name: string, v: string | undefined, min: number, max = Infinity) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new Error(
        `--${name}: "${v}". Expected a whole number ≥ ${min}${max < Infinity ? ` and ≤ ${max}` : ''}.`,
      );
    return n;
  };
  const parts = new Set((values.parts ?? '').split(',').filter(Boolean));
  for (const p of parts)
    if (p !== 'rpo' && p !== 'hour')
      throw new Error(`--parts: "${values.parts}". Expected rpo, hour or rpo,hour.`);
  return {
    mb: whole('mb', values.mb, 10),
    walMb: whole('wal-mb', values['wal-mb'], 32),
    walRuns: whole('wal-runs', values['wal-runs'], 1),
    interval: whole('interval', values.interval, 2),
    runs: whole('runs', values.runs, 1),
    disasters: whole('disasters', values.disasters, 1, PHASES.length),
    tickMs: whole('tick-ms', values['tick-ms'], 0, 1000),
    parts,
    cli: resolve(values.cli ?? ''),
    write: !values['no-write'],
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function asPostgres(file: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0
    ? ['runuser', ['-u', 'postgres', '--', file, ...args]]
    : [file, args];
}

/** What every CLI run of one bench shares: the CLI, the work dir, keys and destinations. */
interface Bench {
  readonly cli: string;
  readonly work: string;
  readonly recipient: string;
  readonly identity: string;
  readonly dest: Record<string, string>;
  /** Restored data directories, stopped at the end. */
  readonly started: string[];
}

/** One CLI command with `--format=json`: its wall time and the JSON document; fails loudly. */
async function cliRun(b: Bench, command: string, inputs: Record<string, string>) {
  const args = Object.entries({ ...inputs, ...b.dest }).map(([k, v]) => `--${k}=${v}`);
  const t0 = performance.now();
  // Asynchronous: the s3rver pair runs in this process and must keep answering.
  const r = await execa(process.execPath, [b.cli, command, ...args, '--format=json'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, GITHUB_WORKSPACE: b.work },
    extendEnv: false,
    reject: false,
  });
  const seconds = (performance.now() - t0) / 1000;
  const doc = JSON.parse(String(r.stdout) || '{}');
  if (r.exitCode !== 0 || !doc.ok)
    throw new Error(`${command} failed: ${doc.error ?? String(r.stderr).slice(-2000)}`);
  return { seconds, doc, startedAt: t0 };
}

interface Restored {
  readonly seconds: number;
  readonly port: number;
  readonly dataDir: string;
  // biome-ignore lint/suspicious/noExplicitAny: the CLI's JSON report, read field by field
  readonly physical: any;
}

/** `restore` of a physical backup into a new data directory, started on a free port. */
async function restoreInto(
  b: Bench,
  name: string,
  prefix: string,
  extra: Record<string, string>,
): Promise<Restored> {
  const parent = join(b.work, name);
  await mkdir(parent);
  const dataDir = join(parent, 'data');
  b.started.push(dataDir);
  const port = await freePort();
  const r = await cliRun(b, 'restore', {
    prefix,
    'age-identity': b.identity,
    'data-dir': dataDir,
    start: 'true',
    port: String(port),
    ...extra,
  });
  const report = r.doc.report ?? JSON.parse(r.doc.outputs?.report ?? '{}');
  return { seconds: r.seconds, port, dataDir, physical: report.physical };
}

/** One query on the restored server (same roles and password as the source, another port). */
async function queryRestored<T extends pg.QueryResultRow>(
  source: PgCluster,
  db: string,
  port: number,
  sql: string,
): Promise<T | undefined> {
  const url = new URL(source.url(db));
  url.port = String(port);
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const inRecovery = await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
    if (inRecovery.rows[0]?.r !== false)
      throw new Error('the restored server is still in recovery');
    return (await client.query<T>(sql)).rows[0];
  } finally {
    await client.end();
  }
}

async function stopRestored(binDir: string, dataDir: string): Promise<void> {
  await execa(...asPostgres(join(binDir, 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'fast']), {
    reject: false,
  });
}

/** A writer committing one row at a time, each with its server time, until stopped. */
function startWriter(url: string, tickMs: number) {
  let stop = false;
  let commits = 0;
  const done = (async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query('SET synchronous_commit = on');
      while (!stop) {
        await client.query('INSERT INTO ticks (at) VALUES (clock_timestamp())');
        commits++;
        if (tickMs > 0) await sleep(tickMs);
      }
    } finally {
      await client.end();
    }
  })();
  return {
    stop: async () => {
      stop = true;
      await done;
      return commits;
    },
  };
}

interface Disaster {
  readonly phase: number;
  readonly runSeconds: number[];
  /** Seconds from the last `wal` run's start to the disaster. */
  readonly sinceLastRun: number;
  readonly lostSeconds: number;
  readonly lostRows: number;
  readonly committed: number;
  readonly commitsPerSecond: number;
  readonly restoreSeconds: number;
  readonly replaySeconds: number;
}

const epochSql = 'SELECT count(*)::text AS n, extract(epoch FROM max(at))::text AS last FROM ticks';

/** Part 1: `--disasters` cycles of writer + `wal` schedule + disaster + restore to latest. */
async function measureRpo(o: Options, b: Bench, source: PgCluster): Promise<Disaster[]> {
  await source.createDatabase('app');
  await source.query('app', 'CREATE TABLE ticks (id bigserial PRIMARY KEY, at timestamptz)');
  const common = { prefix: 'rpo/', 'age-recipients': b.recipient, 'wal-slot': SLOT };
  await cliRun(b, 'backup', {
    ...common,
    mode: 'physical',
    'database-url': source.url('app'),
    'create-slot': 'true',
  });
  const out: Disaster[] = [];
  for (let d = 0; d < o.disasters; d++) {
    const phase = PHASES[d] as number;
    const writer = startWriter(source.url('app'), o.tickMs);
    const t0 = performance.now();
    const runSeconds: number[] = [];
    let lastStart = t0;
    for (let k = 0; k < o.runs; k++) {
      await sleep(Math.max(0, t0 + k * o.interval * 1000 - performance.now()));
      const r = await cliRun(b, 'wal', { ...common, 'database-url': source.url('app') });
      runSeconds.push(r.seconds);
      lastStart = r.startedAt;
    }
    const disasterAt = lastStart + phase * o.interval * 1000;
    if (performance.now() > disasterAt)
      throw new Error(
        `the last wal run took longer than ${phase} of the interval: raise --interval`,
      );
    await sleep(disasterAt - performance.now());
    const commits = await writer.stop();
    const sinceLastRun = (performance.now() - lastStart) / 1000;
    const writeSeconds = (performance.now() - t0) / 1000;
    const [truth] = await source.query<{ n: string; last: string }>('app', epochSql);
    const restored = await restoreInto(b, `rpo-${d}`, 'rpo/', { 'recovery-target': 'latest' });
    const got = await queryRestored<{ n: string; last: string }>(
      source,
      'app',
      restored.port,
      epochSql,
    );
    await stopRestored(source.binDir, restored.dataDir);
    out.push({
      phase,
      runSeconds,
      sinceLastRun,
      lostSeconds: Number(truth?.last) - Number(got?.last),
      lostRows: Number(truth?.n) - Number(got?.n),
      committed: Number(truth?.n),
      commitsPerSecond: commits / writeSeconds,
      restoreSeconds: restored.seconds,
      replaySeconds: restored.physical?.recovery?.seconds ?? Number.NaN,
    });
    process.stderr.write(`bench:pitr: disaster ${d + 1}: ${JSON.stringify(out.at(-1))}\n`);
  }
  return out;
}

function rpoLines(o: Options, ds: readonly Disaster[]): string[] {
  const f = (n: number, d = 1) => n.toFixed(d);
  const rows = ds.map(
    (d, i) =>
      `| ${i + 1} | ${f(d.phase * o.interval)} s after the last run's start (${Math.round(d.phase * 100)}% of the interval) | ${d.runSeconds.map((s) => f(s)).join(' / ')} s | **${f(d.lostSeconds, 2)} s** | ${d.lostRows} of ${d.committed} (${f(d.commitsPerSecond, 0)} commits/s) | ${f(d.sinceLastRun, 2)} s | ≤ ${f(o.interval + Math.max(...d.runSeconds))} s | ${f(d.restoreSeconds)} s (replay ${f(d.replaySeconds)} s) |`,
  );
  return [
    `\`wal\` every ${o.interval} s (a 5-minute cron, scaled down ${f(300 / o.interval, 0)}×: the RPO scales with the interval, the run's own seconds do not), ${o.runs} runs before each disaster; the writer commits one row at a time with \`synchronous_commit = on\` ${o.tickMs} ms apart (\`INSERT … VALUES (clock_timestamp())\`; the measure's resolution), on a cluster apart from the big one (the RPO depends on the schedule, not on the database's size). A \`wal\` run ships up to the server's flushed position when it reads it, after the CLI has started and connected: that delay is the gap between the expected figure and the data lost. Theory: the data lost is at most the interval plus one run's duration (a disaster during a run loses back to the previous run's start).`,
    '',
    "| disaster | when | `wal` runs before it (wall) | data lost (newest committed − newest recovered) | rows lost | expected (disaster − last run's start) | bound (interval + one run) | `restore` to latest |",
    '|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
  ];
}

interface Hour {
  readonly generated: { sizeBytes: number; seconds: number };
  readonly baseSeconds: number;
  readonly walBytes: number;
  readonly loadSeconds: number;
  readonly runs: { seconds: number }[];
  readonly steps: number;
  readonly targetStep: number;
  readonly target: string;
  readonly pitr: Restored;
  readonly plain: Restored;
  readonly marks: { n: number; max: number };
  readonly replayedBytes: number;
  readonly segmentsFetched: number;
  readonly startLsn: string;
}

const lsnSql = 'SELECT pg_current_wal_lsn()::text AS l';

/** Part 2's write load: UPDATE slices of `events`, a marker per step, `wal` runs between. */
async function writeHour(o: Options, b: Bench, source: PgCluster, common: Record<string, string>) {
  await source.query('big', 'CREATE TABLE marks (step integer PRIMARY KEY, at timestamptz)');
  const client = new pg.Client({ connectionString: source.url('big') });
  await client.connect();
  await client.query('SET synchronous_commit = on');
  const lsn = async () => (await client.query<{ l: string }>(lsnSql)).rows[0]?.l as string;
  const diff = async (a: string, z: string) =>
    Number(
      (await client.query<{ d: string }>('SELECT pg_wal_lsn_diff($1, $2)::text AS d', [z, a]))
        .rows[0]?.d,
    );
  const [{ n: maxId } = { n: '0' }] = await source.query<{ n: string }>(
    'big',
    'SELECT max(id)::text AS n FROM events',
  );
  const want = o.walMb * 1024 ** 2;
  const stepBytes = Math.min(8 * 1024 ** 2, want / 32);
  const chunk = want / o.walRuns;
  const from = await lsn();
  let sinceRun = from;
  let rows = 2000;
  let id = 0;
  let written = 0;
  let step = 0;
  const runs: { seconds: number }[] = [];
  const marks: { step: number; lsn: string }[] = [];
  const t0 = performance.now();
  while (written < want) {
    const before = await lsn();
    await client.query(
      `UPDATE events SET message = message || ' ~', payload = payload || jsonb_build_object('step', ${step + 1}::int) WHERE id > ${id} AND id <= ${id + rows}`,
    );
    id = id + rows >= Number(maxId) ? 0 : id + rows;
    step++;
    await client.query('INSERT INTO marks VALUES ($1, clock_timestamp())', [step]);
    const after = await lsn();
    const made = await diff(before, after);
    rows = Math.max(100, Math.round((rows * stepBytes) / Math.max(made, 1)));
    written = await diff(from, after);
    marks.push({ step, lsn: after });
    if ((await diff(sinceRun, after)) >= chunk || written >= want) {
      runs.push(await cliRun(b, 'wal', { ...common, 'database-url': source.url('big') }));
      sinceRun = after;
      process.stderr.write(
        `bench:pitr: ${(written / 1024 ** 2).toFixed(0)} MiB of WAL written, ${runs.length} wal runs\n`,
      );
    }
  }
  await client.end();
  return { written, steps: step, runs, loadSeconds: (performance.now() - t0) / 1000 };
}

/** Part 2: the big database, a base backup, an hour of WAL, the restore to a time before its end. */
async function measureHour(o: Options, b: Bench, source: PgCluster): Promise<Hour> {
  const generated = await generateDatabase(source, 'big', o.mb * 1024 ** 2, (s) =>
    process.stderr.write(`${s}\n`),
  );
  const common = { prefix: 'hour/', 'age-recipients': b.recipient, 'wal-slot': `${SLOT}_hour` };
  const base = await cliRun(b, 'backup', {
    ...common,
    mode: 'physical',
    'database-url': source.url('big'),
    'create-slot': 'true',
  });
  const startLsn = base.doc.manifest.physical.startLsn as string;
  // The target: shortly before the end of the load, between two marker commits, so exactly the
  // markers up to targetStep were committed before it. Written in two halves around it.
  const w = await writeHourAroundTarget(o, b, source, common);
  const plain = await restoreInto(b, 'hour-plain', 'hour/', {});
  await stopRestored(source.binDir, plain.dataDir);
  await rm(join(b.work, 'hour-plain'), { recursive: true, force: true });
  const pitr = await restoreInto(b, 'hour-pitr', 'hour/', { 'recovery-target-time': w.target });
  const got = await queryRestored<{ n: string; max: string }>(
    source,
    'big',
    pitr.port,
    'SELECT count(*)::text AS n, coalesce(max(step), 0)::text AS max FROM marks',
  );
  const log = await readFile(join(pitr.dataDir, 'log', 'pg-dr-start.log'), 'utf8').catch(() => '');
  const segmentsFetched = new Set(
    [...log.matchAll(/restored log file "([0-9A-F]{24})" from archive/g)].map((m) => m[1]),
  ).size;
  const endLsn = pitr.physical?.recovery?.end?.lsn as string;
  const [d] = await source.query<{ d: string }>(
    'postgres',
    'SELECT pg_wal_lsn_diff($1, $2)::text AS d',
    [endLsn, startLsn],
  );
  await stopRestored(source.binDir, pitr.dataDir);
  return {
    generated,
    baseSeconds: base.seconds,
    walBytes: w.written,
    loadSeconds: w.loadSeconds,
    runs: w.runs,
    steps: w.steps,
    targetStep: w.targetStep,
    target: w.target,
    pitr,
    plain,
    marks: { n: Number(got?.n), max: Number(got?.max) },
    replayedBytes: Number(d?.d),
    segmentsFetched,
    startLsn,
  };
}

/**
 * The load in two parts: ~97% of `--wal-mb`, the target taken between two marker commits
 * (50 ms after the last, 50 ms before the next), then the rest, shipped to the end.
 */
async function writeHourAroundTarget(
  o: Options,
  b: Bench,
  source: PgCluster,
  common: Record<string, string>,
) {
  const first = await writeHour(
    { ...o, walMb: Math.max(1, Math.round(o.walMb * 0.97)) },
    b,
    source,
    common,
  );
  await sleep(50);
  const [t] = await source.query<{ t: string }>(
    'big',
    `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS t`,
  );
  await sleep(50);
  const rest = await writeTail(o, b, source, common, first.steps);
  return {
    written: first.written + rest.written,
    steps: rest.steps,
    targetStep: first.steps,
    target: t?.t as string,
    runs: [...first.runs, ...rest.runs],
    loadSeconds: first.loadSeconds + rest.loadSeconds,
  };
}

/** The last ~3% of the load after the target: marker steps continue, then one last `wal` run. */
async function writeTail(
  o: Options,
  b: Bench,
  source: PgCluster,
  common: Record<string, string>,
  fromStep: number,
) {
  const client = new pg.Client({ connectionString: source.url('big') });
  await client.connect();
  await client.query('SET synchronous_commit = on');
  const lsn = async () => (await client.query<{ l: string }>(lsnSql)).rows[0]?.l as string;
  const from = await lsn();
  const want = o.walMb * 1024 ** 2 * 0.03;
  const t0 = performance.now();
  let step = fromStep;
  let written = 0;
  while (written < want) {
    step++;
    await client.query(
      `UPDATE events SET message = message || ' ~' WHERE id > ${step * 1000} AND id <= ${step * 1000 + 2000}`,
    );
    await client.query('INSERT INTO marks VALUES ($1, clock_timestamp())', [step]);
    const r = await client.query<{ d: string }>(
      'SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)::text AS d',
      [from],
    );
    written = Number(r.rows[0]?.d);
  }
  await client.end();
  const run = await cliRun(b, 'wal', { ...common, 'database-url': source.url('big') });
  return { written, steps: step, runs: [run], loadSeconds: (performance.now() - t0) / 1000 };
}

function hourLines(o: Options, h: Hour): string[] {
  const f = (n: number, d = 1) => n.toFixed(d);
  const mib = (n: number) => `${f(n / 1024 ** 2)} MiB`;
  const p = h.pitr.physical;
  const start = p?.started?.seconds ?? Number.NaN;
  const replay = p?.recovery?.seconds ?? Number.NaN;
  const copy = h.pitr.seconds - start - replay;
  const plainStart = h.plain.physical?.started?.seconds ?? Number.NaN;
  const ok = h.marks.n === h.targetStep && h.marks.max === h.targetStep;
  return [
    `The ${f(h.generated.sizeBytes / 1e6, 0)} MB database (\`pg_database_size\`, generated in ${f(h.generated.seconds, 0)} s), a physical base backup (${f(h.baseSeconds)} s), then ${mib(h.walBytes)} of WAL — one hour at ${f(o.walMb / 60)} MiB a minute, written here in ${f(h.loadSeconds, 0)} s (UPDATE slices of \`events\`, ${h.steps} steps, one marker row committed per step; what the replay costs is the WAL's bytes and records, not the hour it took to write them) — shipped by ${h.runs.length} \`wal\` runs between the steps (the load waits while a run ships; ${f(Math.min(...h.runs.map((r) => r.seconds)))}–${f(Math.max(...h.runs.map((r) => r.seconds)))} s each, ${f(h.runs.reduce((s, r) => s + r.seconds, 0))} s in all). Then \`restore\` with \`data-dir\`, \`start: true\` and \`recovery-target-time\` ${h.target}, taken between the commits of markers ${h.targetStep} and ${h.targetStep + 1} (~97% of the load).`,
    '',
    '| measure | value |',
    '|---|---|',
    `| **recovery to the point in time, whole \`restore\` (CLI start to exit)** | **${f(h.pitr.seconds)} s** |`,
    `| … download, decrypt, extract, pg_verifybackup (the rest) | ${f(copy)} s |`,
    `| … start until it accepts connections (\`report.physical.started.seconds\`) | ${f(start)} s |`,
    `| … WAL replay until promoted (\`report.physical.recovery.seconds\`) | ${f(replay)} s |`,
    `| WAL replayed (LSN distance, backup start ${h.startLsn} → stop ${p?.recovery?.end?.lsn ?? '?'}) | ${mib(h.replayedBytes)}, ${h.segmentsFetched} segments fetched by \`wal-get\` |`,
    `| replay rate (WAL replayed ÷ start + replay) | ${f(h.replayedBytes / 1024 ** 2 / (start + replay))} MiB/s |`,
    `| where it stopped | ${p?.recovery?.end?.stopLine ?? '?'}; timeline ${p?.recovery?.end?.timeline ?? '?'} |`,
    `| marker rows in the recovered database | ${h.marks.n} (newest ${h.marks.max}); committed before the target: ${h.targetStep} — ${ok ? 'equal' : '**DIFFERENT**'} |`,
    `| the same base backup restored and started, no WAL replayed (same run) | ${f(h.plain.seconds)} s (start ${f(plainStart)} s) |`,
    `| cost of replaying the hour | ${f(h.pitr.seconds - h.plain.seconds)} s (${f(h.pitr.seconds / h.plain.seconds, 2)}×) |`,
    '',
  ];
}

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const o = options();
  const work = await tempDir('bench-pitr');
  // The OS user postgres (the restored servers', when this runs as root) reaches the data directories.
  await chmod(work, 0o711);
  let small: PgCluster | undefined;
  let big: PgCluster | undefined;
  let s3: S3Pair | undefined;
  const started: string[] = [];
  try {
    [small, big, s3] = await Promise.all([
      o.parts.has('rpo') ? startPostgres({ name: 'bench-pitr-rpo' }) : undefined,
      o.parts.has('hour') ? startPostgres({ name: 'bench-pitr-hour' }) : undefined,
      startS3Pair(),
    ]);
    const keys = await ageKeyPair();
    const b: Bench = {
      cli: o.cli,
      work,
      ...keys,
      dest: destinationInputs(s3.primary, s3.secondary),
      started,
    };
    const loadBefore = loadavg()[0] ?? 0;
    const t0 = performance.now();
    const lines: string[] = [];
    if (small) {
      const ds = await measureRpo(o, b, small);
      lines.push('### RPO, measured', '', ...rpoLines(o, ds));
    }
    if (big) {
      const h = await measureHour(o, b, big);
      lines.push(
        '### Recovery to a point in time, one hour of writes replayed',
        '',
        ...hourLines(o, h),
      );
    }
    lines.push(
      `- 1-minute load average before ${loadBefore.toFixed(2)}, after ${(loadavg()[0] ?? 0).toFixed(2)} (2 cores shared with other work); the whole bench took ${((performance.now() - t0) / 60000).toFixed(1)} min. Options: \`--mb ${o.mb} --wal-mb ${o.walMb} --wal-runs ${o.walRuns} --interval ${o.interval} --runs ${o.runs} --disasters ${o.disasters} --tick-ms ${o.tickMs}\`.`,
      "- The harness servers run with `fsync = off` and `full_page_writes = off` (no full-page images in the WAL: a production server with them on writes more WAL for the same changes, and replays more); s3rver on loopback, so the fetches cost pg-dr's own work, not a cloud link.",
    );
    process.stdout.write(`${lines.join('\n')}\n`);
    if (o.write)
      await writeBenchSection(
        'pitr',
        'Point-in-time recovery: RPO and recovery time (`npm run bench:pitr`)',
        `Measured ${new Date().toISOString().slice(0, 10)}, on this machine (2 cores shared), with the built CLI (\`${o.cli.replace(`${process.cwd()}/`, '')}\`) against two local s3rver servers, under \`flock /tmp/pg-dr-bench.lock\`.`,
        lines,
      );
  } finally {
    const binDir = small?.binDir ?? big?.binDir ?? '';
    for (const dir of started)
      await execa(...asPostgres(join(binDir, 'pg_ctl'), ['stop', '-D', dir, '-m', 'immediate']), {
        reject: false,
      });
    await Promise.allSettled([small?.stop(), big?.stop(), s3?.stop()]);
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:pitr: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
