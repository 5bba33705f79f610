// One-off measurement (issue 16, row 2): how pg_restore -j 2's time splits between
// pre-data+data and post-data (from a -Z0 archive written through a pipe, as pg-dr's, with no
// data offsets), what a single streamed pre-data+data pg_restore followed by -j 2 post-data
// costs (the "overlap the download" design), and pg-dr restore-jobs 2 from two builds, with
// the time of each line pg-dr logs. Not part of npm run bench.
// Usage: tsx scripts/bench/measure-restore-split.ts [MiB] [cli-a] [reps] [cli-b]
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { ageKeyPair } from '../../test/harness/fixtures.js';
import { startPostgres } from '../../test/harness/postgres.js';
import { destinationInputs } from '../../test/harness/run.js';
import { startS3Pair } from '../../test/harness/s3.js';
import { generateDatabase } from './generate.js';
import { loadAverage } from './machine.js';

const MB = Number(process.argv[2] ?? 400);
const CLI = resolve(process.argv[3] ?? 'dist/cli/index.js');
const pg = await startPostgres({ name: 'splitbench' });
const s3 = await startS3Pair();
const work = await mkdtemp(join(tmpdir(), 'pg-dr-splitbench-'));
try {
  const g = await generateDatabase(pg, 'big', MB * 1024 ** 2);
  console.log(`database: ${(g.sizeBytes / 1e6).toFixed(0)} MB`);
  const { identity, recipient } = await ageKeyPair();
  const dest = destinationInputs(s3.primary, s3.secondary);
  const flags = (o: Record<string, string>) => Object.entries(o).map(([k, v]) => `--${k}=${v}`);
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: work };
  const libpq = {
    ...env,
    PGHOST: pg.host,
    PGPORT: String(pg.port),
    PGUSER: pg.user,
    PGPASSWORD: pg.password,
  };
  const bin = (t: string) => join(pg.binDir, t);
  const run = (file: string, args: string[]) => execa(file, args, { env: libpq, extendEnv: false });
  await execa(
    process.execPath,
    [
      CLI,
      'backup',
      ...flags({ 'database-url': pg.url('big'), 'age-recipients': recipient, ...dest }),
      '--format=json',
    ],
    { env, extendEnv: false },
  );
  const piped = join(work, 'piped.dump');
  await run('sh', ['-c', `"${bin('pg_dump')}" -Fc -Z0 big | cat > "${piped}"`]);
  const offs = join(work, 'offsets.dump');
  await run(bin('pg_dump'), ['-Fc', '-Z0', '-f', offs, 'big']);
  console.log(`archive ${((await stat(piped)).size / 1e6).toFixed(0)} MB; load ${loadAverage()}`);
  let n = 0;
  const time = async (label: string, steps: ((db: string) => Promise<unknown>)[]) => {
    const db = `t${n++}`;
    await pg.createDatabase(db);
    const parts: number[] = [];
    const t0 = performance.now();
    for (const s of steps) {
      const t = performance.now();
      await s(db);
      parts.push((performance.now() - t) / 1000);
    }
    const all = (performance.now() - t0) / 1000;
    console.log(
      `${label}: ${all.toFixed(1)} s [${parts.map((p) => p.toFixed(1)).join(' + ')}] load ${loadAverage()}`,
    );
    await pg.query('postgres', `DROP DATABASE ${db}`);
  };
  const R = (db: string, ...a: string[]) =>
    run(bin('pg_restore'), ['--no-owner', '--exit-on-error', '-d', db, ...a]);
  for (let rep = 0; rep < Number(process.argv[4] ?? 1); rep++) {
    await time('pg_restore -j2 piped file (no offsets)', [(db) => R(db, '-j2', piped)]);
    for (const [name, cli] of [
      ['orig', CLI],
      ['new', resolve(process.argv[5] ?? CLI)],
    ])
      await time(`pg-dr restore-jobs 2 (${name})`, [
        async (db) => {
          const t0 = performance.now();
          const c = execa(
            process.execPath,
            [
              cli as string,
              'restore',
              ...flags({
                'database-url': pg.url(db),
                'age-identity': identity,
                'restore-jobs': '2',
                ...dest,
              }),
              '--format=json',
            ],
            { env, extendEnv: false, all: true, buffer: false },
          );
          c.stderr?.on('data', (d: Buffer) => {
            for (const l of String(d).split('\n'))
              if (l.trim())
                console.log(
                  `   ${((performance.now() - t0) / 1000).toFixed(1)} ${l.slice(0, 120)}`,
                );
          });
          await c;
        },
      ]);
  }
} finally {
  await Promise.all([pg.stop(), s3.stop()]);
  await rm(work, { recursive: true, force: true });
}
