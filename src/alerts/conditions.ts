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
