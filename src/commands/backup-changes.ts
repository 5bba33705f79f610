/**
 * The backup's comparison with the previous backup of the same database (`backup-changed`),
 * and its warning when the prefix holds backups of another database or cluster. The
 * previous manifest is read while the dump runs; the comparison itself is
 * manifest/changes.ts.
 */
import { withinOr } from '../concurrency.js';
import type { TrustedSigner } from '../crypto/sshsig.js';
import {
  type DatabaseIdentity,
  type PrefixNeighbours,
  prefixNeighbours,
} from '../manifest/catalog.js';
import { type BackupChanges, compareBackups } from '../manifest/changes.js';
import type { Manifest } from '../manifest/schema.js';
import type { SummaryTable } from '../report/host.js';
import { formatBytes } from '../report/progress.js';
import type { Destination } from '../storage/destination.js';

/** How long a backup waits, once committed, for the previous backup's manifest. */
export const NEIGHBOURS_WAIT_MS = 10_000;

/** The comparison a backup made, or why it made none. */
export type ChangeCheck =
  | { readonly state: 'compared'; readonly changes: BackupChanges }
  /** No earlier backup of this database among the newest read: nothing to compare with. */
  | { readonly state: 'first' }
  | { readonly state: 'unknown'; readonly why: string };

/**
 * Reads the newest backups under the prefix from the first destination that answers;
 * never rejects: a destination that cannot be read gives the reason in words.
 */
export async function readNeighbours(
  live: readonly Destination[],
  prefix: string,
  db: DatabaseIdentity,
  opts: { readonly now: Date; readonly trusted: readonly TrustedSigner[] | null; exclude: string },
): Promise<PrefixNeighbours | string> {
  const why: string[] = [];
  for (const d of live) {
    try {
      return await prefixNeighbours(d, prefix, db, opts);
    } catch (e) {
      why.push(`${d.settings.name}: ${d.describeError(e)}`);
    }
  }
  return why.length > 0
    ? `the earlier backups could not be read (${why.join('; ')})`
    : 'no destination';
}

/** The read's result, or why there is none once `waitMs` has passed. */
export function settle(
  reading: Promise<PrefixNeighbours | string>,
  waitMs: number,
): Promise<PrefixNeighbours | string> {
  return withinOr(
    reading,
    waitMs,
    () => `the earlier backups were not read within ${waitMs / 1000} s`,
  );
}

/** This backup compared with the previous one of its database, when there is one. */
export function checkChanges(
  found: PrefixNeighbours | string,
  m: Manifest,
  maxDropPercent: number,
): ChangeCheck {
  if (typeof found === 'string') return { state: 'unknown', why: found };
  if (found.previous === null) return { state: 'first' };
  return { state: 'compared', changes: compareBackups(found.previous, m, maxDropPercent) };
}

const clusterOf = (m: Manifest) => m.database.systemIdentifier ?? 'unknown';

/**
 * The warning when the prefix holds backups of another database, or of this database's name
 * from another cluster, newer than this database's previous backup: two set-ups writing to
 * one prefix, where `restore latest` would have to choose.
 */
export function othersWarning(
  found: PrefixNeighbours | string,
  db: DatabaseIdentity,
): string | null {
  if (typeof found === 'string' || found.others.length === 0) return null;
  const seen = new Map<string, Manifest>();
  for (const m of found.others) {
    const key = `${m.database.name}\u0000${clusterOf(m)}`;
    if (!seen.has(key)) seen.set(key, m);
  }
  const what = [...seen.values()].map((m) =>
    m.database.name === db.name
      ? `${JSON.stringify(m.database.name)} from another cluster (system identifier ${clusterOf(m)}, newest ${m.id})`
      : `${JSON.stringify(m.database.name)} (newest ${m.id})`,
  );
  const moved = [...seen.values()].every((m) => m.database.name === db.name);
  return `The prefix also holds backups of ${what.join(', ')}. ${
    moved && found.previous === null
      ? 'If this database moved to a new server, that is expected and is not said again after this backup; if two servers back up under one prefix, give each its own prefix.'
      : "Give each database its own 'prefix': list shows them together, prune keeps each database's backups by its own rules, and restore or verify of 'latest' needs 'source-database' to choose."
  }`;
}

const signed = (n: number) => (n > 0 ? `+${n}` : String(n));

/** `80,000 → 0 (−100%)`. */
function change(before: number, after: number, bytes = false): string {
  const f = (n: number) => (bytes ? formatBytes(n) : n.toLocaleString('en-US'));
  const pct = before > 0 ? ` (${signed(Math.round(((after - before) / before) * 100))}%)` : '';
  return `${f(before)} → ${f(after)}${pct}`;
}

/** The summary table of the comparison; null when there was nothing to compare with. */
export function changesSummary(check: ChangeCheck, maxDropPercent: number): SummaryTable | null {
  if (check.state === 'first') return null;
  if (check.state === 'unknown')
    return {
      title: 'Changes since the previous backup',
      header: ['Compared with', 'the previous backup of this database'],
      rows: [['Not compared', check.why]],
    };
  const c = check.changes;
  const rows: string[][] = [];
  if (c.archive)
    rows.push([
      c.archive.basis === 'archive' ? 'Archive' : 'Stored (compressed)',
      change(c.archive.before, c.archive.after, true),
    ]);
  if (c.rowsNotCompared !== null) rows.push(['Rows', `not compared: ${c.rowsNotCompared}`]);
  if (c.totalRows) rows.push(['Rows (all tables)', change(c.totalRows.before, c.totalRows.after)]);
  if (c.rowsNotCompared === null)
    rows.push([
      'Tables',
      `${c.appeared.length} appeared, ${c.disappeared.length} disappeared${
        c.disappeared.length > 0
          ? ` (${c.disappeared
              .slice(0, 5)
              .map((d) => d.table)
              .join(', ')}${c.disappeared.length > 5 ? ', …' : ''})`
          : ''
      }`,
    ]);
  for (const d of c.dropped.slice(0, 5))
    rows.push([`Lost > ${maxDropPercent}%`, `${d.table}: ${change(d.before, d.after)}`]);
  if (c.dropped.length > 5)
    rows.push([`Lost > ${maxDropPercent}%`, `… ${c.dropped.length - 5} more`]);
  for (const d of c.largest.filter((x) => !c.dropped.includes(x)))
    rows.push(['Changed', `${d.table}: ${change(d.before, d.after)}`]);
  rows.push([
    'Verdict',
    c.reasons.length > 0
      ? `⚠️ changed sharply: ${c.reasons.join('; ')}`
      : `✅ ${
          [
            ...(c.rowsNotCompared === null
              ? [`no table lost more than ${maxDropPercent}% of its rows, none disappeared`]
              : []),
            ...(c.archive ? [`the archive did not shrink by more than ${maxDropPercent}%`] : []),
          ].join(', ') || 'nothing comparable'
        }`,
  ]);
  return {
    title: `Changes since ${c.previous.id}`,
    header: [
      'Compared with',
      `${c.previous.id}${c.sameCluster === false ? ' (from another cluster: the database moved?)' : ''}`,
    ],
    rows,
  };
}
