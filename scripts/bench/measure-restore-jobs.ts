// One-off measurement for restore-jobs (issue 16): restore of a generated database with
// pg-dr restore-jobs 1 and 2 (download, decryption and decompression included) vs plain
// pg_restore -j 1 / -j 2 from a local file. Wall times, interleaved repetitions.
// Usage: tsx scripts/bench/measure-restore-jobs.ts [MB] [reps]   (needs `npm run package`)
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { ageKeyPair } from '../../test/harness/fixtures.js';
import { startPostgres } from '../../test/harness/postgres.js';
import { destinationInputs } from '../../test/harness/run.js';
import { startS3Pair } from '../../test/harness/s3.js';
import { generateDatabase } from './generate.js';

const MB = Number(process.argv[2] ?? 400);
const REPS = Number(process.argv[3] ?? 2);
const CLI = resolve('dist/cli/index.js');

const pg = await startPostgres({ name: 'jobsbench' });
const s3 = await startS3Pair();
const work = await mkdtemp(join(tmpdir(), 'pg-dr-jobsbench-'));
try {
  const g = await generateDatabase(pg, 'big', MB * 1024 ** 2);
  console.log(
    `database: ${(g.sizeBytes / 1024 ** 2).toFixed(0)} MB (${g.seconds.toFixed(0)} s to generate)`,
  );
  const { identity, recipient } = await ageKeyPair();
  const dest = destinationInputs(s3.primary, s3.secondary);
  const flags = (o: Record<string, string>) => Object.entries(o).map(([k, v]) => `--${k}=${v}`);
  const libpq: Record<string, string> = {};
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: work };
  // Asynchronous: the s3rver pair runs in this process and must keep answering.
  const cli = async (args: string[]) => {
    const t0 = performance.now();
    const r = await execa(process.execPath, [CLI, ...args, '--format=json'], {
      env,
      extendEnv: false,
      reject: false,
    });
    const s = (performance.now() - t0) / 1000;
    if (r.exitCode !== 0)
      throw new Error(`pg-dr ${args[0]} failed: ${String(r.stderr).slice(-2000)}`);
    return s;
  };
  const run = (file: string, args: string[]) => execa(file, args, { env: libpq, extendEnv: false });
  const backupS = await cli([
    'backup',
    ...flags({ 'database-url': pg.url('big'), 'age-recipients': recipient, ...dest }),
  ]);
  console.log(`pg-dr backup: ${backupS.toFixed(1)} s`);
  const bin = (t: string) => join(pg.binDir, t);
  Object.assign(libpq, {
    ...env,
    PGHOST: pg.host,
    PGPORT: String(pg.port),
    PGUSER: pg.user,
    PGPASSWORD: pg.password,
  });
  // A user's local file (pg_dump -Fc to a file: compressed, offsets in its TOC) and an
  // archive written as pg-dr writes it (-Z0 through a pipe: no data offsets).
  const userFile = join(work, 'user.dump');
  await run(bin('pg_dump'), ['-Fc', '-f', userFile, 'big']);
  const pipedFile = join(work, 'piped.dump');
  await run('sh', ['-c', `"${bin('pg_dump')}" -Fc -Z0 big | cat > "${pipedFile}"`]);
  console.log(
    `files: -Fc ${((await stat(userFile)).size / 1e6).toFixed(0)} MB, -Fc -Z0 piped ${((await stat(pipedFile)).size / 1e6).toFixed(0)} MB`,
  );
  let n = 0;
  const fresh = async () => {
    const name = `t${n++}`;
    await pg.createDatabase(name);
    return name;
  };
  const methods: Record<string, () => Promise<number>> = {};
  for (const j of [1, 2]) {
    methods[`pg_restore -j ${j} (local -Fc file)`] = async () => {
      const db = await fresh();
      const t0 = performance.now();
      await run(bin('pg_restore'), ['--no-owner', '--exit-on-error', `-j${j}`, '-d', db, userFile]);
      const s = (performance.now() - t0) / 1000;
      await pg.query('postgres', `DROP DATABASE ${db}`);
      return s;
    };
    methods[`pg_restore -j ${j} (local -Z0 piped file)`] = async () => {
      const db = await fresh();
      const t0 = performance.now();
      await run(bin('pg_restore'), [
        '--no-owner',
        '--exit-on-error',
        `-j${j}`,
        '-d',
        db,
        pipedFile,
      ]);
      const s = (performance.now() - t0) / 1000;
      await pg.query('postgres', `DROP DATABASE ${db}`);
      return s;
    };
    methods[`pg-dr restore restore-jobs ${j}`] = async () => {
      const db = await fresh();
      const s = await cli([
        'restore',
        ...flags({
          'database-url': pg.url(db),
          'age-identity': identity,
          'restore-jobs': String(j),
          ...dest,
        }),
      ]);
      await pg.query('postgres', `DROP DATABASE ${db}`);
      return s;
    };
  }
  const times: Record<string, number[]> = {};
  for (let rep = 0; rep < REPS; rep++)
    for (const [name, m] of Object.entries(methods)) {
      const s = await m();
      times[name] = [...(times[name] ?? []), s];
      console.log(`rep ${rep + 1}: ${name}: ${s.toFixed(1)} s`);
    }
  console.log('\n| method | wall s (each rep) | median |\n|---|---|---:|');
  for (const [name, t] of Object.entries(times)) {
    const sorted = [...t].sort((a, b) => a - b);
    const med =
      sorted.length % 2
        ? sorted[(sorted.length - 1) / 2]
        : ((sorted[sorted.length / 2 - 1] ?? 0) + (sorted[sorted.length / 2] ?? 0)) / 2;
    console.log(
      `| ${name} | ${t.map((x) => x.toFixed(1)).join(', ')} | ${(med ?? 0).toFixed(1)} |`,
    );
  }
} finally {
  await Promise.all([pg.stop(), s3.stop()]);
  await rm(work, { recursive: true, force: true });
}
