import { createHash } from 'node:crypto';
import { z } from 'zod';
import { VERSION } from '../version.js';

/** The alert keys pg-dr raises; `destination-unreachable` is per destination. */
export const ALERT_KEYS = [
  'backup-failed',
  'backup-degraded',
  'backup-changed',
  'backup-stale',
  'destination-unreachable',
  'verification-failed',
  'verification-stale',
  'low-success-rate',
  'backup-workflow-missing',
  'untrusted-objects',
  'wal-failed',
  'wal-degraded',
  'wal-stale',
] as const;
export type AlertKind = (typeof ALERT_KEYS)[number];

/**
 * The key of one alert (one open issue per key): a kind, or `destination-unreachable:<name>`
 * per destination. Typed so that a misspelt key fails to compile: a `clear()` with a typo
 * would otherwise leave its issue open forever.
 */
export type AlertKey =
  | Exclude<AlertKind, 'destination-unreachable'>
  | `destination-unreachable:${string}`;

/** `destination-unreachable:<name>` — one issue per destination. */
export function destinationUnreachableKey(
  destination: string,
): `destination-unreachable:${string}` {
  return `destination-unreachable:${destination}`;
}

/** A kind, optionally `:` and a destination-like name. Nothing that could break a marker. */
const KEY = /^[a-z][a-z0-9-]{0,62}(?::[A-Za-z0-9][A-Za-z0-9_.-]{0,62})?$/;

export function isValidAlertKey(key: string): boolean {
  return KEY.test(key);
}

/** A condition that should have an open issue while it lasts. */
export interface AlertCondition {
  /** e.g. `backup-stale`, `destination-unreachable:r2`. One open issue per key. */
  key: AlertKey;
  /** Issue title, e.g. `Backups are stale: none for 26 hours`. */
  title: string;
  /** What is wrong, markdown. Pre-redacted: no secrets. */
  detail: string;
  /**
   * A comparable figure (failure count, days stale, success-rate %). A comment is posted
   * whenever it is worse than the figure a person was last told about, so keep it coarse:
   * hours-stale would comment every hour, whole days would not.
   */
  figure?: number;
  /** Which way `figure` gets worse; default `higher`. */
  worseWhen?: 'higher' | 'lower';
  /**
   * What counts as "changed" for a comment. Default: `detail` with numbers, times, backup
   * ids and hashes blanked, so "26 hours" → "27 hours" is no news but a new error is.
   */
  fingerprint?: string;
  /**
   * When the condition began (ISO time), when the check can tell: for `backup-stale`, the
   * newest backup's time plus the limit. Else the first run that saw it. Shown as "Since".
   */
  since?: string;
  /** The newest backup that is fine; null when there is none, undefined when not known. */
  lastGood?: { id: string; time: string; where: readonly string[] } | null;
  /** What a person should do next, markdown. */
  nextStep: string;
  /**
   * The last nights as a picture (markdown pg-dr wrote: mermaid charts of numbers and dates),
   * shown in the issue body under its own heading. Not part of the fingerprint: a new night
   * in the chart is no news.
   */
  chart?: string;
}

/** What the feed remembers between runs, in a hidden comment of the issue body. */
const AlertState = z.object({
  v: z.literal(1),
  /** First seen (ISO time), kept across updates. */
  since: z.string(),
  /** Last raised (ISO time). */
  seen: z.string(),
  /** Fingerprint (hash) of the last detail. */
  fp: z.string(),
  /** Current figure, if any. */
  fig: z.number().nullable(),
  /** The figure a person was last told about (opened or commented), if any. */
  told: z.number().nullable(),
});
export type AlertState = z.infer<typeof AlertState>;

const MARKER = /<!-- pg-dr:alert key=(\S+) -->/;
const STATE = /<!-- pg-dr:state (\{[^<>]*\}) -->/;

export function renderMarker(key: string): string {
  return `<!-- pg-dr:alert key=${key} -->`;
}

/** The alert key of an issue body written by pg-dr, or null. */
export function parseMarker(body: string | null | undefined): string | null {
  const key = MARKER.exec(body ?? '')?.[1];
  return key !== undefined && isValidAlertKey(key) ? key : null;
}

export function renderState(state: AlertState): string {
  return `<!-- pg-dr:state ${JSON.stringify(state)} -->`;
}

/** The machine state of an issue body, or null when missing or edited beyond repair. */
export function parseState(body: string | null | undefined): AlertState | null {
  const json = STATE.exec(body ?? '')?.[1];
  if (json === undefined) return null;
  try {
    const parsed = AlertState.safeParse(JSON.parse(json));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** Blanks what changes on every run of the same condition, then hashes. */
export function fingerprintOf(c: Pick<AlertCondition, 'detail' | 'fingerprint'>): string {
  const text =
    c.fingerprint ??
    c.detail
      .toLowerCase()
      .replace(/\d{8}t\d{6}z-[0-9a-f]{6}/g, '<id>')
      .replace(
        /\d{4}-\d\d-\d\d[t ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:z|[+-]\d\d:?\d\d| utc)?/g,
        '<time>',
      )
      .replace(/\b[0-9a-f]{7,}\b/g, '<hex>')
      .replace(/\d+(?:[.,]\d+)*/g, '#')
      .replace(/\s+/g, ' ')
      .trim();
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

export type CommentReason = 'worse' | 'changed';

/**
 * Whether a recurring condition is news: `worse` when the figure is worse than the one a
 * person was last told, `changed` when the fingerprint differs, else null (update quietly).
 * An issue whose state was lost (edited by hand) is updated quietly once.
 */
export function decide(
  prev: AlertState | null,
  c: AlertCondition,
  now: Date,
  since: string,
): { reason: CommentReason | null; next: AlertState } {
  const fp = fingerprintOf(c);
  const fig = c.figure !== undefined && Number.isFinite(c.figure) ? c.figure : null;
  let reason: CommentReason | null = null;
  if (prev !== null) {
    if (fig !== null && prev.told !== null && isWorse(fig, prev.told, c.worseWhen ?? 'higher'))
      reason = 'worse';
    else if (fp !== prev.fp) reason = 'changed';
  }
  const told = reason !== null ? fig : (prev?.told ?? fig);
  return {
    reason,
    next: { v: 1, since: c.since ?? prev?.since ?? since, seen: now.toISOString(), fp, fig, told },
  };
}

export function isWorse(value: number, than: number, worseWhen: 'higher' | 'lower'): boolean {
  return worseWhen === 'higher' ? value > than : value < than;
}

/** State of a newly opened issue. */
export function initialState(c: AlertCondition, now: Date): AlertState {
  const fig = c.figure !== undefined && Number.isFinite(c.figure) ? c.figure : null;
  const iso = now.toISOString();
  return { v: 1, since: c.since ?? iso, seen: iso, fp: fingerprintOf(c), fig, told: fig };
}

/** GitHub caps issue bodies at 65 536 characters; leave room for the rest. */
const MAX_DETAIL = 30_000;
const MAX_TITLE = 250;

export function renderTitle(c: AlertCondition): string {
  const t = c.title.replace(/\s+/g, ' ').trim();
  return t.length > MAX_TITLE ? `${t.slice(0, MAX_TITLE - 1)}…` : t;
}

/** The issue body a person reads, with the marker and state hidden at the top. */
export function renderBody(
  c: AlertCondition,
  state: AlertState,
  runUrl: string | null,
  now: Date,
): string {
  const detail =
    c.detail.length > MAX_DETAIL ? `${c.detail.slice(0, MAX_DETAIL)}\n\n… (truncated)` : c.detail;
  return [
    renderMarker(c.key),
    renderState(state),
    '',
    '### What is wrong',
    '',
    detail.trim(),
    '',
    ...(c.chart !== undefined ? ['### Night by night', '', c.chart.trim(), ''] : []),
    '### Since',
    '',
    `${formatTime(state.since)} — ${formatDuration(now.getTime() - Date.parse(state.since))} as of the last check (${formatTime(state.seen)}).`,
    '',
    '### Last good backup',
    '',
    renderLastGood(c.lastGood, now),
    '',
    '### Run',
    '',
    runUrl !== null ? `[The run that last checked](${runUrl})` : 'Not run from GitHub Actions.',
    '',
    '### Next step',
    '',
    c.nextStep.trim(),
    '',
    '---',
    `<sub>Kept up to date by pg-dr ${VERSION} (alert \`${c.key}\`): updated on every check, commented on when it changes or gets worse, closed when it recovers. Keep the hidden markers at the top.</sub>`,
    '',
  ].join('\n');
}

function renderLastGood(lastGood: AlertCondition['lastGood'], now: Date): string {
  if (lastGood === undefined) return 'Not known to this check.';
  if (lastGood === null) return '**None.** No complete backup was found.';
  const age = now.getTime() - Date.parse(lastGood.time);
  const where = lastGood.where.length > 0 ? lastGood.where.map((w) => `**${w}**`).join(', ') : '—';
  return `\`${lastGood.id}\`, finished ${formatTime(lastGood.time)} (${formatDuration(age)} ago), stored at ${where}.`;
}

/** The comment posted on a recurring condition that is news. */
export function renderChangeComment(
  reason: CommentReason,
  c: AlertCondition,
  prev: AlertState | null,
  runUrl: string | null,
  now: Date,
): string {
  const head =
    reason === 'worse'
      ? `⚠️ **Worse** than last reported (${prev?.told ?? '?'} → ${c.figure ?? '?'}).`
      : '⚠️ **Changed** since last reported.';
  return [head, '', c.detail.slice(0, MAX_DETAIL).trim(), '', footer(runUrl, now)].join('\n');
}

/** The comment posted before closing a recovered condition. */
export function renderRecoveryComment(
  recovery: string,
  since: string | null,
  runUrl: string | null,
  now: Date,
): string {
  const lines = [`✅ Recovered: ${recovery.trim()}`, ''];
  if (since !== null)
    lines.push(
      `Open since ${formatTime(since)} (${formatDuration(now.getTime() - Date.parse(since))}).`,
    );
  lines.push(footer(runUrl, now));
  return lines.join('\n');
}

function footer(runUrl: string | null, now: Date): string {
  return runUrl !== null
    ? `Checked ${formatTime(now.toISOString())} by [this run](${runUrl}).`
    : `Checked ${formatTime(now.toISOString())}.`;
}

/** `2025-03-01 04:05 UTC`. */
export function formatTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/**
 * An age or a duration as a person reads it: `3 d 4 h`, `5 h 12 min`, `7 min`, `under a
 * minute`. The one format of every age pg-dr shows (monitor summary, issue bodies).
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 60_000) return 'under a minute';
  const min = Math.floor(ms / 60_000);
  const d = Math.floor(min / 1440);
  const h = Math.floor((min % 1440) / 60);
  const m = min % 60;
  if (d > 0) return h > 0 ? `${d} d ${h} h` : `${d} d`;
  if (h > 0) return m > 0 ? `${h} h ${m} min` : `${h} h`;
  return `${m} min`;
}
