import type { BackupChanges } from '../manifest/changes.js';
import type { Manifest } from '../manifest/schema.js';
import { inert } from '../report/inert.js';
import type { AlertCondition } from './text.js';

/** The alert `backup` raises when it fails: nothing was committed anywhere. */
export function backupFailed(error: string, database: string | null): AlertCondition {
  return {
    key: 'backup-failed',
    title: `pg-dr: the backup${database ? ` of ${database}` : ''} failed`,
    detail: `The last backup run failed and committed nothing:\n\n> ${inert(error)}`,
    nextStep:
      'Read the run log (the failing phase is a collapsed group), fix the cause, then run the backup workflow by hand (workflow_dispatch). The previous complete backups are untouched.',
  };
}

/** The alert `backup` raises when only some destinations got the backup. */
export function backupDegraded(m: Manifest): AlertCondition {
  const failed = m.destinations.filter((d) => !d.ok);
  const stored = m.destinations.filter((d) => d.ok).map((d) => d.name);
  return {
    key: 'backup-degraded',
    title: `pg-dr: backup stored at ${stored.join(', ')} only`,
    detail: `Backup ${m.id} of ${inert(m.database.name)} is complete at ${stored.join(', ')} but not at: ${failed.map((d) => `${d.name} (${inert(d.error ?? 'not stored')})`).join('; ')}.`,
    figure: failed.length,
    lastGood: { id: m.id, time: m.createdAt, where: stored },
    nextStep: `Check ${failed.map((d) => d.name).join(', ')}: credentials, bucket, provider status. The next backup repairs this once the destination is back.`,
  };
}

/** At most this many tables are named per list in a `backup-changed` issue. */
const CHANGED_TABLES = 10;

/**
 * The alert `backup` raises when it differs sharply from the previous backup of the same
 * database: a table lost more than `max-row-drop-percent` of its rows or disappeared, or the
 * archive shrank by more than that. Not a failure: the backup is kept; a person decides.
 */
export function backupChanged(
  m: Manifest,
  c: BackupChanges,
  maxDropPercent: number,
): AlertCondition {
  const name = inert(m.database.name);
  const lines = c.reasons.map((r) => `- ${inert(r)}`);
  const more = (n: number) => (n > CHANGED_TABLES ? [`- … and ${n - CHANGED_TABLES} more`] : []);
  if (c.dropped.length > 0)
    lines.push(
      '',
      `Tables that lost more than ${maxDropPercent}% of their rows:`,
      '',
      ...c.dropped
        .slice(0, CHANGED_TABLES)
        .map((d) => `- \`${inert(d.table)}\`: ${d.before} → ${d.after} rows`),
      ...more(c.dropped.length),
    );
  if (c.disappeared.length > 0)
    lines.push(
      '',
      'Tables that disappeared:',
      '',
      ...c.disappeared
        .slice(0, CHANGED_TABLES)
        .map((d) => `- \`${inert(d.table)}\` (${d.before} rows before)`),
      ...more(c.disappeared.length),
    );
  return {
    key: 'backup-changed',
    title: `pg-dr: the backup of ${name} changed sharply since the previous one`,
    detail: `Backup ${m.id} of ${name} compared with ${c.previous.id}, the previous complete backup of the same database:\n\n${lines.join('\n')}`,
    figure: c.dropped.length + c.disappeared.length,
    fingerprint: c.reasons.map((r) => r.replace(/\d+/g, '#')).join('\n'),
    lastGood: { id: c.previous.id, time: c.previous.finishedAt, where: c.previous.where },
    nextStep: `If the change was intended (a cleanup, a migration, a moved table), nothing is needed: the next backup compares with this one and closes this issue. If it was not, backup ${c.previous.id} still holds the rows: restore it into a scratch database (\`restore\` with \`backup-id: ${c.previous.id}\`) and copy back what is missing, and raise the \`keep-*\` retention until then so prune keeps it.`,
  };
}

/**
 * Folders in a bucket that are not backups as pg-dr wrote them — dated in the future,
 * committed then damaged or rewritten, unsigned or badly signed, or different at two
 * destinations. Raised by monitor, and by prune, which keeps them.
 */
export function untrustedObjects(found: readonly string[]): AlertCondition {
  return {
    key: 'untrusted-objects',
    title: 'pg-dr: something other than pg-dr wrote into the bucket',
    detail: `These folders are not backups as pg-dr wrote them, and are ignored (never latest, never restored, never pruned):\n\n${found.map((f) => `- ${inert(f)}`).join('\n')}`,
    figure: found.length,
    nextStep:
      'Find out who else holds the bucket keys: rotate them, compare the folders with the audit artifacts of the backup runs, then remove what is not yours by hand.',
  };
}

/** The alert `verify` raises when a verification failed. */
export function verificationFailed(
  failures: readonly {
    backupId: string;
    destination: string;
    level: string;
    error: string | null;
  }[],
): AlertCondition {
  return {
    key: 'verification-failed',
    title: `pg-dr: verification failed (${[...new Set(failures.map((f) => f.destination))].join(', ')})`,
    detail: failures
      .map(
        (f) =>
          `- ${f.backupId} at ${f.destination} (${inert(f.level)}): ${inert(f.error ?? 'failed')}`,
      )
      .join('\n'),
    figure: failures.length,
    nextStep:
      'Read the verification records under verifications/ and the run log. A damaged object at one destination: restore from the other (restore-from) and take a new backup now.',
  };
}

/** The alert `wal` raises when a run failed: nothing it streamed was confirmed, the slot did not move. */
export function walFailed(error: string): AlertCondition {
  return {
    key: 'wal-failed',
    title: 'pg-dr: WAL shipping failed',
    detail: `The last \`wal\` run failed; the replication slot was not advanced, so the server keeps the WAL it did not store and the next run ships it:\n\n> ${inert(error)}`,
    nextStep:
      'Read the run log and fix the cause (docs/troubleshooting.md, "WAL shipping"). A lost slot or a gap needs a fresh physical backup with wal-slot and create-slot: true. Until a run succeeds, the recovery point grows with every minute.',
  };
}

/** The alert `wal` raises when a run's WAL is stored at some destinations only. */
export function walDegraded(
  runId: string,
  failed: readonly { name: string; error: string | null }[],
): AlertCondition {
  return {
    key: 'wal-degraded',
    title: 'pg-dr: WAL stored at one destination only',
    detail: `WAL run ${runId} is stored, but not at: ${failed.map((d) => `${d.name} (${inert(d.error ?? 'not stored')})`).join('; ')}.`,
    figure: failed.length,
    nextStep: `Check ${failed.map((d) => d.name).join(', ')}: credentials, bucket, provider status. Runs after it ship only new WAL: this run's files stay at one destination.`,
  };
}
