// The benchmark itself is not run in CI (its figures are in BENCHMARKS.md); this runs it
// in its tiny mode, so `npm run bench` keeps working: every method and every stage of
// the breakdown must report positive figures, and the targets must be judged.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKUP_METHODS, type BenchResult, RESTORE_METHODS } from '../../scripts/bench/report.js';
import { CORE_STAGES } from '../../scripts/bench/stages.js';

/** The cells of the markdown table row whose first cell is `name`. */
function row(md: string, name: string): string[] {
  const line = md.split('\n').find((l) => l.startsWith(`| ${name} |`));
  if (!line) throw new Error(`no row for "${name}" in:\n${md}`);
  return line
    .split('|')
    .slice(1, -1)
    .map((c) => c.trim());
}

/** A cell's leading number: "0.81", "1.02×", "123", "105 (node)". */
function num(cell: string | undefined): number {
  return Number(/^-?\d+(?:\.\d+)?/.exec(cell ?? '')?.[0] ?? Number.NaN);
}

describe('npm run bench (tiny smoke run)', () => {
  let dir: string;
  let md: string;
  let result: BenchResult;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pg-dr-bench-smoke-'));
    const out = join(dir, 'bench.md');
    const run = await execa(
      process.execPath,
      [
        '--import',
        'tsx',
        'scripts/bench.ts',
        '--size',
        'tiny',
        '--reps',
        '1',
        '--experiments',
        'off',
        '--out',
        out,
        '--run-timeout',
        '60',
        '--max-minutes',
        '3',
      ],
      {
        reject: false,
        timeout: 170_000,
        env: { PG_DR_TEST_PG_BIN: process.env.PG_DR_TEST_PG_BIN ?? '' },
      },
    );
    expect(run.exitCode, run.stderr.slice(-3000)).toBe(0);
    md = await readFile(out, 'utf8');
    result = JSON.parse(await readFile(join(dir, 'bench.json'), 'utf8')) as BenchResult;
  }, 180_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('has a row with positive figures for every backup method', () => {
    for (const m of BACKUP_METHODS) {
      const [, wall, range, mbps, stored, rss] = row(md, m);
      expect(num(wall), `${m} wall`).toBeGreaterThan(0);
      expect(num(range), `${m} min`).toBeGreaterThan(0);
      expect(num(mbps), `${m} MB/s`).toBeGreaterThan(0);
      expect(num(rss), `${m} RSS`).toBeGreaterThan(0);
      if (m !== 'floor') expect(num(stored), `${m} stored`).toBeGreaterThan(0);
      if (m.startsWith('pg-dr')) {
        const cells = row(md, m);
        for (const ratio of cells.slice(-3)) expect(num(ratio), `${m} ratios`).toBeGreaterThan(0);
      }
    }
  });

  it('has a row with positive figures for every restore and every stage', () => {
    for (const m of RESTORE_METHODS) {
      const [, wall, , mbps, rss, , , ratio] = row(md, m);
      expect(num(wall), `${m} wall`).toBeGreaterThan(0);
      expect(num(mbps), `${m} MB/s`).toBeGreaterThan(0);
      expect(num(rss), `${m} RSS`).toBeGreaterThan(0);
      expect(num(ratio), `${m} ratio`).toBeGreaterThan(0);
    }
    for (const s of CORE_STAGES) {
      const [, wall, mbps, , inMb, outMb] = row(md, s);
      expect(num(wall), `${s} wall`).toBeGreaterThan(0);
      expect(num(mbps), `${s} MB/s`).toBeGreaterThan(0);
      expect(num(inMb), `${s} in`).toBeGreaterThan(0);
      expect(num(outMb), `${s} out`).toBeGreaterThan(0);
    }
  });

  it('measured real work: every run succeeded, data was dumped, pg-dr wrote no temp file', () => {
    expect(result.runs.filter((r) => !r.ok)).toEqual([]);
    const size = result.sizes[0];
    expect(size?.sizeBytes).toBeGreaterThan(8e6);
    expect(size?.archiveBytes).toBeGreaterThan(1e6);
    const full = result.runs.find((r) => r.name === '+ uploads ×2 (= pg-dr pipeline)');
    // The stage reads the whole archive out of pg_dump and stores a compressed, encrypted copy.
    expect(full?.stage?.inBytes).toBeGreaterThan(0.9 * (size?.archiveBytes ?? 0));
    expect(full?.stage?.outBytes).toBeLessThan(full?.stage?.inBytes ?? 0);
    for (const r of result.runs.filter((x) => x.name.startsWith('pg-dr ')))
      if (r.name !== 'pg-dr restore jobs 2') expect(r.stats?.tmpPeakBytes, r.name).toBe(0);
    // restore-jobs 2 goes through its temporary archive file, which the measurement sees.
    const jobs2 = result.runs.find((r) => r.name === 'pg-dr restore jobs 2');
    expect(jobs2?.stats?.tmpPeakBytes).toBeGreaterThan(0);
    // The peer pipeline does write its dump to the temp dir: the measurement can see files.
    const peer = result.runs.find((r) => r.name === 'peer');
    expect(peer?.stats?.tmpPeakBytes).toBeGreaterThan(0);
  });

  it('judges the targets', () => {
    expect(md).toContain('### Targets');
    expect(md).toMatch(/\| pg-dr backup ≤ 1\.15× native pipeline .* \| (PASS|MISS) \|/);
    expect(md).toMatch(/\| restore ≤ 1\.3× pg_restore .* \| (PASS|MISS) \|/);
    expect(md).toMatch(
      /\| pg-dr restore-jobs 2 ≤ 1\.2× pg_restore -j 2 .* \| \d+\.\d+ s \/ \d+\.\d+ s = \d+\.\d+× \| (PASS|MISS) \|/,
    );
  });
});

describe('npm run bench:tunnel (tiny smoke run)', () => {
  it('measures setup time and throughput through the tunnel and directly, and writes nothing with --no-write', async () => {
    const before = await readFile('BENCHMARKS.md', 'utf8');
    const run = await execa(
      process.execPath,
      ['--import', 'tsx', 'scripts/bench-tunnel.ts', '--rows', '5000', '--no-write'],
      {
        reject: false,
        timeout: 170_000,
        env: { PG_DR_TEST_PG_BIN: process.env.PG_DR_TEST_PG_BIN ?? '' },
      },
    );
    expect(run.exitCode, run.stderr.slice(-3000)).toBe(0);
    const figures = (re: RegExp) => Number(re.exec(run.stdout)?.[1]);
    expect(figures(/tunnel setup \(ed25519, loopback sshd\): (\d+) ms/)).toBeGreaterThan(0);
    expect(figures(/direct (\d+\.\d+) s = [\d.]+ MB\/s; through the tunnel/)).toBeGreaterThan(0);
    expect(figures(/through the tunnel (\d+\.\d+) s = [\d.]+ MB\/s \(\*\*/)).toBeGreaterThan(0);
    expect(figures(/Bare `pg_dump -Fc -Z0`.*direct (\d+\.\d+) s/)).toBeGreaterThan(0);
    expect(await readFile('BENCHMARKS.md', 'utf8')).toBe(before);
  }, 180_000);
});

describe('npm run bench:catalog (tiny smoke run)', () => {
  it('measures list, monitor and prune --dry-run over planted backups, and writes nothing with --no-write', async () => {
    const before = await readFile('BENCHMARKS.md', 'utf8');
    const run = await execa(
      process.execPath,
      ['--import', 'tsx', 'scripts/bench-catalog.ts', '--folders', '20', '--no-write'],
      { reject: false, timeout: 170_000 },
    );
    expect(run.exitCode, run.stderr.slice(-3000)).toBe(0);
    // The script fails unless list found every planted backup complete at both destinations.
    expect(run.stdout).toMatch(/^- 20 backup folders per destination \(120 objects each/m);
    for (const command of ['list', 'monitor', 'prune --dry-run']) {
      const m = new RegExp(
        `^- .*\`${command}\`: (\\d+\\.\\d+) s, peak RSS (\\d+) MiB, CPU (\\d+\\.\\d+) s\\.$`,
        'm',
      ).exec(run.stdout);
      expect(Number(m?.[1]), `${command} seconds`).toBeGreaterThan(0);
      expect(Number(m?.[2]), `${command} RSS`).toBeGreaterThan(0);
      expect(Number(m?.[3]), `${command} CPU`).toBeGreaterThan(0);
    }
    expect(await readFile('BENCHMARKS.md', 'utf8')).toBe(before);
  }, 180_000);
});

describe('npm run bench:tenants (tiny smoke run)', () => {
  it('backs up, drills and restores 20 tenant schemas on default servers, side by side with pg_dump/pg_restore, and writes nothing with --no-write', async () => {
    const before = await readFile('BENCHMARKS.md', 'utf8');
    const run = await execa(
      process.execPath,
      [
        '--import',
        'tsx',
        'scripts/bench-tenants.ts',
        '--schemas',
        '20',
        '--reps',
        '1',
        '--no-write',
      ],
      { reject: false, timeout: 170_000 },
    );
    expect(run.exitCode, run.stderr.slice(-3000)).toBe(0);
    expect(run.stdout).toMatch(/^- Database: 20 schemas × 6 tables = \*\*120 tables\*\*/m);
    const steps = ['pg-dr `backup`', 'plain `pg_dump', 'pg-dr `verify`', 'pg-dr `restore`'];
    // | step | wall s | tree RSS | largest process | outcome |
    for (const step of [...steps, 'plain `pg_restore --exit-on-error`']) {
      const line = run.stdout.split('\n').find((l) => l.startsWith(`| ${step}`));
      const cells = (line ?? '').split('|').map((c) => c.trim());
      expect(num(cells[2]), `${step} seconds`).toBeGreaterThan(0);
      expect(num(cells[3]), `${step} tree RSS`).toBeGreaterThan(0);
      expect(cells[5], step).toMatch(/^ok/);
    }
    // Both restored databases were counted table by table against the source.
    expect(run.stdout.match(/ok; 120 tables, every row count equal to the source's/g)).toHaveLength(
      2,
    );
    expect(run.stdout).toMatch(/"tables":120,"mismatches":\[\]/);
    expect(run.stdout).toMatch(/Target row 1 .*: \*\*PASS\*\*/);
    expect(run.stdout).toMatch(/Target row 4 .*: \*\*(PASS|MISS)\*\*/);
    expect(await readFile('BENCHMARKS.md', 'utf8')).toBe(before);
  }, 180_000);
});
