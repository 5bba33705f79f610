import { untrustedObjects } from '../alerts/conditions.js';
import {
  type AlertCondition,
  type AlertKey,
  type AlertKind,
  destinationUnreachableKey,
  formatDuration,
  formatTime,
} from '../alerts/index.js';
import { type BackupAtDestination, manifestDisagreement } from '../manifest/catalog.js';
import { backupIdTime } from '../manifest/id.js';
import { inert } from '../report/inert.js';
import { HOUR, hoursAgo, type MonitorView, newestComplete } from './view.js';

/** `skipped`: the check could not run; `unknown`: it ran, but what it read cannot tell. */
export type CheckState = 'ok' | 'alert' | 'skipped' | 'unknown';

/** A row of the monitor's table: its name, and the alert it raises or clears. */
interface Row {
  readonly check: string;
  readonly key: AlertKey;
}

/** What one check found: a row of the table, and what to tell the alert feed. */
export type Finding = Row & { readonly detail: string } & (
    | {
        readonly state: 'alert';
        /** Raised; the monitor adds the last good backup. */
        readonly condition: Omit<AlertCondition, 'lastGood'>;
      }
    /** Cleared with this note, should its issue be open. */
    | { readonly state: 'ok'; readonly recovery: string }
    /** The check cannot tell: its alert is neither raised nor cleared. */
    | { readonly state: 'skipped' }
    /** It ran, but what it read cannot tell (no runs yet): neither raised nor cleared. */
    | { readonly state: 'unknown' }
  );

/** The limits the checks hold a view to; the monitor command's settings carry them. */
export interface MonitorLimits {
  /** A destination whose newest complete backup is older than this is stale. */
  readonly maxBackupAgeHours: number;
  /** The newest passed verification may be at most this old. */
  readonly maxVerifyAgeDays: number;
  /** The share of the backup workflow's recent runs that must have succeeded (0–1). */
  readonly minSuccessRate: number;
  /** The newest shipped WAL may be at most this old (minutes), when the prefix holds any. */
  readonly maxWalAgeMinutes?: number;
}

/**
 * One monitor check: a pure function of what was read. A new check is one more object in
 * {@link CHECKS}, with its alert kind added to `ALERT_KEYS`.
 */
export interface MonitorCheck {
  /** The alert it raises and clears (per destination for `destination-unreachable`). */
  readonly kind: AlertKind;
  evaluate(view: MonitorView, settings: MonitorLimits, now: Date): Finding | readonly Finding[];
}

function skipped(row: Row, detail: string): Finding {
  return { ...row, detail, state: 'skipped' };
}

/** `since` at the earliest of these times, when any is a real one. */
function earliest(times: readonly number[]): { since?: string } {
  const known = times.filter(Number.isFinite);
  return known.length > 0 ? { since: new Date(Math.min(...known)).toISOString() } : {};
}

function unknown(row: Row, detail: string): Finding {
  return { ...row, detail, state: 'unknown' };
}

function ok(row: Row, detail: string, recovery: string): Finding {
  return { ...row, detail, state: 'ok', recovery };
}

function alert(row: Row, detail: string, c: Omit<AlertCondition, 'key' | 'lastGood'>): Finding {
  return { ...row, detail, state: 'alert', condition: { ...c, key: row.key } };
}

/** Reachability: one alert per destination that cannot be listed. */
const reachable: MonitorCheck = {
  kind: 'destination-unreachable',
  evaluate: (view) =>
    view.destinations.map(({ name, bucket, endpoint }) => {
      const row = { check: `${name} reachable`, key: destinationUnreachableKey(name) };
      const why = view.unreachable.get(name);
      if (!why) return ok(row, `${bucket} listed`, `${name} (${bucket}) can be listed again.`);
      return alert(row, why, {
        title: `pg-dr: destination ${name} is unreachable`,
        detail: `The bucket \`${bucket}\` at \`${new URL(endpoint).host}\` cannot be listed: ${inert(why)}`,
        nextStep: `Check the ${name} credentials (key not expired or revoked, scoped to the bucket), the endpoint and the provider's status page.`,
      });
    }),
};

/** Freshness: the newest complete backup at each reachable destination. */
const fresh: MonitorCheck = {
  kind: 'backup-stale',
  evaluate(view, settings, now) {
    const row = { check: 'backup fresh', key: 'backup-stale' } as const;
    if (view.scans.size === 0) return skipped(row, 'no destination could be listed');
    const limitMs = settings.maxBackupAgeHours * HOUR;
    const stale: string[] = [];
    const fresh: string[] = [];
    /** When each stale destination became stale: its newest backup's time plus the limit. */
    const staleSince: number[] = [];
    let worstMs = 0;
    for (const [name, list] of view.scans) {
      const newest = newestComplete(list);
      if (!newest) {
        stale.push(`${name}: no complete backup`);
        worstMs = Number.POSITIVE_INFINITY;
        continue;
      }
      const t = backupIdTime(newest.id).getTime();
      const age = now.getTime() - t;
      worstMs = Math.max(worstMs, age);
      const line = `${name}: newest ${newest.id} is ${formatDuration(age)} old`;
      if (age > limitMs) {
        stale.push(line);
        staleSince.push(t + limitMs);
      } else fresh.push(line);
    }
    const detail = [...stale, ...fresh].join('; ');
    if (stale.length === 0) return ok(row, detail, `a fresh backup exists: ${fresh.join('; ')}.`);
    return alert(row, detail, {
      title: `pg-dr: no fresh backup (limit ${settings.maxBackupAgeHours} h)`,
      detail: `The newest complete backup is older than ${settings.maxBackupAgeHours} hours: ${stale.join('; ')}. Scheduled runs may have failed, been skipped, or been dropped by GitHub.`,
      figure: Number.isFinite(worstMs) ? Math.floor(worstMs / (24 * HOUR)) : 9999,
      // The ages change every hour (and their shape: "1 d" → "1 d 2 h"): which destinations
      // are stale, and why, is the news.
      fingerprint: stale.map((l) => l.replace(/: newest .*$/, ': stale')).join('; '),
      ...(staleSince.length > 0 ? { since: new Date(Math.min(...staleSince)).toISOString() } : {}),
      nextStep:
        'Open the backup workflow’s recent runs; run it by hand (workflow_dispatch) and watch it complete.',
    });
  },
};

/** Completeness of the newest backup at every destination (judged only when all are listed). */
const everywhere: MonitorCheck = {
  kind: 'backup-degraded',
  evaluate(view, _settings, now) {
    const row = { check: 'newest backup everywhere', key: 'backup-degraded' } as const;
    const newestId = [...view.scans.values()]
      .flatMap((l) => l.filter((b) => !b.future).map((b) => b.id))
      .sort()
      .at(-1);
    if (!newestId) return skipped(row, 'no backup yet');
    const complete = `${newestId} complete at ${[...view.scans.keys()].join(', ')}`;
    if (view.unreachable.size > 0) return skipped(row, complete);
    const degraded: string[] = [];
    for (const [name, list] of view.scans) {
      const b = list.find((x) => x.id === newestId);
      if (!b) degraded.push(`${name}: missing`);
      else if (b.problem !== null && hoursAgo(now, backupIdTime(newestId)) > 2)
        degraded.push(`${name}: ${b.problem}`);
    }
    if (degraded.length === 0)
      return ok(row, complete, `backup ${newestId} is complete at every destination.`);
    return alert(row, `${newestId}: ${degraded.join('; ')}`, {
      title: `pg-dr: newest backup is not complete at every destination`,
      detail: `Backup ${newestId} is incomplete: ${inert(degraded.join('; '))}.`,
      figure: degraded.length,
      since: backupIdTime(newestId).toISOString(),
      nextStep:
        'Look at the backup run’s log for the failed destination; the next backup normally repairs this. Run one by hand if the next one is far away.',
    });
  },
};

/**
 * Folders pg-dr did not write as they are: dated in the future, or committed (a manifest
 * exists) and then damaged or overwritten, or whose manifests differ between destinations.
 * Nothing reads them as backups; a person should.
 */
function foreignFolders(scans: MonitorView['scans']): string[] {
  const foreign: string[] = [];
  for (const [name, list] of scans)
    for (const b of list)
      if (b.future || (b.hasManifest && b.problem !== null))
        foreign.push(`${name}: ${b.id}: ${b.problem}`);
  // The complete copies grouped by id in one pass (a filter of every scan per id cost ~1 s
  // of CPU with 2,000 backups at two destinations); ids in first-seen order, as before.
  const copies = new Map<string, BackupAtDestination[]>();
  for (const list of scans.values())
    for (const b of list) {
      const group = copies.get(b.id) ?? [];
      if (b.problem === null && b.manifest) group.push(b);
      copies.set(b.id, group);
    }
  for (const [id, complete] of copies) {
    const why = manifestDisagreement(complete);
    if (why) foreign.push(`${id}: ${why}`);
  }
  return foreign;
}

const nothingForeign: MonitorCheck = {
  kind: 'untrusted-objects',
  evaluate(view) {
    const row = { check: 'nothing foreign in the bucket', key: 'untrusted-objects' } as const;
    const allPgDr = 'every folder is a backup pg-dr wrote';
    if (view.scans.size === 0) return skipped(row, allPgDr);
    const foreign = foreignFolders(view.scans);
    if (foreign.length === 0)
      return ok(row, allPgDr, 'every folder in the bucket is a backup pg-dr wrote.');
    return alert(row, inert(foreign.join('; ')), untrustedObjects(foreign));
  },
};

/** A verification recently, at any destination. */
const verifiedRecently: MonitorCheck = {
  kind: 'verification-stale',
  evaluate(view, settings, now) {
    const row = { check: 'verified recently', key: 'verification-stale' } as const;
    const newest = view.verifications
      .map((x) => new Date(x.v.startedAt))
      .sort((a, b) => b.getTime() - a.getTime())[0];
    const days = newest ? hoursAgo(now, newest) / 24 : null;
    const ago = newest ? `${formatDuration(now.getTime() - newest.getTime())} ago` : '';
    const detail = days === null ? 'no verification recorded' : `last verification ${ago}`;
    if (view.scans.size === 0) return skipped(row, detail);
    if (!(days === null || days > settings.maxVerifyAgeDays))
      return ok(row, detail, `a verification ran ${ago}.`);
    return alert(row, detail, {
      title: `pg-dr: no verification in ${settings.maxVerifyAgeDays} days`,
      detail:
        days === null
          ? 'No verification has ever been recorded: nobody knows whether these backups restore.'
          : `The last verification ran ${ago} (limit ${settings.maxVerifyAgeDays} days).`,
      figure: days === null ? 9999 : Math.floor(days),
      // The age changes every hour: whether any verification exists is the news.
      fingerprint: days === null ? 'never verified' : 'verification too old',
      ...earliest(newest ? [newest.getTime() + settings.maxVerifyAgeDays * 24 * HOUR] : []),
      nextStep:
        'Run the verify workflow (weekly schedule, or workflow_dispatch) and check that its schedule still fires.',
    });
  },
};

/** The newest verification record at each destination passed. */
const verificationPassed: MonitorCheck = {
  kind: 'verification-failed',
  evaluate(view) {
    const row = { check: 'last verification passed', key: 'verification-failed' } as const;
    const latest = view.verifications;
    if (latest.length === 0) return skipped(row, 'no verification recorded');
    const detail = latest
      .map(
        (x) =>
          `${x.destination}: ${x.v.backupId} ${x.v.level} ${x.v.ok ? 'ok' : `FAILED (${x.v.error})`}`,
      )
      .join('; ');
    const failed = latest.filter((x) => !x.v.ok);
    if (failed.length === 0)
      return ok(row, detail, 'the latest verification passed at every destination.');
    return alert(row, detail, {
      title: 'pg-dr: the latest verification failed',
      detail: failed
        .map(
          (x) =>
            `${x.destination}: backup ${x.v.backupId} failed ${x.v.level} verification on ${inert(formatTime(x.v.startedAt))}: ${inert(x.v.error ?? 'failed')}`,
        )
        .join('\n'),
      figure: failed.length,
      // It failed when the first failing verification ran (a record's time is not trusted).
      ...earliest(failed.map((x) => Date.parse(x.v.startedAt))),
      nextStep:
        'Read the verification record and the run log; if an object is damaged, restore from the other destination and take a new backup.',
    });
  },
};

/** The backup workflow named by `backup-workflow` exists: a mistyped name must not look healthy. */
const workflowFound: MonitorCheck = {
  kind: 'backup-workflow-missing',
  evaluate(view) {
    const row = { check: 'backup workflow found', key: 'backup-workflow-missing' } as const;
    const read = view.runs;
    if (read.state === 'not-configured') return skipped(row, `skipped: ${read.why}`);
    if (read.state === 'unreadable') return skipped(row, `runs unreadable: ${read.error}`);
    const { workflow } = read;
    if (read.state === 'read')
      return ok(row, `${workflow} found`, `the workflow \`${workflow}\` is found again.`);
    return alert(row, `${workflow} not found: ${read.error}`, {
      title: `pg-dr: the backup workflow ${workflow} does not exist`,
      detail: `GitHub finds no workflow \`${inert(workflow)}\` in this repository (${inert(read.error)}): the name is mistyped, the workflow was renamed or deleted, or the token cannot see the repository. Nothing tells whether the backup runs succeed.`,
      nextStep:
        "Set 'backup-workflow' to the file name of the backup workflow as it is in `.github/workflows/` (e.g. `pg-dr-backup.yml`), in the same repository as the monitor; a renamed or deleted workflow needs the new name.",
    });
  },
};

/** The backup workflow's success rate over its last completed runs. */
const runsSucceed: MonitorCheck = {
  kind: 'low-success-rate',
  evaluate(view, settings) {
    const row = { check: 'backup runs succeed', key: 'low-success-rate' } as const;
    const read = view.runs;
    if (read.state === 'not-configured') return skipped(row, `skipped: ${read.why}`);
    if (read.state === 'unreadable') return skipped(row, `runs unreadable: ${read.error}`);
    if (read.state === 'not-found') return skipped(row, `${read.workflow} not found`);
    const { workflow, runs } = read;
    if (runs.length === 0)
      return unknown(row, `no completed run of ${workflow} found: the success rate is unknown`);
    const good = runs.filter((r) => r.conclusion === 'success').length;
    const rate = good / runs.length;
    const percent = (rate * 100).toFixed(0);
    const detail = `${good} of the last ${runs.length} completed runs of ${workflow} succeeded (${percent}%, minimum ${(settings.minSuccessRate * 100).toFixed(0)}%)`;
    if (rate >= settings.minSuccessRate)
      return ok(row, detail, `${good} of the last ${runs.length} runs succeeded (${percent}%).`);
    return alert(row, detail, {
      title: `pg-dr: only ${good} of the last ${runs.length} backup runs succeeded`,
      detail: `The last ${runs.length} completed runs of \`${workflow}\`: ${runs.map((r) => r.conclusion ?? '?').join(', ')}.`,
      figure: Math.round(rate * 100),
      worseWhen: 'lower',
      nextStep: `Open the failed runs of ${workflow}; a recurring failure (credentials, version mismatch, timeouts) needs a fix, not a retry.`,
    });
  },
};

/** WAL freshness: the newest WAL stored, when the prefix holds shipped WAL at all. */
const walFresh: MonitorCheck = {
  kind: 'wal-stale',
  evaluate(view, settings, now) {
    const row = { check: 'WAL fresh', key: 'wal-stale' } as const;
    const w = view.wal;
    if (!w) return skipped(row, 'WAL not read');
    if (w.state === 'unreadable') return skipped(row, `WAL records unreadable: ${w.error}`);
    const newest = w.runs[0];
    if (!newest) return skipped(row, 'no WAL shipped under this prefix (wal not set up)');
    const limitMin = settings.maxWalAgeMinutes ?? 30;
    const age = now.getTime() - newest.endAt.getTime();
    const line = `newest WAL ends ${newest.endLsn} at ${formatTime(newest.endAt.toISOString())} (${formatDuration(age)} ago; run ${newest.runId})`;
    if (age <= limitMin * 60_000) return ok(row, line, `WAL is shipped again: ${line}.`);
    return alert(row, line, {
      title: `pg-dr: no WAL shipped for ${formatDuration(age)} (limit ${limitMin} min)`,
      detail: `The newest WAL stored ends at ${newest.endLsn}, written ${formatDuration(age)} ago: a disaster now would lose every transaction committed since. The limit is max-wal-age-minutes (${limitMin}).`,
      since: new Date(newest.endAt.getTime() + limitMin * 60_000).toISOString(),
      nextStep:
        'Look at the wal workflow: runs failing (a wal-failed issue says why), disabled (GitHub disables schedules in repositories without activity for 60 days), or delayed. Run it by hand (workflow_dispatch); the slot kept the WAL, so one run catches up.',
    });
  },
};

/** Every check, in the order of the monitor's table. */
export const CHECKS: readonly MonitorCheck[] = [
  reachable,
  fresh,
  everywhere,
  nothingForeign,
  verifiedRecently,
  verificationPassed,
  workflowFound,
  runsSucceed,
  walFresh,
];
