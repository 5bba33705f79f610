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
  /** Parts uploaded at once per destination to begin with. */
  readonly queueSize: number;
  /** The most parts in flight per destination when the link asks for more (src/storage/in-flight.ts). */
  readonly maxInFlight: number;
}

/**
 * Memory for parts in flight per destination when the link is long: 40 MiB is five 8 MiB
 * parts (the dump's two destinations then hold 2 × 6 parts = 96 MiB instead of 48 MiB).
 * Parts of more than 20 MiB (databases over ~100 GB) stay at queueSize.
 */
export const IN_FLIGHT_BUDGET = 40 * MiB;

/**
 * Part size for a backup stream expected to be about `expectedBytes`. A dump can outgrow
 * the database (bytea in COPY text doubles), so the estimate is doubled (a 1 TiB database
 * gets ~212 MiB parts), capped by S3's maximum; parts are whole MiB. Memory per
 * destination is about partSize × (queueSize + 1): two parts in flight up to 128 MiB parts,
 * one above. Two to begin with: on loopback (BENCHMARKS.md) four or eight in flight added
 * 27–90 MiB of peak memory and no speed; the stream, not the PUTs, sets the pace. On a long
 * path more parts go at once, up to maxInFlight (IN_FLIGHT_BUDGET).
 */
export function chooseUploadShape(expectedBytes: number): UploadShape {
  const planned = Number.isFinite(expectedBytes) ? 2 * Math.max(0, expectedBytes) : 0;
  const forStream = Math.ceil(planned / (MAX_PARTS - 100) / MiB) * MiB;
  const partSize = Math.min(MAX_PART_SIZE, Math.max(DEFAULT_PART_SIZE, forStream));
  const queueSize = partSize <= 128 * MiB ? 2 : 1;
  const maxInFlight = Math.max(queueSize, Math.floor(IN_FLIGHT_BUDGET / partSize));
  return { partSize, queueSize, maxInFlight };
}

/** The largest stream that fits in MAX_PARTS parts of `partSize`. */
export function maxStreamBytes(partSize: number): number {
  return partSize * MAX_PARTS;
}
