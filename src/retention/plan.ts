/**
 * What `prune` would do: the `keep-*` policy plus the safety rails. Pure: the caller
 * passes `now` and what it found at a destination; nothing here deletes anything.
 */
import { applyPolicy, newestFirst, type RetentionRules } from './policy.js';

export interface PruneCandidate {
  readonly id: string;
  /** Creation time (from the id). */
  readonly time: Date;
  /** Has a manifest and every object it lists. Only complete backups count for the policy. */
  readonly complete: boolean;
  /** The newest verification record of this backup, or null when it was never verified. */
  readonly latestVerification: { readonly ok: boolean; readonly at: Date } | null;
  /**
   * A manifest object exists, whatever state it is in. An incomplete backup with one was
   * committed once and then damaged (or its manifest overwritten): it is never deleted.
   */
  readonly hasManifest?: boolean;
  /** Dated more than 10 minutes in the future: ignored, never counted, never deleted. */
  readonly future?: boolean;
  /** The database the manifest names (complete backups); a prefix may hold several. */
  readonly database?: string | null;
}

export interface PruneDecision {
  readonly id: string;
  readonly action: 'keep' | 'delete';
  /** Why: policy reasons (`daily 2026-11-25`), rails (`newest`), or why it goes. */
  readonly reasons: string[];
}

export interface PrunePlan {
  /** Why nothing may be pruned at all; every decision is then `keep`. Null when pruning may go ahead. */
  readonly refused: string | null;
  /** One per candidate, newest first. */
  readonly decisions: PruneDecision[];
}

export interface PruneInput {
  readonly entries: readonly PruneCandidate[];
  readonly rules: RetentionRules;
  readonly now: Date;
  /** `max-backup-age-hours`: while the newest complete backup is older, nothing is pruned. */
  readonly maxBackupAgeHours: number;
  /** The verification window of the verification rails, in days before `now`. Default 8 (`max-verify-age-days`). */
  readonly verifyWindowDays?: number;
  /** At most this many backups deleted in one run (`max-deletions`); above it, none is. */
  readonly maxDeletions?: number;
}

/** An incomplete backup younger than this may still be being written. */
export const INCOMPLETE_GRACE_HOURS = 24;
export const DEFAULT_VERIFY_WINDOW_DAYS = 8;

const HOUR = 3_600_000;

/**
 * The rails, on top of the policy (a backup kept by any of them stays):
 *
 * - `newest`: the newest complete backup is never deleted.
 * - Stale newest: if there is no complete backup, or the newest is older than
 *   `maxBackupAgeHours`, backups have stopped: `refused` says so and everything is kept.
 * - Verification. The issue reads "never delete a backup whose latest verification
 *   failed if it is the only one verified in the window". Read literally it protects a
 *   failed backup; the intent is not to prune away the evidence the verifications give.
 *   Implemented as two rules over complete backups whose latest verification falls in
 *   the window (`verifyWindowDays` before `now`):
 *   1. `only verified in the last N d (passed|failed)`: when exactly one backup has a
 *      verification in the window, it is kept whatever the outcome. If it passed, it is
 *      the only backup known to restore; if it failed, it is what a person must look at
 *      (and the failure may lie in the verifier, not the backup).
 *   2. `newest verified ok`: the newest backup whose latest verification in the window
 *      passed is kept, so a prune never leaves a destination without its last known-good
 *      backup (this covers "the only one verified ok" when several were verified).
 * - Incomplete backups (no manifest) never count for the policy: older than
 *   {@link INCOMPLETE_GRACE_HOURS} they are deleted, younger ones kept (`in flight?`).
 * - Only whole backups are decided on; deleting one is `deleteBackupObjects`' business.
 */
export function planPrune(input: PruneInput): PrunePlan {
  const { entries, rules, now, maxBackupAgeHours } = input;
  const windowDays = input.verifyWindowDays ?? DEFAULT_VERIFY_WINDOW_DAYS;
  if (!(maxBackupAgeHours > 0)) throw new RangeError('maxBackupAgeHours must be > 0');
  if (!(windowDays >= 0)) throw new RangeError('verifyWindowDays must be ≥ 0');
  const sorted = [...entries].sort(newestFirst);
  const complete = sorted.filter((e) => e.complete && !e.future);
  const newest = complete[0];

  let refused: string | null = null;
  if (!newest) refused = 'no complete backup was found; pruning nothing';
  else {
    const ageHours = (now.getTime() - newest.time.getTime()) / HOUR;
    if (ageHours > maxBackupAgeHours)
      refused =
        `the newest complete backup (${newest.id}) is ${Math.floor(ageHours)} h old, over ` +
        `max-backup-age-hours (${maxBackupAgeHours}): backups may have stopped, so nothing is pruned`;
  }
  if (refused !== null || !newest)
    return {
      refused,
      decisions: sorted.map((e) => ({ id: e.id, action: 'keep', reasons: ['pruning refused'] })),
    };

  const policy = applyPolicy(complete, rules);
  const extra = new Map<string, string[]>();
  const add = (id: string, reason: string) => extra.set(id, [...(extra.get(id) ?? []), reason]);
  add(newest.id, 'newest');

  const since = now.getTime() - windowDays * 24 * HOUR;
  const verified = complete.filter(
    (e) => e.latestVerification !== null && e.latestVerification.at.getTime() >= since,
  );
  const only = verified.length === 1 ? verified[0] : undefined;
  if (only)
    add(
      only.id,
      `only verified in the last ${windowDays} d (${only.latestVerification?.ok ? 'passed' : 'failed'})`,
    );
  const newestOk = verified.find((e) => e.latestVerification?.ok);
  if (newestOk && newestOk !== only) add(newestOk.id, 'newest verified ok');

  const decisions = sorted.map((e): PruneDecision => {
    if (e.future) return { id: e.id, action: 'keep', reasons: ['dated in the future: ignored'] };
    if (!e.complete && e.hasManifest)
      return {
        id: e.id,
        action: 'keep',
        reasons: [
          'committed, then damaged or tampered with (manifest or objects): kept for a person to look at',
        ],
      };
    if (!e.complete) {
      const ageHours = (now.getTime() - e.time.getTime()) / HOUR;
      return ageHours > INCOMPLETE_GRACE_HOURS
        ? {
            id: e.id,
            action: 'delete',
            reasons: [`incomplete, older than ${INCOMPLETE_GRACE_HOURS} h`],
          }
        : { id: e.id, action: 'keep', reasons: ['incomplete: in flight?'] };
    }
    const reasons = [...(extra.get(e.id) ?? []), ...(policy.keep.get(e.id) ?? [])];
    return reasons.length > 0
      ? { id: e.id, action: 'keep', reasons }
      : { id: e.id, action: 'delete', reasons: ['no keep rule matches'] };
  });
  return overMaxDeletions(decisions, input.maxDeletions) ?? { refused: null, decisions };
}

/**
 * {@link planPrune} for each database on its own, when the prefix holds complete backups of
 * several: `keep-last 7` keeps seven of each, the newest of each is kept, and one database
 * whose backups stopped holds back only its own. Backups with no database to tell
 * (incomplete, future) are planned with the most recently backed-up database.
 * `max-deletions` bounds the run as a whole.
 */
export function planPruneByDatabase(input: PruneInput): PrunePlan {
  const sorted = [...input.entries].sort(newestFirst);
  const named = sorted.filter((e) => e.complete && !e.future && e.database != null);
  const names = [...new Set(named.map((e) => e.database as string))];
  if (names.length <= 1) return planPrune(input);
  const groups = new Map(names.map((n) => [n, [] as PruneCandidate[]]));
  for (const e of sorted) {
    const own = e.complete && !e.future && e.database != null ? e.database : names[0];
    groups.get(own as string)?.push(e);
  }
  const refusals: string[] = [];
  const decisions: PruneDecision[] = [];
  const { maxDeletions: _whole, ...each } = input;
  for (const [name, entries] of groups) {
    const plan = planPrune({ ...each, entries });
    if (plan.refused !== null) refusals.push(`${JSON.stringify(name)}: ${plan.refused}`);
    for (const d of plan.decisions)
      decisions.push({ ...d, reasons: [...d.reasons, `database ${JSON.stringify(name)}`] });
  }
  decisions.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  return (
    overMaxDeletions(decisions, input.maxDeletions) ?? {
      refused: refusals.length > 0 ? refusals.join('; ') : null,
      decisions,
    }
  );
}

/** The plan when `decisions` delete more than `max` backups (none is then deleted); null when within it. */
function overMaxDeletions(
  decisions: readonly PruneDecision[],
  max: number | undefined,
): PrunePlan | null {
  const deletions = decisions.filter((d) => d.action === 'delete').length;
  if (max === undefined || deletions <= max) return null;
  return {
    refused: `this run would delete ${deletions} backups, more than max-deletions (${max}): nothing is deleted. If that is expected (a first prune, a shorter policy), raise max-deletions for one run; if not, something else wrote into the bucket`,
    decisions: decisions.map((d) =>
      d.action === 'delete' ? { id: d.id, action: 'keep', reasons: ['over max-deletions'] } : d,
    ),
  };
}
