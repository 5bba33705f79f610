import { durationScale, mermaidBars } from './history.js';

/**
 * The recovery point the WAL shipping achieved: at any moment, the committed data that a
 * disaster would lose is everything after the newest WAL already stored. A `wal` run stores
 * the WAL up to the server's position when it started (`endAt`, the server's clock), and
 * that is recoverable from the moment the run finished (`finishedAt`). So just before each
 * run finished, the exposure was `finishedAt − endAt of the run before it`; now it is
 * `now − endAt of the newest run`. The worst of these over the last days is the achieved RPO.
 */

/** One shipped run, as the monitor reads it from its record. */
export interface WalRunTimes {
  /** When the WAL it stored ends (the server's time of its end position). */
  readonly endAt: Date;
  /** When its record was stored: from then on, that WAL is recoverable. */
  readonly finishedAt: Date;
}

/** The exposure just before one run finished. */
export interface RpoPoint {
  readonly at: Date;
  readonly seconds: number;
}

export const RPO_DAYS = 7;
const DAY = 24 * 3600 * 1000;

/** The exposure before each run of the last `days` finished, oldest first. */
export function rpoSeries(runs: readonly WalRunTimes[], now: Date, days = RPO_DAYS): RpoPoint[] {
  const sorted = [...runs].sort((a, b) => a.finishedAt.getTime() - b.finishedAt.getTime());
  const from = now.getTime() - days * DAY;
  const points: RpoPoint[] = [];
  for (let i = 1; i < sorted.length; i++) {
    const run = sorted[i] as WalRunTimes;
    if (run.finishedAt.getTime() < from) continue;
    // The newest WAL stored before this run finished: the latest end among the runs before it.
    const before = Math.max(...sorted.slice(0, i).map((r) => r.endAt.getTime()));
    points.push({
      at: run.finishedAt,
      seconds: Math.max(0, (run.finishedAt.getTime() - before) / 1000),
    });
  }
  return points;
}

/** The worst exposure, the median one, and the exposure now. */
export interface RpoSummary {
  readonly worstSeconds: number | null;
  readonly worstAt: Date | null;
  readonly medianSeconds: number | null;
  /** `now − newest endAt`: what a disaster now would lose; null without runs. */
  readonly nowSeconds: number | null;
  readonly runs: number;
}

export function rpoSummary(runs: readonly WalRunTimes[], now: Date, days = RPO_DAYS): RpoSummary {
  const series = rpoSeries(runs, now, days);
  const newest = Math.max(...runs.map((r) => r.endAt.getTime()));
  const nowSeconds = runs.length > 0 ? Math.max(0, (now.getTime() - newest) / 1000) : null;
  const candidates = [
    ...series,
    ...(nowSeconds !== null ? [{ at: now, seconds: nowSeconds }] : []),
  ];
  const worst = candidates.reduce<RpoPoint | null>(
    (a, p) => (a && a.seconds >= p.seconds ? a : p),
    null,
  );
  const sorted = series.map((p) => p.seconds).sort((a, b) => a - b);
  return {
    worstSeconds: worst?.seconds ?? null,
    worstAt: worst?.at ?? null,
    medianSeconds:
      sorted.length > 0 ? (sorted[Math.floor((sorted.length - 1) / 2)] as number) : null,
    nowSeconds,
    runs: series.length,
  };
}

/** The worst exposure per UTC day of the last `days`, as a bar chart, and a line that says it. */
export function rpoChart(runs: readonly WalRunTimes[], now: Date, days = RPO_DAYS): string {
  const series = rpoSeries(runs, now, days);
  const labels: string[] = [];
  const worst: number[] = [];
  for (let d = days - 1; d >= 0; d--) {
    const day = new Date(now.getTime() - d * DAY).toISOString().slice(0, 10);
    labels.push(day.slice(5));
    const of = series.filter((p) => p.at.toISOString().slice(0, 10) === day).map((p) => p.seconds);
    worst.push(of.length > 0 ? Math.max(...of) : 0);
  }
  const s = rpoSummary(runs, now, days);
  const line =
    s.worstSeconds === null
      ? 'No WAL run recorded yet.'
      : `Achieved RPO over ${days} days: worst **${rpoText(s.worstSeconds)}**${s.worstAt ? ` (${s.worstAt.toISOString().slice(0, 16).replace('T', ' ')} UTC)` : ''}, median ${s.medianSeconds === null ? '—' : rpoText(s.medianSeconds)}, now ${s.nowSeconds === null ? '—' : rpoText(s.nowSeconds)}, over ${s.runs} run(s). A day without runs is 0.`;
  return [
    line,
    '',
    mermaidBars(
      'Worst RPO per day: committed data a disaster would have lost',
      `day (UTC), ${labels[0] ?? ''} to ${labels.at(-1) ?? ''}`,
      labels,
      worst,
      durationScale,
    ),
  ].join('\n');
}

/** `42 s`, `20 min 40 s`, `3 h 5 min`: an RPO to the second while it is short. */
export function rpoText(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 120) return `${s} s`;
  if (s < 2 * 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)} h${m % 60 ? ` ${m % 60} min` : ''}`;
}
