import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';

/** SHA-256 and byte count of what flows through, computed on the way (no second read). */
export class DigestStream extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;
  private hex: string | undefined;

  override _transform(
    chunk: Buffer,
    _enc: BufferEncoding,
    cb: (e?: Error | null, d?: Buffer) => void,
  ): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }

  override _flush(cb: () => void): void {
    this.hex = this.hash.digest('hex');
    cb();
  }

  /** The hex digest; only once the stream has ended. */
  sha256(): string {
    if (this.hex === undefined) throw new Error('DigestStream read before the end of the stream');
    return this.hex;
  }
}
