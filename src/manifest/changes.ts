/**
 * What changed between two backups of the same database: the archive's size, each table's
 * row count, the tables that appeared or disappeared. Pure: both manifests are in hand.
 * A backup of the wrong thing (an emptied table, a dropped schema, a database restored from
 * an old copy) still dumps without an error; this is where it shows.
 */
import type { Manifest } from './schema.js';

/** A table's row count in the previous and in this backup. */
export interface TableDelta {
  readonly table: string;
  readonly before: number;
  readonly after: number;
}

export interface BackupChanges {
  /** The backup compared with: the newest complete backup of the same database before this one. */
  readonly previous: {
    readonly id: string;
    readonly finishedAt: string;
    /** Where it was stored complete, by its own manifest. */
    readonly where: readonly string[];
  };
  /** False when the previous backup came from another cluster (system_identifier); null when unknown. */
  readonly sameCluster: boolean | null;
  /** The archive's bytes before and after (the uncompressed archive where both recorded it). */
  readonly archive: {
    readonly before: number;
    readonly after: number;
    readonly basis: 'archive' | 'stored';
  } | null;
  /** Why row counts were not compared, or null when they were. */
  readonly rowsNotCompared: string | null;
  /** Rows in all tables both backups counted, before and after. */
  readonly totalRows: { readonly before: number; readonly after: number } | null;
  /** Tables that lost more than the limit, most rows lost first. */
  readonly dropped: readonly TableDelta[];
  /** The largest changes either way (at most {@link LARGEST}), for the summary. */
  readonly largest: readonly TableDelta[];
  readonly disappeared: readonly { readonly table: string; readonly before: number }[];
  readonly appeared: readonly { readonly table: string; readonly after: number }[];
  /** Why this backup deserves a person's look (the `backup-changed` alert); empty when it does not. */
  readonly reasons: readonly string[];
}

/** How many of the largest row changes the summary shows. */
export const LARGEST = 5;

/** `schema.table`, quoted where a reader could misread it. */
function tableName(t: { schema: string; table: string }): string {
  const part = (s: string) => (/^[a-z_][a-z0-9_$]*$/.test(s) ? s : JSON.stringify(s));
  return `${part(t.schema)}.${part(t.table)}`;
}

/** Percent of `before` that is gone (0 when it grew). */
export function lostPercent(before: number, after: number): number {
  return before > 0 && after < before ? ((before - after) / before) * 100 : 0;
}

/** The archive sizes to compare, or null when the two were not measured alike. */
function archiveSizes(prev: Manifest, cur: Manifest): BackupChanges['archive'] {
  // A pg_dump archive and a cluster's tar (mode physical) measure different things.
  if ((prev.mode ?? 'logical') !== (cur.mode ?? 'logical')) return null;
  if (prev.database.archiveBytes !== null && cur.database.archiveBytes !== null)
    return {
      before: prev.database.archiveBytes,
      after: cur.database.archiveBytes,
      basis: 'archive',
    };
  const stored = (m: Manifest) =>
    m.objects.find((o) => o.kind === 'database' || o.kind === 'base')?.plaintext.bytes;
  const [before, after] = [stored(prev), stored(cur)];
  const alike =
    prev.database.compression === cur.database.compression &&
    prev.database.compressionLevel === cur.database.compressionLevel;
  return alike && before !== undefined && after !== undefined
    ? { before, after, basis: 'stored' }
    : null;
}

/** Why two backups' row counts cannot be compared, or null when they can. */
function rowsIncomparable(prev: Manifest, cur: Manifest): string | null {
  const [a, b] = [prev.database.rowCounts.method, cur.database.rowCounts.method];
  if (a === 'off' || b === 'off') return `row counts were not taken (row-counts: off)`;
  if (a !== b) return `row counts were taken differently (${a} before, ${b} now)`;
  return null;
}

/**
 * Compares `cur` with `prev` (the previous complete backup of the same database). A table
 * that lost more than `maxDropPercent` of its rows, a table that disappeared, or an archive
 * that shrank by more than `maxDropPercent` is a reason; estimated counts (`-1`: never
 * analysed) are left out of the row comparison.
 */
export function compareBackups(
  prev: Manifest,
  cur: Manifest,
  maxDropPercent: number,
): BackupChanges {
  const archive = archiveSizes(prev, cur);
  const reasons: string[] = [];
  if (archive && lostPercent(archive.before, archive.after) > maxDropPercent)
    reasons.push(
      `the archive shrank by ${lostPercent(archive.before, archive.after).toFixed(0)}% (${archive.before} → ${archive.after} bytes)`,
    );
  const notCompared = rowsIncomparable(prev, cur);
  const base = {
    previous: {
      id: prev.id,
      finishedAt: prev.finishedAt,
      where: prev.destinations.filter((d) => d.ok).map((d) => d.name),
    },
    sameCluster:
      prev.database.systemIdentifier && cur.database.systemIdentifier
        ? prev.database.systemIdentifier === cur.database.systemIdentifier
        : null,
    archive,
  };
  if (notCompared !== null)
    return {
      ...base,
      rowsNotCompared: notCompared,
      totalRows: null,
      dropped: [],
      largest: [],
      disappeared: [],
      appeared: [],
      reasons,
    };

  const counts = (m: Manifest) =>
    new Map(m.database.rowCounts.tables.map((t) => [tableName(t), t.rows] as const));
  const [was, now] = [counts(prev), counts(cur)];
  const both: TableDelta[] = [];
  const disappeared: { table: string; before: number }[] = [];
  for (const [table, before] of was) {
    const after = now.get(table);
    if (after === undefined) disappeared.push({ table, before });
    else if (before >= 0 && after >= 0) both.push({ table, before, after });
  }
  const appeared = [...now]
    .filter(([table]) => !was.has(table))
    .map(([table, after]) => ({ table, after }));
  const lost = (d: TableDelta) => d.before - d.after;
  const dropped = both
    .filter((d) => lostPercent(d.before, d.after) > maxDropPercent)
    .sort((x, y) => lost(y) - lost(x));
  const largest = both
    .filter((d) => d.before !== d.after)
    .sort((x, y) => Math.abs(lost(y)) - Math.abs(lost(x)))
    .slice(0, LARGEST);
  if (dropped.length > 0) {
    const first = dropped[0] as TableDelta;
    reasons.push(
      `${dropped.length === 1 ? 'a table' : `${dropped.length} tables`} lost more than ${maxDropPercent}% of ${dropped.length === 1 ? 'its' : 'their'} rows (${first.table}: ${first.before} → ${first.after}${dropped.length > 1 ? ', …' : ''})`,
    );
  }
  if (disappeared.length > 0)
    reasons.push(
      `${disappeared.length === 1 ? 'a table' : `${disappeared.length} tables`} disappeared (${disappeared
        .slice(0, 3)
        .map((d) => d.table)
        .join(', ')}${disappeared.length > 3 ? ', …' : ''})`,
    );
  const sum = (f: (d: TableDelta) => number) => both.reduce((s, d) => s + f(d), 0);
  return {
    ...base,
    rowsNotCompared: null,
    totalRows: { before: sum((d) => d.before), after: sum((d) => d.after) },
    dropped,
    largest,
    disappeared,
    appeared,
    reasons,
  };
}
