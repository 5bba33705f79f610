import { backupIdTime } from './id.js';
import type { Manifest } from './schema.js';

/** Medians over a period, and their change against the period before. */
export interface TrendFigure {
  readonly current: number | null;
  readonly previous: number | null;
  /** (current − previous) / previous, or null when either is unknown. */
  readonly change: number | null;
}

export interface Trends {
  readonly backups: { readonly current: number; readonly previous: number };
  readonly durationSeconds: TrendFigure;
  /** MB of database per second of dump. */
  readonly dumpMBps: TrendFigure;
  /** Archive bytes ÷ stored bytes (zstd and none only). */
  readonly compressionRatio: TrendFigure;
  /** MB/s of encrypted bytes per destination. */
  readonly uploadMBps: Readonly<Record<string, TrendFigure>>;
}

function median(xs: readonly number[]): number | null {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return null;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function figure(cur: readonly number[], prev: readonly number[]): TrendFigure {
  const current = median(cur);
  const previous = median(prev);
  return {
    current,
    previous,
    change:
      current !== null && previous !== null && previous !== 0
        ? (current - previous) / previous
        : null,
  };
}

/**
 * Figures from the manifests of the last `days` days (at most the last 30 backups) against
 * the `days` before: duration, dump throughput, upload throughput per destination and
 * compression ratio — medians, so one odd night does not swing them.
 */
export function computeTrends(manifests: readonly Manifest[], now: Date, days = 30): Trends {
  const span = days * 24 * 3600 * 1000;
  const byAge = [...manifests].sort((a, b) => (a.id < b.id ? 1 : -1));
  const current = byAge
    .filter((m) => now.getTime() - backupIdTime(m.id).getTime() <= span)
    .slice(0, 30);
  const previous = byAge.filter((m) => {
    const age = now.getTime() - backupIdTime(m.id).getTime();
    return age > span && age <= 2 * span;
  });
  const pick = (ms: readonly Manifest[], f: (m: Manifest) => number | null) =>
    ms.map(f).filter((x): x is number => x !== null);
  const dump = (m: Manifest) =>
    m.database.dumpSeconds > 0 ? m.database.sizeBytes / 1e6 / m.database.dumpSeconds : null;
  const ratio = (m: Manifest) => {
    const db = m.objects.find((o) => o.kind === 'database');
    return db && m.database.archiveBytes ? m.database.archiveBytes / db.encrypted.bytes : null;
  };
  const upload = (name: string) => (m: Manifest) => {
    const d = m.destinations.find((x) => x.name === name);
    const bytes = m.objects.reduce((s, o) => s + o.encrypted.bytes, 0);
    return d?.ok && d.uploadSeconds > 0 ? bytes / 1e6 / d.uploadSeconds : null;
  };
  const names = [...new Set(byAge.flatMap((m) => m.destinations.map((d) => d.name)))];
  return {
    backups: { current: current.length, previous: previous.length },
    durationSeconds: figure(
      pick(current, (m) => m.durationSeconds),
      pick(previous, (m) => m.durationSeconds),
    ),
    dumpMBps: figure(pick(current, dump), pick(previous, dump)),
    compressionRatio: figure(pick(current, ratio), pick(previous, ratio)),
    uploadMBps: Object.fromEntries(
      names.map((n) => [n, figure(pick(current, upload(n)), pick(previous, upload(n)))]),
    ),
  };
}
