import type { TrustedSigner } from '../crypto/sshsig.js';
import { type BackupAtDestination, latestVerification } from '../manifest/catalog.js';
import { backupIdTime } from '../manifest/id.js';
import type { Verification } from '../manifest/verification.js';
import type { Destination } from '../storage/destination.js';

/**
 * What one monitor run read, once, from the destinations and GitHub. The checks look only
 * at this: they read nothing themselves, so each is a pure function of the view.
 */
export interface MonitorView {
  /** The configured destinations, in order (no credentials). */
  readonly destinations: readonly { name: string; bucket: string; endpoint: string }[];
  /** The backups at each destination that could be listed, by name, in destination order. */
  readonly scans: ReadonlyMap<string, readonly BackupAtDestination[]>;
  /** Why a destination could not be listed, by name. */
  readonly unreachable: ReadonlyMap<string, string>;
  /** The newest readable verification record at each destination that has one. */
  readonly verifications: readonly { destination: string; v: Verification }[];
  /** The backup workflow's last completed runs (at most 10), or why they were not read. */
  readonly runs: RunsRead;
  /** The WAL runs of the last 7 days (and the newest), newest first; null: not read. */
  readonly wal?: WalRead | null;
}

/** What the monitor read of the WAL shipping. */
export type WalRead =
  | {
      readonly state: 'read';
      /** Trusted run records, newest first: when each one's WAL ends, and when it was stored. */
      readonly runs: readonly { runId: string; endAt: Date; finishedAt: Date; endLsn: string }[];
    }
  | { readonly state: 'unreadable'; readonly error: string };

export type RunsRead =
  | {
      readonly state: 'read';
      readonly workflow: string;
      readonly runs: readonly { conclusion: string | null }[];
    }
  /** GitHub answered 404: no such workflow in the repository (or the repository is not visible). */
  | { readonly state: 'not-found'; readonly workflow: string; readonly error: string }
  /** `backup-workflow` unset, or no github-token to ask with. */
  | { readonly state: 'not-configured'; readonly why: string }
  | { readonly state: 'unreadable'; readonly error: string };

export const HOUR = 3600 * 1000;

export function hoursAgo(now: Date, t: Date): number {
  return (now.getTime() - t.getTime()) / HOUR;
}

/** The newest complete backup in a destination's list (newest first), if any. */
export function newestComplete(
  list: readonly BackupAtDestination[],
): BackupAtDestination | undefined {
  return list.find((b) => b.problem === null);
}

/** The newest backup complete somewhere, and every destination where it is complete. */
export function lastGoodOf(
  all: ReadonlyMap<string, readonly BackupAtDestination[]>,
): { id: string; time: string; where: string[] } | null {
  let best: BackupAtDestination | undefined;
  for (const list of all.values()) {
    const c = newestComplete(list);
    if (c && (!best || c.id > best.id)) best = c;
  }
  if (!best) return null;
  const id = best.id;
  const where = [...all.entries()]
    .filter(([, l]) => l.some((b) => b.id === id && b.problem === null))
    .map(([n]) => n);
  return { id, time: backupIdTime(id).toISOString(), where };
}

/** Reads the newest verification record of each listed destination, in destination order. */
export async function latestVerifications(
  destinations: readonly Destination[],
  scans: MonitorView['scans'],
  now: Date,
  trusted: readonly TrustedSigner[] | null,
): Promise<{ destination: string; v: Verification }[]> {
  const latest: { destination: string; v: Verification }[] = [];
  for (const d of destinations) {
    const list = scans.get(d.settings.name);
    if (!list) continue;
    const withV = [...list]
      .filter((b) => b.verificationKeys.length > 0)
      .sort((a, b) =>
        (a.verificationKeys.at(-1) as string) < (b.verificationKeys.at(-1) as string) ? 1 : -1,
      );
    const newestV = withV[0];
    if (!newestV) continue;
    const v = await latestVerification(d, newestV, now, trusted);
    if (v) latest.push({ destination: d.settings.name, v });
  }
  return latest;
}
