// Turns the benchmark's runs into tables (markdown) and checks the targets of issue 9.
import type { Machine } from './machine.js';
import type { TreeStats } from './sampler.js';

export const METHODS = {
  floor: 'floor: pg_dump -Fc -Z0 → null',
  native: 'native: pg_dump -Z0 | zstd -T0 -3 | age | tee → 2× aws s3 cp -',
  peer: 'peer: pg_dump -Fc (gzip) → file, gpg AES256, aws s3 cp ×2 in turn',
  'pg-dr zstd': 'pg-dr backup, compression zstd (default)',
  'pg-dr gzip': 'pg-dr backup, compression gzip',
  'pg-dr none': 'pg-dr backup, compression none',
  pg_restore: 'pg_restore of the same archive from a local file',
  'pg-dr restore': 'pg-dr restore (download, sha256, age -d, zstd -d, pg_restore)',
  'pg_restore -j 1':
    'pg_restore -j 1 of the same archive from a local file, into a new database (no single transaction)',
  'pg_restore -j 2': 'pg_restore -j 2 of the same archive from a local file, into a new database',
  'pg-dr restore jobs 1':
    'pg-dr restore, restore-jobs 1 (streamed into pg_restore, no temporary file)',
  'pg-dr restore jobs 2':
    'pg-dr restore, restore-jobs 2 (download, sha256, age -d, zstd -d into a temporary file, pg_restore -j 2)',
} as const;
export type Method = keyof typeof METHODS;
export const BACKUP_METHODS: readonly Method[] = [
  'floor',
  'native',
  'peer',
  'pg-dr zstd',
  'pg-dr gzip',
  'pg-dr none',
];
/** Row (2) of issue 16: parallel restore against pg_restore -j from a local file. */
export const PARALLEL_RESTORE_METHODS: readonly Method[] = [
  'pg_restore -j 1',
  'pg_restore -j 2',
  'pg-dr restore jobs 1',
  'pg-dr restore jobs 2',
];
export const RESTORE_METHODS: readonly Method[] = [
  'pg_restore',
  'pg-dr restore',
  ...PARALLEL_RESTORE_METHODS,
];

export interface RunRecord {
  readonly size: string;
  /** A method of METHODS, or a stage name (kind 'stage'). */
  readonly name: string;
  readonly kind: 'method' | 'stage';
  readonly rep: number;
  readonly ok: boolean;
  readonly error: string | null;
  readonly seconds: number;
  readonly stats: TreeStats | null;
  /** /usr/bin/time's maximum resident set size (largest process of the tree), bytes. */
  readonly timeMaxRss: number | null;
  /** CPU seconds of the benchmark process meanwhile (the two s3rver and the sampler). */
  readonly benchCpuSeconds: number;
  /** Bytes stored per destination (the encrypted object). */
  readonly storedBytes: number | null;
  readonly loadBefore: string;
  readonly loadAfter: string;
  /** Stage runs: what the stage process measured itself. */
  readonly stage?: { seconds: number; inBytes: number; outBytes: number; nodeCpuSeconds: number };
}

export interface SizeInfo {
  readonly label: string;
  readonly database: string;
  readonly sizeBytes: number;
  readonly byteaBytes: number;
  readonly archiveBytes: number;
  readonly rows: Readonly<Record<string, number>>;
  readonly generateSeconds: number;
  readonly loadBefore: string;
  loadAfter: string;
}

export interface BenchResult {
  readonly startedAt: string;
  finishedAt: string;
  readonly machine: Machine;
  readonly reps: number;
  readonly command: string;
  readonly sizes: SizeInfo[];
  readonly runs: RunRecord[];
  readonly notes: string[];
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

export interface Summary {
  readonly name: string;
  readonly n: number;
  readonly failed: number;
  readonly seconds: number;
  readonly min: number;
  readonly max: number;
  readonly mbps: number;
  readonly peakTreeRss: number;
  readonly peakProcess: { comm: string; hwm: number };
  readonly tmpPeakBytes: number;
  readonly writeBytes: number;
  readonly storedBytes: number | null;
  readonly cpu: Readonly<Record<string, number>>;
}

export function summarize(
  runs: readonly RunRecord[],
  name: string,
  dbBytes: number,
): Summary | null {
  const all = runs.filter((r) => r.name === name);
  const ok = all.filter((r) => r.ok);
  if (all.length === 0) return null;
  const secs = ok.map((r) => r.seconds);
  const sec = median(secs);
  const cpuKeys = new Set(ok.flatMap((r) => Object.keys(r.stats?.cpuByComm ?? {})));
  const cpu: Record<string, number> = {};
  for (const k of cpuKeys) cpu[k] = median(ok.map((r) => r.stats?.cpuByComm[k] ?? 0));
  cpu['bench (s3rver)'] = median(ok.map((r) => r.benchCpuSeconds));
  let peakProcess = { comm: '', hwm: 0 };
  for (const r of ok) {
    const p = r.stats?.peakProcess;
    if (p && p.hwm > peakProcess.hwm) peakProcess = { ...p };
    // /usr/bin/time's figure is the kernel's peak of its largest descendant: the same
    // process as the sampler's largest, caught even in its last 100 ms.
    if (r.timeMaxRss && r.timeMaxRss > peakProcess.hwm)
      peakProcess = { comm: p?.comm ?? '?', hwm: r.timeMaxRss };
  }
  const stored = ok.map((r) => r.storedBytes).filter((b): b is number => b !== null);
  return {
    name,
    n: ok.length,
    failed: all.length - ok.length,
    seconds: sec,
    min: Math.min(...secs),
    max: Math.max(...secs),
    mbps: dbBytes / 1e6 / sec,
    peakTreeRss: Math.max(0, ...ok.map((r) => r.stats?.peakTreeRss ?? 0)),
    peakProcess,
    tmpPeakBytes: Math.max(0, ...ok.map((r) => r.stats?.tmpPeakBytes ?? 0)),
    writeBytes: Math.max(0, ...ok.map((r) => r.stats?.writeBytes ?? 0)),
    storedBytes: stored.length ? median(stored) : null,
    cpu,
  };
}

const mib = (b: number) => (b / 2 ** 20).toFixed(0);
const mb = (b: number) => (b / 1e6).toFixed(b < 10e6 ? 2 : 1);
const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '—');
const ratio = (a: Summary | null, b: Summary | null) =>
  a && b && a.n > 0 && b.n > 0 ? `${f(a.seconds / b.seconds)}×` : '—';
const bytesCell = (b: number) =>
  b === 0 ? '0' : b < 1e6 ? `${(b / 1024).toFixed(0)} KiB` : `${mb(b)} MB`;

function cpuCell(cpu: Readonly<Record<string, number>>): string {
  // The four biggest consumers, e.g. "node 5.1, zstd 4.0, server:postgres 3.2".
  return Object.entries(cpu)
    .filter(([, v]) => v >= 0.05)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6)
    .map(([k, v]) => `${k} ${f(v, 1)}`)
    .join(', ');
}

export function sizeTables(result: BenchResult, size: SizeInfo): string {
  const runs = result.runs.filter((r) => r.size === size.label);
  const s = (m: string) => summarize(runs, m, size.sizeBytes);
  const floor = s('floor');
  const native = s('native');
  const peer = s('peer');
  const out: string[] = [];
  out.push(
    `### ${size.label}: database ${mb(size.sizeBytes)} MB (pg_database_size), -Z0 archive ${mb(size.archiveBytes)} MB, random bytea ${mb(size.byteaBytes)} MB (${f((100 * size.byteaBytes) / size.sizeBytes, 0)}%)`,
    '',
    `Rows: ${Object.entries(size.rows)
      .map(([t, n]) => `${t} ${n.toLocaleString('en-US')}`)
      .join(
        ', ',
      )}. Generated in ${f(size.generateSeconds, 0)} s. Load average (1/5/15 min) before: ${size.loadBefore}; after: ${size.loadAfter}.`,
  );
  // Only the methods measured (with --methods, backups may be left out).
  if (BACKUP_METHODS.some((m) => s(m)))
    out.push(
      '',
      '| method | wall s (median) | min–max s | MB/s of db | stored MB | peak RSS, tree (MiB) | largest process (MiB) | temp dir peak | tree disk writes | ×floor | ×native | ×peer |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
  for (const m of BACKUP_METHODS) {
    const x = s(m);
    if (!x) continue;
    const pgdr = m.startsWith('pg-dr');
    out.push(
      `| ${m} | ${f(x.seconds)} | ${f(x.min)}–${f(x.max)} | ${f(x.mbps, 1)} | ${x.storedBytes === null ? '—' : mb(x.storedBytes)} | ${mib(x.peakTreeRss)} | ${mib(x.peakProcess.hwm)} (${x.peakProcess.comm}) | ${bytesCell(x.tmpPeakBytes)} | ${bytesCell(x.writeBytes)} | ${m === 'floor' ? '1.00×' : ratio(x, floor)} | ${pgdr ? ratio(x, native) : '—'} | ${pgdr ? ratio(x, peer) : '—'} |${x.failed ? ` ${x.failed} failed` : ''}`,
    );
  }
  const pr = s('pg_restore');
  const dr = s('pg-dr restore');
  if (pr || dr) {
    out.push(
      '',
      '| restore | wall s (median) | min–max s | MB/s of db | peak RSS, tree (MiB) | largest process (MiB) | temp dir peak | ×pg_restore |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const x of [pr, dr]) {
      if (!x) continue;
      out.push(
        `| ${x.name} | ${f(x.seconds)} | ${f(x.min)}–${f(x.max)} | ${f(x.mbps, 1)} | ${mib(x.peakTreeRss)} | ${mib(x.peakProcess.hwm)} (${x.peakProcess.comm}) | ${bytesCell(x.tmpPeakBytes)} | ${x === pr ? '1.00×' : ratio(x, pr)} |${x.failed ? ` ${x.failed} failed` : ''}`,
      );
    }
  }
  const parallel = PARALLEL_RESTORE_METHODS.map(s).filter((x): x is Summary => x !== null);
  if (parallel.length > 0) {
    const ref = s('pg_restore -j 2');
    out.push(
      '',
      '| parallel restore | wall s (median) | min–max s | MB/s of db | peak RSS, tree (MiB) | largest process (MiB) | temp dir peak | ×pg_restore -j 2 |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const x of parallel)
      out.push(
        `| ${x.name} | ${f(x.seconds)} | ${f(x.min)}–${f(x.max)} | ${f(x.mbps, 1)} | ${mib(x.peakTreeRss)} | ${mib(x.peakProcess.hwm)} (${x.peakProcess.comm}) | ${bytesCell(x.tmpPeakBytes)} | ${x === ref ? '1.00×' : ratio(x, ref)} |${x.failed ? ` ${x.failed} failed` : ''}`,
      );
  }
  out.push(
    '',
    'CPU seconds per process (median; `server:` = PostgreSQL backends, `bench (s3rver)` = both S3 servers):',
    '',
    '| method | CPU s, all processes | ÷ wall = cores busy | CPU s by process |',
    '|---|---:|---:|---|',
  );
  for (const m of [...BACKUP_METHODS, ...RESTORE_METHODS]) {
    const x = s(m);
    if (!x) continue;
    const total = Object.values(x.cpu).reduce((a, b) => a + b, 0);
    out.push(`| ${m} | ${f(total, 1)} | ${f(total / x.seconds, 2)} | ${cpuCell(x.cpu)} |`);
  }
  const stages = [...new Set(runs.filter((r) => r.kind === 'stage').map((r) => r.name))];
  if (stages.length > 0) {
    out.push(
      '',
      `#### Stage breakdown (${size.label})`,
      '',
      "Each row is pg-dr's own modules (startDump, encryptStream, DigestStream, replicate) run in a separate process up to that stage; `+` rows are cumulative, `x:` rows change one thing in the full pipeline, `iso:` rows run one stage alone on in-memory data.",
      '',
      '| stage | wall s (median) | MB/s of db | Δ s vs previous | in MB | out MB | MB/s of its input | node CPU s | CPU s by process |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---|',
    );
    let prev: number | null = null;
    for (const name of stages) {
      const rs = runs.filter((r) => r.name === name && r.ok && r.stage);
      const all = runs.filter((r) => r.name === name);
      if (rs.length === 0) {
        out.push(`| ${name} | failed | | | | | | | ${all[0]?.error ?? ''} |`);
        continue;
      }
      const sec = median(rs.map((r) => r.stage?.seconds ?? 0));
      const inB = median(rs.map((r) => r.stage?.inBytes ?? 0));
      const outB = median(rs.map((r) => r.stage?.outBytes ?? 0));
      const x = summarize(runs, name, size.sizeBytes);
      const iso = name.startsWith('iso:');
      const cumulative = name === 'pg_dump → node' || name.startsWith('+');
      const delta =
        cumulative && prev !== null ? `${sec >= prev ? '+' : '−'}${f(Math.abs(sec - prev))}` : '';
      if (cumulative) prev = sec;
      out.push(
        `| ${name} | ${f(sec)} | ${iso ? '—' : f(size.sizeBytes / 1e6 / sec, 1)} | ${delta} | ${mb(inB)} | ${mb(outB)} | ${f(inB / 1e6 / sec, 1)} | ${f(median(rs.map((r) => r.stage?.nodeCpuSeconds ?? 0)), 1)} | ${x ? cpuCell(x.cpu) : ''} |`,
      );
    }
  }
  return out.join('\n');
}

export interface TargetCheck {
  readonly target: string;
  readonly value: string;
  readonly pass: boolean | null;
}

/** The targets of issue 9, judged on the largest size measured (and across sizes for RSS). */
export function checkTargets(result: BenchResult): TargetCheck[] {
  const measured = result.sizes.filter((z) => result.runs.some((r) => r.size === z.label && r.ok));
  const largest = [...measured].sort((a, b) => b.sizeBytes - a.sizeBytes)[0];
  if (!largest) return [];
  const at = (z: SizeInfo, m: string) =>
    summarize(
      result.runs.filter((r) => r.size === z.label),
      m,
      z.sizeBytes,
    );
  const on = `at ${largest.label} (${mb(largest.sizeBytes)} MB)`;
  const out: TargetCheck[] = [];
  const dr = at(largest, 'pg-dr zstd');
  const native = at(largest, 'native');
  const peer = at(largest, 'peer');
  if (dr && native)
    out.push({
      target: `pg-dr backup ≤ 1.15× native pipeline ${on}`,
      value: `${f(dr.seconds)} s / ${f(native.seconds)} s = ${f(dr.seconds / native.seconds)}×`,
      pass: dr.seconds / native.seconds <= 1.15,
    });
  if (dr && peer)
    out.push({
      target: `pg-dr backup ≤ 0.5× peer pipeline ${on}`,
      value: `${f(dr.seconds)} s / ${f(peer.seconds)} s = ${f(dr.seconds / peer.seconds)}×`,
      pass: dr.seconds / peer.seconds <= 0.5,
    });
  const rss = measured.flatMap((z) =>
    ['pg-dr zstd', 'pg-dr gzip', 'pg-dr none'].flatMap((m) => {
      const x = at(z, m);
      return x && x.n > 0 ? [{ size: z, m, rss: x.peakTreeRss }] : [];
    }),
  );
  if (rss.length > 0) {
    const worst = Math.max(...rss.map((r) => r.rss));
    out.push({
      target: 'peak RSS of the pg-dr process tree ≤ 300 MiB (every size, every compression)',
      value: rss.map((r) => `${r.size.label} ${r.m.slice(6)} ${mib(r.rss)}`).join(', '),
      pass: worst <= 300 * 2 ** 20,
    });
    const bySize = measured
      .map((z) => ({ z, x: at(z, 'pg-dr zstd') }))
      .filter((e) => e.x && e.x.n > 0) as { z: SizeInfo; x: Summary }[];
    if (bySize.length >= 2) {
      const sorted = bySize.sort((a, b) => a.z.sizeBytes - b.z.sizeBytes);
      const lo = sorted[sorted.length - 2] as { z: SizeInfo; x: Summary };
      const hi = sorted[sorted.length - 1] as { z: SizeInfo; x: Summary };
      const growth = hi.x.peakTreeRss / lo.x.peakTreeRss - 1;
      out.push({
        target: 'peak RSS within 20% between the two sizes (pg-dr zstd)',
        value: `${lo.z.label} ${mib(lo.x.peakTreeRss)} MiB → ${hi.z.label} ${mib(hi.x.peakTreeRss)} MiB (${growth >= 0 ? '+' : ''}${f(100 * growth, 0)}%)`,
        pass: Math.abs(growth) <= 0.2,
      });
    } else {
      out.push({
        target: 'peak RSS within 20% between the two sizes',
        value: 'only one size measured',
        pass: null,
      });
    }
  }
  const temp = measured.flatMap((z) =>
    ['pg-dr zstd', 'pg-dr gzip', 'pg-dr none'].flatMap((m) => {
      const x = at(z, m);
      return x && x.n > 0 ? [{ z, m, tmp: x.tmpPeakBytes, w: x.writeBytes }] : [];
    }),
  );
  if (temp.length > 0)
    out.push({
      target: 'zero bytes of temporary files for the dump (temp dir, and disk writes of the tree)',
      value: `temp dir peak max ${bytesCell(Math.max(...temp.map((t) => t.tmp)))}, disk writes max ${bytesCell(Math.max(...temp.map((t) => t.w)))}`,
      pass: temp.every((t) => t.tmp === 0 && t.w === 0),
    });
  const rr = at(largest, 'pg-dr restore');
  const pr = at(largest, 'pg_restore');
  if (rr && pr)
    out.push({
      target: `restore ≤ 1.3× pg_restore from a local file ${on}`,
      value: `${f(rr.seconds)} s / ${f(pr.seconds)} s = ${f(rr.seconds / pr.seconds)}×`,
      pass: rr.seconds / pr.seconds <= 1.3,
    });
  const j2 = at(largest, 'pg-dr restore jobs 2');
  const pj2 = at(largest, 'pg_restore -j 2');
  if (j2 && pj2 && j2.n > 0 && pj2.n > 0)
    out.push({
      target: `pg-dr restore-jobs 2 ≤ 1.2× pg_restore -j 2 from a local file (download and decryption included) ${on}`,
      value: `${f(j2.seconds)} s / ${f(pj2.seconds)} s = ${f(j2.seconds / pj2.seconds)}×`,
      pass: j2.seconds / pj2.seconds <= 1.2,
    });
  return out;
}

export function renderReport(result: BenchResult): string {
  const m = result.machine;
  const out: string[] = [
    `## Results (${result.startedAt} → ${result.finishedAt})`,
    '',
    `\`${result.command}\` — ${result.reps} repetition(s) per method, alternating (the order rotates each repetition), median reported.`,
    '',
    `Machine: ${m.cpus} CPUs (${m.cpuModel}), ${m.ramGiB} GiB RAM, ${m.kernel}.`,
    '',
    '| tool | version |',
    '|---|---|',
    ...Object.entries(m.versions).map(([k, v]) => `| ${k} | ${v} |`),
    '',
  ];
  for (const z of result.sizes) {
    if (!result.runs.some((r) => r.size === z.label)) continue;
    out.push(sizeTables(result, z), '');
  }
  const targets = checkTargets(result);
  if (targets.length > 0) {
    out.push('### Targets', '', '| target | measured | result |', '|---|---|---|');
    for (const t of targets)
      out.push(
        `| ${t.target} | ${t.value} | ${t.pass === null ? 'n/a' : t.pass ? 'PASS' : 'MISS'} |`,
      );
    out.push('');
  }
  if (result.notes.length > 0) out.push('Notes:', '', ...result.notes.map((n) => `- ${n}`), '');
  return out.join('\n');
}
