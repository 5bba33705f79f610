const MiB = 1024 * 1024;

/** S3's limits: at most 10,000 parts, each 5 MiB – 5 GiB (the last may be smaller). */
export const MAX_PARTS = 10_000;
export const MIN_PART_SIZE = 5 * MiB;
export const MAX_PART_SIZE = 5 * 1024 * MiB;
/** The floor used: whole MiB above S3's minimum; (2 in flight + 1 filling) × 2 destinations = 48 MiB. */
export const DEFAULT_PART_SIZE = 8 * MiB;

export interface UploadShape {
  /** Bytes per part; every part but the last has exactly this size (Cloudflare R2 requires it). */
  readonly partSize: number;
  /** Parts uploaded at once per destination. */
  readonly queueSize: number;
}

/**
 * Part size for a backup stream expected to be about `expectedBytes`. A dump can outgrow
 * the database (bytea in COPY text doubles), so the estimate is doubled (a 1 TiB database
 * gets ~212 MiB parts), capped by S3's maximum; parts are whole MiB. Memory per
 * destination is about partSize × (queueSize + 1): two parts in flight up to 128 MiB parts,
 * one above. Two, not more: on the benchmark (BENCHMARKS.md) four or eight in flight added
 * 27–90 MiB of peak memory and no speed; the stream, not the PUTs, sets the pace.
 */
export function chooseUploadShape(expectedBytes: number): UploadShape {
  const planned = Number.isFinite(expectedBytes) ? 2 * Math.max(0, expectedBytes) : 0;
  const forStream = Math.ceil(planned / (MAX_PARTS - 100) / MiB) * MiB;
  const partSize = Math.min(MAX_PART_SIZE, Math.max(DEFAULT_PART_SIZE, forStream));
  const queueSize = partSize <= 128 * MiB ? 2 : 1;
  return { partSize, queueSize };
}

/** The largest stream that fits in MAX_PARTS parts of `partSize`. */
export function maxStreamBytes(partSize: number): number {
  return partSize * MAX_PARTS;
}
