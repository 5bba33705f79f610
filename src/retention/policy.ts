/**
 * restic's `forget --keep-*` policy, over backup times in UTC. Pure: no clock, no I/O.
 *
 * Semantics follow restic's manual ("Removing snapshots according to a policy",
 * doc/060_forget.rst) and its implementation (`ApplyPolicy` in
 * internal/restic/snapshot_policy.go, restic ≥ 0.17):
 *
 * - Backups are walked newest first. Each rule (last, daily, weekly, monthly, yearly)
 *   keeps the newest backup of each period and counts that period; periods are counted
 *   only when they HAVE a backup ("for the last n days which have one or more snapshots,
 *   keep only the most recent one for each day"), so a month with no backups costs the
 *   monthly rule nothing. Periods are calendar periods, not relative to when prune runs.
 * - A backup kept by any rule stays (the rules are ORed).
 * - Weeks are ISO 8601 weeks (Monday 00:00 to Sunday 23:59:59, UTC), labelled by their
 *   ISO week-year: 2027-01-01 (a Friday) is in 2026-W53.
 * - A rule of 0 keeps nothing; when every rule is 0 the policy is empty and, like restic,
 *   everything is kept (restic refuses to act on an empty policy).
 * - If a rule still has periods left when the walk reaches the oldest backup, that
 *   oldest backup is kept too (restic 0.17, PR #4366), so history is as long as possible
 *   while the rules are not yet filled. When it shares its period with the backup the rule
 *   already kept, the reason is prefixed `oldest` (restic PR #5039).
 */

/** How many periods each rule keeps; whole numbers ≥ 0. */
export interface RetentionRules {
  readonly last: number;
  readonly daily: number;
  readonly weekly: number;
  readonly monthly: number;
  readonly yearly: number;
}

export interface TimedBackup {
  readonly id: string;
  readonly time: Date;
}

export interface PolicyResult {
  /** Kept ids, newest first, with why: `last`, `daily 2026-11-25`, `weekly 2026-W48`, `monthly 2026-11`, `yearly 2026`. */
  readonly keep: Map<string, string[]>;
  /** Ids no rule keeps, newest first. */
  readonly remove: string[];
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** The UTC calendar day, `2026-11-25`. */
export function utcDay(t: Date): string {
  return `${t.getUTCFullYear()}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())}`;
}

/** The ISO 8601 week in UTC, `2026-W48`; the year is the ISO week-year. */
export function isoWeek(t: Date): string {
  const day = Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate());
  const weekday = new Date(day).getUTCDay() || 7; // Monday 1 … Sunday 7
  // The Thursday of this week decides the week-year.
  const thursday = new Date(day + (4 - weekday) * 86_400_000);
  const year = thursday.getUTCFullYear();
  const week = Math.floor((thursday.getTime() - Date.UTC(year, 0, 1)) / (7 * 86_400_000)) + 1;
  return `${year}-W${pad(week)}`;
}

/** The UTC calendar month, `2026-11`. */
export function utcMonth(t: Date): string {
  return `${t.getUTCFullYear()}-${pad(t.getUTCMonth() + 1)}`;
}

const RULES: readonly {
  readonly rule: keyof RetentionRules;
  readonly label: string;
  /** The period a backup falls in; `null` for `last`, where every backup is its own period. */
  readonly period: ((t: Date) => string) | null;
}[] = [
  { rule: 'last', label: 'last', period: null },
  { rule: 'daily', label: 'daily', period: utcDay },
  { rule: 'weekly', label: 'weekly', period: isoWeek },
  { rule: 'monthly', label: 'monthly', period: utcMonth },
  { rule: 'yearly', label: 'yearly', period: (t) => String(t.getUTCFullYear()) },
];

/** Newest first; ties (same second) by id, which then sorts by its random tail. */
export function newestFirst(a: TimedBackup, b: TimedBackup): number {
  const d = b.time.getTime() - a.time.getTime();
  if (d !== 0) return d;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

function checkRules(rules: RetentionRules): void {
  for (const { rule } of RULES) {
    const n = rules[rule];
    if (!Number.isInteger(n) || n < 0)
      throw new RangeError(`retention rule '${rule}' must be a whole number ≥ 0, got ${n}`);
  }
}

/** Which backups the `keep-*` rules keep, and why; the rest are to be removed. */
export function applyPolicy(backups: readonly TimedBackup[], rules: RetentionRules): PolicyResult {
  checkRules(rules);
  const ids = new Set<string>();
  for (const b of backups) {
    if (Number.isNaN(b.time.getTime())) throw new RangeError(`backup ${b.id} has an invalid time`);
    if (ids.has(b.id)) throw new RangeError(`backup ${b.id} is listed twice`);
    ids.add(b.id);
  }
  const sorted = [...backups].sort(newestFirst);
  const keep = new Map<string, string[]>();
  const remove: string[] = [];

  if (RULES.every(({ rule }) => rules[rule] === 0)) {
    for (const b of sorted) keep.set(b.id, ['policy is empty']);
    return { keep, remove };
  }

  const state = RULES.map(({ rule }) => ({ left: rules[rule], lastPeriod: null as string | null }));
  sorted.forEach((b, nr) => {
    const reasons: string[] = [];
    const oldest = nr === sorted.length - 1;
    RULES.forEach(({ label, period }, i) => {
      const s = state[i];
      if (!s || s.left <= 0) return;
      const p = period ? period(b.time) : String(nr);
      const newPeriod = p !== s.lastPeriod;
      if (!newPeriod && !oldest) return;
      const what = period ? `${label} ${p}` : label;
      reasons.push(newPeriod ? what : `oldest ${what}`);
      s.lastPeriod = p;
      s.left--;
    });
    if (reasons.length > 0) keep.set(b.id, reasons);
    else remove.push(b.id);
  });
  return { keep, remove };
}
