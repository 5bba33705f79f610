/**
 * Physical against logical backup of the same database, as the CLI runs them
 * (`node dist/cli/index.js backup`, zstd, age, 2 × s3rver): wall time of the whole run and
 * the copy's own seconds (`database.dumpSeconds`: pg_dump or pg_basebackup through the
 * pipeline), the raw archive (custom-format dump vs the cluster's tar) and what was stored.
 * Alternating runs, each mode `--reps` times; the database from scripts/bench/generate.ts.
 * Then the recovery time of the last backup of each mode, side by side: `pg-dr restore` of
 * the logical one into a brand-new server (the faithful route: roles, pg_restore, row counts
 * compared, switched in) against `pg-dr restore` of the physical one into a new data
 * directory with `start: true` (download, extract, pg_verifybackup, start, recovery until it
 * accepts connections); the largest table's rows are compared with the source in both.
 * Needs `npm run package` first.
 *
 *   npm run bench:physical                        # 1.5 GB, 2 runs each, writes BENCHMARKS.md
 *   npm run bench:physical -- --mb 100 --reps 1 --no-write
 */
import { chmod, mkdir, rm } from 'node:fs/promises';
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

interface Run {
  readonly mode: 'logical' | 'physical';
  readonly wall: number;
  readonly copySeconds: number;
  readonly archiveBytes: number | null;
  readonly storedBytes: number;
}

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { values } = parseArgs({
    options: {
      mb: { type: 'string', default: '1536' },
      reps: { type: 'string', default: '2' },
      cli: { type: 'string', default: 'dist/cli/index.js' },
      'no-write': { type: 'boolean' },
    },
  });
  const mb = Number(values.mb);
  const reps = Number(values.reps);
  if (!Number.isInteger(mb) || mb < 10)
    throw new Error(`--mb: "${values.mb}". Expected a whole number ≥ 10.`);
  if (!Number.isInteger(reps) || reps < 1)
    throw new Error(`--reps: "${values.reps}". Expected a whole number ≥ 1.`);
  const cli = resolve(values.cli);
  let pg: PgCluster | undefined;
  let target: PgCluster | undefined;
  let s3: S3Pair | undefined;
  const work = await tempDir('bench-physical');
  // The OS user postgres (the restored server's, when this runs as root) reaches the data directory.
  await chmod(work, 0o711);
  const dataDir = join(work, 'restored', 'data');
  try {
    [pg, target, s3] = await Promise.all([
      startPostgres({ name: 'bench-physical' }),
      startPostgres({ name: 'bench-physical-target' }),
      startS3Pair(),
    ]);
    const g = await generateDatabase(pg, 'big', mb * 1024 ** 2);
    const { recipient, identity } = await ageKeyPair();
    const dest = destinationInputs(s3.primary, s3.secondary);
    const cluster = pg;
    const backup = async (mode: Run['mode'], i: number): Promise<Run> => {
      const inputs: Record<string, string> = {
        'database-url': cluster.url('big'),
        'age-recipients': recipient,
        mode,
        prefix: `${mode}-${i}/`,
        ...dest,
      };
      const args = Object.entries(inputs).map(([k, v]) => `--${k}=${v}`);
      const t0 = performance.now();
      // Asynchronous: the s3rver pair runs in this process and must keep answering.
      const r = await execa(process.execPath, [cli, 'backup', ...args, '--format=json'], {
        env: { PATH: process.env.PATH, HOME: process.env.HOME, GITHUB_WORKSPACE: work },
        extendEnv: false,
        reject: false,
      });
      const wall = (performance.now() - t0) / 1000;
      const doc = JSON.parse(String(r.stdout) || '{}');
      if (r.exitCode !== 0 || !doc.ok)
        throw new Error(`backup (${mode}) failed: ${doc.error ?? String(r.stderr).slice(-2000)}`);
      const m = doc.manifest;
      const main = m.objects.find(
        (o: { kind: string }) => o.kind === 'database' || o.kind === 'base',
      );
      return {
        mode,
        wall,
        copySeconds: m.database.dumpSeconds,
        archiveBytes: m.database.archiveBytes,
        storedBytes: main.encrypted.bytes,
      };
    };
    const loadBefore = loadavg()[0] ?? 0;
    const runs: Run[] = [];
    for (let i = 0; i < reps; i++)
      for (const mode of ['logical', 'physical'] as const) runs.push(await backup(mode, i));
    const [cluster0] = await cluster.query<{ size: string }>(
      'postgres',
      'SELECT sum(pg_database_size(oid))::text AS size FROM pg_database',
    );
    const m = (n: number | null) => (n === null ? '—' : `${(n / 1e6).toFixed(1)} MB`);
    const of = (mode: Run['mode']) => runs.filter((r) => r.mode === mode);
    const line = (mode: Run['mode']) => {
      const rs = of(mode);
      const best = rs.reduce((a, b) => (b.wall < a.wall ? b : a));
      return `- ${mode === 'logical' ? 'Logical (pg_dump -Fc -Z0 → zstd)' : 'Physical (pg_basebackup -Ft -X fetch → zstd)'}: whole run best ${best.wall.toFixed(1)} s (runs ${rs.map((r) => r.wall.toFixed(1)).join(' / ')} s); copy through the pipeline ${rs.map((r) => r.copySeconds.toFixed(1)).join(' / ')} s; archive ${m(best.archiveBytes)} → stored ${m(best.storedBytes)}.`;
    };
    const last = (mode: Run['mode']) => `${mode}-${reps - 1}/`;
    const recovery = await recoveries({
      cli,
      work,
      dataDir,
      identity,
      dest,
      source: cluster,
      target,
      prefixes: { logical: last('logical'), physical: last('physical') },
    });
    const lines = [
      `- Database: ${m(g.sizeBytes)} (\`pg_database_size\` of the generated database; the cluster ${m(Number(cluster0?.size))}), ${reps} run(s) of each mode, alternating, CLI \`${values.cli}\`.`,
      line('logical'),
      line('physical'),
      ...recovery,
      `- 1-minute load average before the runs ${loadBefore.toFixed(2)}, after ${(loadavg()[0] ?? 0).toFixed(2)}.`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    if (!values['no-write'])
      await writeBenchSection(
        'physical',
        'Physical vs logical backup (`npm run bench:physical`)',
        `Measured ${new Date().toISOString().slice(0, 10)}, on this machine (2 cores shared), against two local s3rver servers.`,
        lines,
      );
  } finally {
    await execa(
      ...asPostgres(join(pg?.binDir ?? '', 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'fast']),
      {
        reject: false,
      },
    );
    await Promise.all([pg?.stop(), target?.stop(), s3?.stop()]);
    await rm(work, { recursive: true, force: true });
  }
}

function asPostgres(file: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0
    ? ['runuser', ['-u', 'postgres', '--', file, ...args]]
    : [file, args];
}

/**
 * The recovery time of each mode's last backup, through the CLI: logical into a brand-new
 * server, physical into a new data directory started on a free port. Returns the lines.
 */
async function recoveries(o: {
  cli: string;
  work: string;
  dataDir: string;
  identity: string;
  dest: Record<string, string>;
  source: PgCluster;
  target: PgCluster;
  prefixes: Record<Run['mode'], string>;
}): Promise<string[]> {
  const run = async (inputs: Record<string, string>) => {
    const args = Object.entries({ ...inputs, 'age-identity': o.identity, ...o.dest }).map(
      ([k, v]) => `--${k}=${v}`,
    );
    const t0 = performance.now();
    const r = await execa(process.execPath, [o.cli, 'restore', ...args, '--format=json'], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, GITHUB_WORKSPACE: o.work },
      extendEnv: false,
      reject: false,
    });
    const wall = (performance.now() - t0) / 1000;
    const doc = JSON.parse(String(r.stdout) || '{}');
    if (r.exitCode !== 0 || !doc.ok)
      throw new Error(`restore failed: ${doc.error ?? String(r.stderr).slice(-2000)}`);
    return { wall, report: doc.report ?? JSON.parse(doc.outputs?.report ?? '{}') };
  };
  const largest = async (c: PgCluster) => {
    const [t] = await c.query<{ n: string }>(
      'big',
      'SELECT relname AS n FROM pg_class WHERE relkind = $1 AND relnamespace = $2::regnamespace ORDER BY relpages DESC LIMIT 1',
      ['r', 'public'],
    );
    const name = t?.n as string;
    const count = async (cl: PgCluster) =>
      (await cl.query<{ c: string }>('big', `SELECT count(*)::text AS c FROM public."${name}"`))[0]
        ?.c;
    return { name, source: await count(c) };
  };
  const logical = await run({ prefix: o.prefixes.logical, 'database-url': o.target.url('big') });
  await mkdir(join(o.work, 'restored'), { recursive: true });
  const port = await freePort();
  const physical = await run({
    prefix: o.prefixes.physical,
    'data-dir': o.dataDir,
    start: 'true',
    port: String(port),
  });
  const big = await largest(o.source);
  const counted = async (c: PgCluster) =>
    (await c.query<{ c: string }>('big', `SELECT count(*)::text AS c FROM public."${big.name}"`))[0]
      ?.c;
  const inLogical = await counted(o.target);
  // The restored copy answers as the source did: same roles and passwords, another port.
  const url = new URL(o.source.url('big'));
  url.port = String(port);
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  const inPhysical = (
    await client.query<{ c: string }>(`SELECT count(*)::text AS c FROM public."${big.name}"`)
  ).rows[0]?.c;
  await client.end();
  const started = physical.report.physical?.started;
  return [
    `- Recovery, logical (\`pg-dr restore\` into a brand-new server: roles, pg_restore, row counts compared, switched in): **${logical.wall.toFixed(1)} s**.`,
    `- Recovery, physical (\`pg-dr restore\` with \`data-dir\` and \`start: true\`: download, extract, pg_verifybackup, start and recovery): **${physical.wall.toFixed(1)} s**, of which the start and recovery until it accepted connections ${started ? started.seconds.toFixed(1) : '?'} s.`,
    `- Recovery physical / logical: **${(physical.wall / logical.wall).toFixed(2)}×**. Largest table \`${big.name}\`: ${big.source} rows in the source, ${inLogical} restored logically, ${inPhysical} physically.`,
  ];
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:physical: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
