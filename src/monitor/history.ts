import { backupIdTime } from '../manifest/id.js';
import type { MonitorView } from './view.js';

const DAY = 24 * 3600 * 1000;

/** The nights the monitor's chart shows. */
export const HISTORY_NIGHTS = 30;

/** One UTC day of the last {@link HISTORY_NIGHTS}, oldest first. */
export interface Night {
  /** `YYYY-MM-DD` (UTC). */
  readonly day: string;
  /** The day's newest backup complete somewhere, with its figures from its manifest. */
  readonly backup: {
    readonly id: string;
    readonly durationSeconds: number;
    /** Bytes stored per destination: every object's encrypted size. */
    readonly storedBytes: number;
  } | null;
  /**
   * Why a day has no backup: `missed` (a gap that counts); `today` (its backup may still
   * come); `before-first` (before the first backup found); `thinned` (`keep-daily` days
   * back or more: prune may have removed its backup, so an empty day is not counted as a
   * miss. Prune counts only days that have a backup, so the last `keep-daily` calendar days
   * are always whole, and a miss there is a real one.)
   */
  readonly gap: 'missed' | 'today' | 'before-first' | 'thinned' | null;
}

/**
 * The last {@link HISTORY_NIGHTS} UTC days, each with its newest complete backup, from the
 * manifests the monitor already read (no further request).
 */
export function nightlyHistory(scans: MonitorView['scans'], now: Date, keepDaily: number): Night[] {
  const newestOfDay = new Map<string, NonNullable<Night['backup']>>();
  let first: string | null = null;
  for (const list of scans.values())
    for (const b of list) {
      if (b.problem !== null || !b.manifest || b.future) continue;
      const day = backupIdTime(b.id).toISOString().slice(0, 10);
      if (first === null || day < first) first = day;
      const seen = newestOfDay.get(day);
      if (seen && seen.id >= b.id) continue;
      newestOfDay.set(day, {
        id: b.id,
        durationSeconds: b.manifest.durationSeconds,
        storedBytes: b.manifest.objects.reduce((s, o) => s + o.encrypted.bytes, 0),
      });
    }
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const nights: Night[] = [];
  for (let back = HISTORY_NIGHTS - 1; back >= 0; back--) {
    const day = new Date(today - back * DAY).toISOString().slice(0, 10);
    const backup = newestOfDay.get(day) ?? null;
    let gap: Night['gap'] = null;
    if (!backup)
      gap =
        back === 0
          ? 'today'
          : first === null || day < first
            ? 'before-first'
            : back >= keepDaily
              ? 'thinned'
              : 'missed';
    nights.push({ day, backup, gap });
  }
  return nights;
}

/** A scale for the y-axis: the values divided by `per`, named `unit`. */
export interface Scale {
  readonly unit: string;
  readonly per: number;
}

export function durationScale(maxSeconds: number): Scale {
  if (maxSeconds >= 2 * 3600) return { unit: 'hours', per: 3600 };
  if (maxSeconds >= 120) return { unit: 'minutes', per: 60 };
  return { unit: 'seconds', per: 1 };
}

function sizeScale(maxBytes: number): Scale {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (maxBytes >= 1024 ** (i + 1) && i < units.length - 1) i++;
  return { unit: units[i] as string, per: 1024 ** i };
}

/** Three significant digits, no exponent: what a chart label needs. */
function round(v: number): number {
  if (v === 0) return 0;
  const digits = Math.max(0, 2 - Math.floor(Math.log10(Math.abs(v))));
  return Number(v.toFixed(digits));
}

/** A round top for the y-axis, above the highest bar (1, 2, 2.5 or 5 × a power of ten). */
function axisTop(max: number): number {
  if (max <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  const step = [1, 2, 2.5, 5, 10].find((s) => s * p >= max) ?? 10;
  return round(step * p);
}

/** Wide and low enough for 30 labelled nights; GitHub's blue bars (the default is very pale). */
const CHART_CONFIG = `%%{init: ${JSON.stringify({
  xyChart: { width: 900, height: 320, xAxis: { labelFontSize: 12 } },
  themeVariables: { xyChart: { plotColorPalette: '#0969da' } },
})}}%%`;

/**
 * A night under its bar: the day of the month (30 dates of five characters do not fit
 * under 30 bars), marked ✗ when missed — mermaid draws even a 0 as a sliver as high as
 * half a y-axis label, which the mark tells from a small value.
 */
function label(n: Night): string {
  return `"${n.gap === 'missed' ? '✗' : ''}${Number(n.day.slice(8))}"`;
}

/**
 * One mermaid `xychart-beta` bar chart, a bar per night. Mermaid has no empty value: a
 * night without a backup is 0, which draws no bar, so the night is an empty slot on the
 * axis (a line would draw a false dip to zero, and a second "missed" series on the same
 * axis would read as a value, there being no legend).
 */
function barChart(
  title: string,
  nights: readonly Night[],
  value: (b: NonNullable<Night['backup']>) => number,
  scaleOf: (max: number) => Scale,
): string {
  return mermaidBars(
    title,
    `night (UTC), ${nights[0]?.day ?? ''} to ${nights.at(-1)?.day ?? ''}`,
    nights.map(label),
    nights.map((n) => (n.backup ? value(n.backup) : 0)),
    scaleOf,
  );
}

/** A mermaid bar chart of `raw` values under `labels`, scaled to a readable unit. */
export function mermaidBars(
  title: string,
  xAxis: string,
  labels: readonly string[],
  raw: readonly number[],
  scaleOf: (max: number) => Scale,
): string {
  const scale = scaleOf(Math.max(0, ...raw));
  const bars = raw.map((v) => round(v / scale.per));
  return [
    '```mermaid',
    CHART_CONFIG,
    'xychart-beta',
    `  title "${title} (${scale.unit})"`,
    `  x-axis "${xAxis}" [${labels.join(', ')}]`,
    `  y-axis "${scale.unit}" 0 --> ${axisTop(Math.max(0, ...bars))}`,
    `  bar [${bars.join(', ')}]`,
    '```',
  ].join('\n');
}

/** `11-12, 11-13` — or `none`. */
function days(nights: readonly Night[]): string {
  return nights.length === 0 ? 'none' : nights.map((n) => n.day).join(', ');
}

/** What the charts cannot say: which empty nights are missed, which are not. */
export function historyNotes(nights: readonly Night[], keepDaily: number): string[] {
  const missed = nights.filter((n) => n.gap === 'missed');
  const notes = [
    `Missed nights (no complete backup that UTC day): ${missed.length === 0 ? 'none' : `**${missed.length}**: ${days(missed)}`}.`,
  ];
  const thinned = nights.filter((n) => n.gap === 'thinned');
  if (thinned.length > 0)
    notes.push(
      `Not counted as missed: ${thinned.length} nights older than keep-daily (${keepDaily}), where prune keeps one backup a week.`,
    );
  if (nights.at(-1)?.gap === 'today') notes.push('Today has no backup yet.');
  return notes;
}

/**
 * The last {@link HISTORY_NIGHTS} nights as two mermaid bar charts (duration, stored
 * size) and the notes that name the missed nights: markdown for the job summary and the
 * `backup-stale` / `backup-degraded` issues. Nothing in it comes from outside pg-dr but
 * numbers and dates.
 */
export function historyChart(nights: readonly Night[], keepDaily: number): string {
  const from = nights[0]?.day ?? '';
  const to = nights.at(-1)?.day ?? '';
  return [
    `Each bar is the newest complete backup of a UTC night, ${from} to ${to}. A night without one is 0 (mermaid draws a stub); ✗ marks a missed night.`,
    '',
    barChart('Backup duration per night', nights, (b) => b.durationSeconds, durationScale),
    '',
    barChart('Stored size per night', nights, (b) => b.storedBytes, sizeScale),
    '',
    historyNotes(nights, keepDaily).join(' '),
  ].join('\n');
}
