// What the progress costs (issue 18): backups of a generated database by two builds of the
// CLI, one as shipped and one whose startProgress does nothing, interleaved; wall time and
// CPU time (pg-dr and the children it waited for, /usr/bin/time). Also how far the stored
// total's estimate was from what was stored: the default ratio on the first backup, the
// previous backup's ratio after it.
// Usage: tsx scripts/bench/measure-progress.ts <MB> <reps> <cli without progress> [cli]
//   The build without progress: `npm run package` with `startProgress` (src/report/progress.ts)
//   returning `{ stop() {}, host }` at once, dist/ copied away, then rebuilt as it is.
//   Run it under `flock /tmp/pg-dr-bench.lock` when others measure on the same machine.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { type Manifest, parseManifest } from '../../src/manifest/schema.js';
import { DEFAULT_STORED_RATIO, estimateStored } from '../../src/pipeline/estimate.js';
import { LogPacer, percentDone, progressLine } from '../../src/report/progress.js';
import { ageKeyPair } from '../../test/harness/fixtures.js';
import { startPostgres } from '../../test/harness/postgres.js';
import { destinationInputs } from '../../test/harness/run.js';
import { startS3Pair } from '../../test/harness/s3.js';
import { generateDatabase } from './generate.js';
import { writeBenchSection } from './section.js';

const MB = Number(process.argv[2] ?? 300);
const REPS = Number(process.argv[3] ?? 3);
const WITHOUT = process.argv[4];
const WITH = resolve(process.argv[5] ?? 'dist/cli/index.js');
if (!WITHOUT)
  throw new Error('usage: measure-progress.ts <MB> <reps> <cli without progress> [cli]');

const load = async () => (await readFile('/proc/loadavg', 'utf8')).split(' ')[0] ?? '?';
const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};

interface Run {
  readonly wall: number;
  readonly cpu: number;
  readonly manifest: Manifest;
  readonly lines: number;
}

/** The per-tick work, alone: one line formatted (the log pacer's check included), in µs. */
function tickMicros(): number {
  const n = 200_000;
  const pacer = new LogPacer(0);
  let keep = 0;
  const t0 = performance.now();
  for (let i = 1; i <= n; i++) {
    const f = { done: i * 4096, total: { bytes: n * 4096, estimate: true }, elapsedMs: i };
    const line = progressLine('dump', f, [
      ['b2', i * 4000],
      ['r2', i * 4000],
      ['dumped', i * 4096],
    ]);
    keep += line.length + (pacer.due(i, percentDone(f)) ? 1 : 0);
  }
  const us = ((performance.now() - t0) * 1000) / n;
  if (keep === 0) throw new Error('nothing formatted');
  return us;
}
const micros = tickMicros();
console.log(`one progress tick: ${micros.toFixed(2)} µs`);

const pg = await startPostgres({ name: 'progressbench' });
const s3 = await startS3Pair();
const work = await mkdtemp(join(tmpdir(), 'pg-dr-progressbench-'));
try {
  const g = await generateDatabase(pg, 'big', MB * 1024 ** 2);
  console.log(`database: ${(g.sizeBytes / 1e6).toFixed(1)} MB (${g.seconds.toFixed(0)} s)`);
  const { recipient } = await ageKeyPair();
  const flags = Object.entries({
    'database-url': pg.url('big'),
    'age-recipients': recipient,
    ...destinationInputs(s3.primary, s3.secondary),
  }).map(([k, v]) => `--${k}=${v}`);
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: work };
  const backup = async (cli: string): Promise<Run> => {
    const r = await execa(
      '/usr/bin/time',
      ['-f', 'TIME %e %U %S', process.execPath, cli, 'backup', ...flags, '--format=json'],
      { env, extendEnv: false, reject: false },
    );
    if (r.exitCode !== 0) throw new Error(`backup failed: ${String(r.stderr).slice(-2000)}`);
    const [wall, user, sys] = (/TIME ([\d.]+) ([\d.]+) ([\d.]+)/.exec(r.stderr) ?? [])
      .slice(1)
      .map(Number);
    const manifest = parseManifest(
      JSON.stringify((JSON.parse(r.stdout) as { manifest: unknown }).manifest),
    );
    const lines = r.stderr.split('\n').filter((l) => /^dump .* · \d+% · ETA/.test(l)).length;
    return { wall: wall ?? 0, cpu: (user ?? 0) + (sys ?? 0), manifest, lines };
  };
  const loadBefore = await load();
  const runs: Record<'with' | 'without', Run[]> = { with: [], without: [] };
  const inOrder: Run[] = [];
  for (let i = 0; i < REPS; i++) {
    const order = i % 2 === 0 ? (['with', 'without'] as const) : (['without', 'with'] as const);
    for (const k of order) {
      const r = await backup(k === 'with' ? WITH : WITHOUT);
      runs[k].push(r);
      inOrder.push(r);
      console.log(
        `${k}: ${r.wall.toFixed(2)} s wall, ${r.cpu.toFixed(2)} CPU s, ${r.lines} progress lines`,
      );
    }
  }
  const loadAfter = await load();
  const row = (k: 'with' | 'without') => {
    const rs = runs[k];
    return `| ${k === 'with' ? 'progress as shipped (log mode)' : 'startProgress a no-op'} | ${median(rs.map((r) => r.wall)).toFixed(2)} | ${rs.map((r) => r.wall.toFixed(2)).join(', ')} | ${median(rs.map((r) => r.cpu)).toFixed(2)} | ${rs.map((r) => r.cpu.toFixed(2)).join(', ')} | ${rs.map((r) => r.lines).join(', ')} |`;
  };
  // The estimate each backup's progress made (the first had no previous backup: the default
  // ratio; every later one the previous one's), against what it stored.
  const misses = inOrder.map((r, i) => {
    const m = r.manifest;
    const stored = m.objects.find((o) => o.kind === 'database')?.encrypted.bytes ?? 0;
    const e = estimateStored(
      m.database.sizeBytes,
      m.database.compression,
      inOrder[i - 1]?.manifest ?? null,
    );
    return { estimate: e.bytes, stored, pct: ((e.bytes - stored) / stored) * 100 };
  });
  const signed = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(1)}%`;
  const [first, ...later] = misses;
  const lines = [
    '| build | wall s (median) | wall s (runs) | CPU s (median) | CPU s (runs) | progress lines |',
    '|---|---|---|---|---|---|',
    row('with'),
    row('without'),
    '',
    `Database ${(g.sizeBytes / 1e6).toFixed(1)} MB (pg_database_size, generated: text, jsonb, indexes, ~10% random bytea), zstd, two local s3rver destinations; ${REPS} runs each, interleaved; CPU = user + sys of pg-dr and the children it waited for (pg_dump, zstd). Load average (1 min) ${loadBefore} before, ${loadAfter} after.`,
    '',
    `One tick alone (the counters read, one line formatted, the 10%/30 s check), 200,000 in a loop: **${micros.toFixed(2)} µs**; the timer ticks once a second, so a one-hour backup spends about ${((micros * 3600) / 1000).toFixed(1)} ms on its progress.`,
    '',
    `Estimate of the stored total: the first backup (default ratio ${DEFAULT_STORED_RATIO.zstd} for zstd) ≈${((first?.estimate ?? 0) / 1e6).toFixed(1)} MB for ${((first?.stored ?? 0) / 1e6).toFixed(1)} MB stored (${signed(first?.pct ?? Number.NaN)}); the later ones (the previous backup's ratio) ${later.map((x) => signed(x.pct)).join(', ')}.`,
  ];
  console.log(lines.join('\n'));
  if (process.env.WRITE_BENCHMARKS === '1')
    await writeBenchSection(
      'progress',
      'Progress: what the live figures cost',
      'The progress line reads a few counters once a second (a timer, nothing per chunk) and formats one line; in a log it writes one every 10% or 30 s. `scripts/bench/measure-progress.ts` backs up a generated database with the CLI as built and with a build whose progress does nothing.',
      lines,
    );
} finally {
  await Promise.all([pg.stop(), s3.stop()]);
  await rm(work, { recursive: true, force: true });
}
