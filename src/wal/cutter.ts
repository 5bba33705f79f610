import { formatLsn, segmentStart } from '../postgres/lsn.js';

/** A run of WAL bytes inside one segment. */
export interface Piece {
  /** The start of the segment the bytes belong to. */
  readonly segment: bigint;
  readonly data: Buffer;
  /** The bytes reach the segment's end: the segment is complete. */
  readonly endsSegment: boolean;
}

/**
 * Cuts the replication stream into segment-sized pieces, from a segment boundary up to a
 * fixed end position: every byte from `start` to `end` once, in order, split where a
 * segment ends, nothing after `end`. A message that starts after the position reached is a
 * gap in the stream and throws; bytes already had (a message resent) are skipped.
 */
export class SegmentCutter {
  private at: bigint;

  constructor(
    readonly start: bigint,
    readonly end: bigint,
    readonly segmentBytes: number,
  ) {
    if (segmentStart(start, segmentBytes) !== start)
      throw new Error(`the stream must start on a segment boundary, not at ${formatLsn(start)}`);
    if (end < start)
      throw new Error(`the end ${formatLsn(end)} lies before the start ${formatLsn(start)}`);
    this.at = start;
  }

  /** The next position expected. */
  get position(): bigint {
    return this.at;
  }

  /** Every byte up to the end has been cut. */
  get done(): boolean {
    return this.at >= this.end;
  }

  /** Whether the segment starting at `segment` ends after `end` (stored as a partial). */
  isPartial(segment: bigint): boolean {
    return segment + BigInt(this.segmentBytes) > this.end;
  }

  push(messageStart: bigint, bytes: Buffer): Piece[] {
    if (this.done) return [];
    if (messageStart > this.at)
      throw new Error(
        `the server sent WAL from ${formatLsn(messageStart)} while ${formatLsn(this.at)} was expected: a gap in the stream`,
      );
    const skip = this.at - messageStart;
    if (skip >= BigInt(bytes.length)) return [];
    let data = bytes.subarray(Number(skip));
    const pieces: Piece[] = [];
    const size = BigInt(this.segmentBytes);
    while (data.length > 0 && this.at < this.end) {
      const segment = segmentStart(this.at, this.segmentBytes);
      const limit = segment + size < this.end ? segment + size : this.end;
      const n = Math.min(Number(limit - this.at), data.length);
      this.at += BigInt(n);
      pieces.push({ segment, data: data.subarray(0, n), endsSegment: this.at === segment + size });
      data = data.subarray(n);
    }
    return pieces;
  }
}
