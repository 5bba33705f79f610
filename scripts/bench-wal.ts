/**
 * WAL shipping as the CLI runs it (`node dist/cli/index.js wal`, 2 × s3rver, zstd, age):
 * a cluster writes `--mb` MB of WAL (rows of random hex text, about 2:1 for zstd), then one `wal` run ships it — wall time, WAL MB per second, what was stored and
 * the CLI's peak RSS (`/usr/bin/time`). Then `wal-get` fetches `--gets` segments one process
 * each, as PostgreSQL's restore_command runs it: seconds per segment bound the replay of a
 * point-in-time recovery. Needs `npm run package` first; run under the shared lock:
 *
 *   flock /tmp/pg-dr-bench.lock npm run bench:wal                       # 256 MB, writes BENCHMARKS.md
 *   npx tsx scripts/bench-wal.ts --mb 32 --gets 2 --no-write
 */
import { readFile, rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { ageKeyPair, tempDir } from '../test/harness/fixtures.js';
import { type PgCluster, startPostgres } from '../test/harness/postgres.js';
import { destinationInputs } from '../test/harness/run.js';
import { type S3Pair, startS3Pair } from '../test/harness/s3.js';
import { writeBenchSection } from './bench/section.js';

interface WalReport {
  readonly startLsn: string;
  readonly endLsn: string;
  readonly objects: {
    walFile: string;
    kind: string;
    wal: { bytes: number };
    encrypted: { bytes: number };
  }[];
}

function options() {
  const { values } = parseArgs({
    options: {
      mb: { type: 'string', default: '256' },
      gets: { type: 'string', default: '5' },
      cli: { type: 'string', default: 'dist/cli/index.js' },
      'no-write': { type: 'boolean' },
    },
  });
  const mb = Number(values.mb);
  const gets = Number(values.gets);
  if (!Number.isInteger(mb) || mb < 16)
    throw new Error(`--mb: "${values.mb}". Expected a whole number ≥ 16.`);
  if (!Number.isInteger(gets) || gets < 1)
    throw new Error(`--gets: "${values.gets}". Expected a whole number ≥ 1.`);
  return { mb, gets, cli: resolve(values.cli), write: !values['no-write'] };
}

/** One CLI run with its wall time and peak RSS. */
async function timed(cli: string, args: string[], env: Record<string, string>) {
  const t0 = performance.now();
  const r = await execa('/usr/bin/time', ['-f', 'maxrss_kb=%M', process.execPath, cli, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    extendEnv: false,
    reject: false,
  });
  const seconds = (performance.now() - t0) / 1000;
  const rss = Number(/maxrss_kb=(\d+)/.exec(String(r.stderr))?.[1] ?? Number.NaN) / 1024;
  return { r, seconds, rssMiB: rss };
}

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const o = options();
  let pg: PgCluster | undefined;
  let s3: S3Pair | undefined;
  const work = await tempDir('bench-wal');
  try {
    [pg, s3] = await Promise.all([startPostgres({ name: 'bench-wal' }), startS3Pair()]);
    await pg.createDatabase('app');
    await pg.query('app', 'CREATE TABLE filler (n bigint, t text)');
    const { identity, recipient } = await ageKeyPair();
    const settings: Record<string, string> = {
      prefix: 'bench/',
      'database-url': pg.url('app'),
      'age-recipients': recipient,
      'age-identity': identity,
      ...destinationInputs(s3.primary, s3.secondary),
    };
    const env: Record<string, string> = {
      GITHUB_WORKSPACE: work,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    for (const [k, v] of Object.entries(settings))
      env[`PG_DR_${k.toUpperCase().replaceAll('-', '_')}`] = v;
    const first = await timed(o.cli, ['wal', '--create-slot', 'true', '--format', 'json'], env);
    if (first.r.exitCode !== 0)
      throw new Error(`wal (creating the slot) failed: ${String(first.r.stderr).slice(-2000)}`);
    const rows = Math.ceil((o.mb * 1024 * 1024) / 1100);
    for (let done = 0; done < rows; done += 50_000)
      await pg.query(
        'app',
        `INSERT INTO filler SELECT g, (SELECT string_agg(md5(random()::text || g::text || s::text), '') FROM generate_series(1, 30) s) FROM generate_series(1, ${Math.min(50_000, rows - done)}) g`,
      );
    const loadBefore = loadavg()[0] ?? 0;
    const run = await timed(o.cli, ['wal', '--format', 'json'], env);
    const doc = JSON.parse(String(run.r.stdout) || '{}');
    if (run.r.exitCode !== 0 || !doc.ok)
      throw new Error(`wal failed: ${doc.error ?? String(run.r.stderr).slice(-2000)}`);
    const rec = doc.report.wal as WalReport;
    const walBytes = rec.objects.reduce((s, x) => s + x.wal.bytes, 0);
    const stored = rec.objects.reduce((s, x) => s + x.encrypted.bytes, 0);
    const segments = rec.objects.filter((x) => x.kind === 'segment');
    const gets: number[] = [];
    let getRss = 0;
    for (const seg of segments.slice(0, o.gets)) {
      const out = join(work, 'RECOVERYXLOG');
      const g = await timed(o.cli, ['wal-get', seg.walFile, out], env);
      if (g.r.exitCode !== 0)
        throw new Error(`wal-get ${seg.walFile} failed: ${String(g.r.stderr).slice(-500)}`);
      if ((await readFile(out)).length !== 16 * 1024 * 1024)
        throw new Error('wal-get wrote a wrong size');
      gets.push(g.seconds);
      getRss = Math.max(getRss, g.rssMiB);
    }
    const loadAfter = loadavg()[0] ?? 0;
    const mbps = walBytes / 1024 ** 2 / run.seconds;
    const avgGet = gets.reduce((s, x) => s + x, 0) / gets.length;
    const lines = [
      '| measure | value |',
      '|---|---|',
      `| WAL shipped by one \`wal\` run | ${(walBytes / 1024 ** 2).toFixed(1)} MiB (${rec.startLsn} → ${rec.endLsn}; ${segments.length} segments + ${rec.objects.length - segments.length} partial) |`,
      `| wall time of the run (CLI start to exit) | ${run.seconds.toFixed(1)} s |`,
      `| WAL shipped per second | ${mbps.toFixed(1)} MiB/s |`,
      `| stored (zstd + age, each destination) | ${(stored / 1024 ** 2).toFixed(1)} MiB (ratio ${(walBytes / stored).toFixed(2)}) |`,
      `| peak RSS of the \`wal\` process | ${run.rssMiB.toFixed(0)} MiB |`,
      `| \`wal-get\` per 16 MiB segment (one process each, ${gets.length} segments) | ${avgGet.toFixed(2)} s average, ${Math.max(...gets).toFixed(2)} s slowest; peak RSS ${getRss.toFixed(0)} MiB |`,
      '',
      `- 1-minute load average before ${loadBefore.toFixed(2)}, after ${loadAfter.toFixed(2)} (2 cores shared with other work).`,
      `- ${o.mb} MiB of rows of random hex text (md5 of random(): about 2:1 for zstd) inserted before the run; s3rver on loopback, so this is pg-dr's own cost, not a cloud link's.`,
    ];
    console.log(lines.join('\n'));
    if (o.write)
      await writeBenchSection(
        'wal',
        'WAL shipping (`wal`) and fetching (`wal-get`)',
        'One `wal` run of the built CLI ships the WAL a cluster wrote since the last run (`npx tsx scripts/bench-wal.ts`, under `flock /tmp/pg-dr-bench.lock`).',
        lines,
      );
  } finally {
    await Promise.allSettled([pg?.stop(), s3?.stop()]);
    await rm(work, { recursive: true, force: true });
  }
}

await main();
