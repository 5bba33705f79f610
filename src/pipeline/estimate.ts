/**
 * How many bytes a backup's database object will come to once stored, known before the dump
 * ends: the database's size (pg_database_size, read before the dump) times the previous
 * backup's ratio of stored bytes to database size, or a default ratio when there is none.
 */
import type { Compression } from '../compression/index.js';
import type { PrefixNeighbours } from '../manifest/catalog.js';
import type { Manifest } from '../manifest/schema.js';
import { formatBytes, type Total } from '../report/progress.js';

/**
 * Stored bytes per byte of pg_database_size when no earlier backup says better. zstd and
 * none are measured (BENCHMARKS.md: the generated 1556 MB database stored 0.24 with zstd,
 * its -Z0 archive is 0.78); gzip (pg_dump -Z) is a rough figure between them. A database
 * of many empty tables stores far less (0.01): the estimate is then high, and the % low.
 */
export const DEFAULT_STORED_RATIO: Readonly<Record<Compression, number>> = {
  zstd: 0.25,
  gzip: 0.3,
  none: 0.8,
};

export interface StoredEstimate {
  readonly bytes: number;
  /** Stored bytes per byte of database. */
  readonly ratio: number;
  /** The backup the ratio comes from; null for the default ratio. */
  readonly from: string | null;
}

/** The previous backup's ratio of stored bytes (database object) to database size, if usable. */
export function storedRatio(m: Manifest): number | null {
  const db = m.objects.find((o) => o.kind === 'database');
  if (!db || m.database.sizeBytes <= 0 || db.encrypted.bytes <= 0) return null;
  return db.encrypted.bytes / m.database.sizeBytes;
}

/** The estimate from the previous backup of the same database and compression, else the default. */
export function estimateStored(
  sizeBytes: number,
  compression: Compression,
  previous: Manifest | null,
): StoredEstimate {
  const ratio =
    previous && previous.database.compression === compression ? storedRatio(previous) : null;
  if (ratio !== null && previous)
    return { bytes: Math.round(sizeBytes * ratio), ratio, from: previous.id };
  const fallback = DEFAULT_STORED_RATIO[compression];
  return { bytes: Math.round(sizeBytes * fallback), ratio: fallback, from: null };
}

/** The words that say how the estimate was made, for the log. */
export function describeEstimate(
  sizeBytes: number,
  compression: Compression,
  e: StoredEstimate,
): string {
  const why =
    e.from === null
      ? `a default ratio for ${compression}: no earlier backup of this database with ${compression} to learn from`
      : `the ratio of backup ${e.from}`;
  return `Progress total: ≈${formatBytes(e.bytes)} to store, an estimate: the database's ${formatBytes(sizeBytes)} × ${e.ratio.toFixed(2)} (${why})`;
}

/**
 * The stored total as the progress reads it: the default estimate at first, refined when the
 * previous backup's manifest (read while the dump runs) arrives.
 */
export function liveEstimate(
  sizeBytes: number,
  compression: Compression,
  neighbours: Promise<PrefixNeighbours | string>,
): () => Total {
  const toTotal = (e: StoredEstimate): Total => ({
    bytes: e.bytes,
    estimate: true,
    basis: describeEstimate(sizeBytes, compression, e),
  });
  let total = toTotal(estimateStored(sizeBytes, compression, null));
  neighbours.then(
    (found) => {
      if (typeof found !== 'string' && found.previous)
        total = toTotal(estimateStored(sizeBytes, compression, found.previous));
    },
    () => undefined,
  );
  return () => total;
}
