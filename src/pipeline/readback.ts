import { PassThrough, type Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Compression, openZstdDecompressor } from '../compression/index.js';
import { type DecryptionSettings, decryptStream } from '../crypto/age.js';
import { DigestStream } from '../crypto/digest.js';
import type { Destination } from '../storage/destination.js';

export interface Expected {
  readonly bytes: number;
  readonly sha256: string;
}

/** Where the decrypted, decompressed stream goes (pg_restore), if anywhere. */
export interface Sink {
  readonly stdin: Writable;
  /** Settles when the consumer is done; its rejection fails the read-back. */
  readonly done: Promise<unknown>;
  /** Stops the consumer without letting it finish (a restore is then rolled back). */
  abort(): Promise<void>;
  /**
   * The consumer may stop reading before the end (pg_restore --list). The rest of the
   * stream is still read, hashed and decompressed, then discarded.
   */
  readonly mayStopEarly: boolean;
}

export interface ReadBackOptions {
  readonly destination: Destination;
  readonly key: string;
  /** Size and SHA-256 of the stored (encrypted) object, from the manifest. */
  readonly encrypted: Expected;
  /** Decrypt too, and check the plaintext. */
  readonly decrypt?: {
    readonly settings: DecryptionSettings;
    readonly plaintext: Expected;
    /** How the plaintext was compressed: `zstd` is decompressed before the sink. */
    readonly compression: Compression | null;
    readonly sink: Sink | null;
  };
  readonly signal?: AbortSignal;
  /** Where the zstd binary is looked up (PATH). */
  readonly env?: NodeJS.ProcessEnv;
  /** Bytes read so far, for progress. */
  readonly onBytes?: (n: number) => void;
}

export type ReadBackFailure =
  | 'missing'
  | 'read'
  | 'size'
  | 'checksum'
  | 'key'
  | 'decrypt'
  | 'decompress'
  | 'consumer';

export interface ReadBackResult {
  readonly ok: boolean;
  readonly failure: ReadBackFailure | null;
  /** What differed or failed, naming the object. */
  readonly error: string | null;
  readonly encrypted: { bytes: number; sha256: string } | null;
  readonly plaintext: { bytes: number; sha256: string } | null;
}

class ReadBackError extends Error {
  constructor(
    readonly kind: ReadBackFailure,
    message: string,
  ) {
    super(message);
  }
}

function compare(what: string, d: DigestStream, expected: Expected): void {
  if (d.bytes !== expected.bytes)
    throw new ReadBackError(
      'size',
      `${what}: ${d.bytes} bytes read, the manifest says ${expected.bytes} (truncated or altered)`,
    );
  if (d.sha256() !== expected.sha256)
    throw new ReadBackError(
      'checksum',
      `${what}: SHA-256 ${d.sha256()} differs from the manifest's ${expected.sha256}`,
    );
}

/**
 * Holds back the end of a stream until `gate` resolves, so a consumer (pg_restore) can
 * never see a complete archive whose checksum has not matched yet.
 */
class EndGate extends Transform {
  constructor(private readonly gate: Promise<unknown>) {
    super();
  }
  override _transform(
    chunk: Buffer,
    _e: BufferEncoding,
    cb: (e?: Error | null, d?: Buffer) => void,
  ): void {
    cb(null, chunk);
  }
  override _flush(cb: (e?: Error | null) => void): void {
    this.gate.then(
      () => cb(),
      (e: unknown) => cb(e as Error),
    );
  }
}

/** Writes to `sink` while it reads; once it has stopped early, swallows the rest. */
function tolerantWriter(sink: Sink): Writable {
  let open = true;
  sink.stdin.on('error', () => {
    open = false;
  });
  sink.stdin.on('close', () => {
    open = false;
  });
  const out = new PassThrough();
  out.on('data', (chunk: Buffer) => {
    if (open && !sink.stdin.write(chunk)) {
      out.pause();
      // Whichever comes first resumes; the other listener goes too, or they pile up.
      const resume = () => {
        sink.stdin.off('drain', resume);
        sink.stdin.off('close', resume);
        out.resume();
      };
      sink.stdin.on('drain', resume);
      sink.stdin.on('close', resume);
    }
  });
  out.on('end', () => {
    if (open) sink.stdin.end();
  });
  return out;
}

/**
 * Streams one object back from a destination and proves it: size and SHA-256 of what is
 * stored; with `decrypt`, the age header (a wrong key fails before any plaintext), the
 * plaintext's size and SHA-256, the decompression, and the consumer's exit. One pass, no
 * temporary file.
 */
export async function readBack(opts: ReadBackOptions): Promise<ReadBackResult> {
  const cipher = new DigestStream();
  const plain = new DigestStream();
  const { sink } = opts.decrypt ?? { sink: null };
  const failures: ReadBackError[] = [];
  const fail = (e: unknown, kind: ReadBackFailure) => {
    failures.push(e instanceof ReadBackError ? e : new ReadBackError(kind, (e as Error).message));
  };
  let body: Readable;
  try {
    body = await opts.destination.get(opts.key);
  } catch (e) {
    const missing = opts.destination.isNotFound(e);
    await sink?.abort();
    return {
      ok: false,
      failure: missing ? 'missing' : 'read',
      error: missing
        ? `${opts.key}: missing`
        : `${opts.key}: cannot read: ${opts.destination.describeError(e)}`,
      encrypted: null,
      plaintext: null,
    };
  }
  let read = 0;
  body.on('data', (c: Buffer) => {
    read += c.length;
    opts.onBytes?.(read);
  });
  const onAbort = () => body.destroy(new Error('cancelled'));
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const downloaded = pipeline(body, cipher).then(() => compare(opts.key, cipher, opts.encrypted));
  downloaded.catch(() => undefined);

  try {
    if (!opts.decrypt) {
      cipher.resume();
      await downloaded;
    } else {
      let decrypted: Readable;
      try {
        decrypted = await decryptStream(opts.decrypt.settings, cipher);
      } catch (e) {
        body.destroy();
        throw new ReadBackError('key', `${opts.key}: cannot decrypt: ${(e as Error).message}`);
      }
      const decryptedOk = pipeline(decrypted, plain).then(
        () => compare(`${opts.key} (decrypted)`, plain, opts.decrypt?.plaintext as Expected),
        (e: unknown) => {
          throw e instanceof ReadBackError
            ? e
            : new ReadBackError(
                'decrypt',
                `${opts.key}: decryption failed: ${(e as Error).message}`,
              );
        },
      );
      const verified = Promise.all([downloaded, decryptedOk]);
      verified.catch(() => undefined);
      let archive: Readable = plain;
      let decompressed: Promise<unknown> = Promise.resolve();
      let killDecompressor = () => undefined as unknown;
      if (opts.decrypt.compression === 'zstd') {
        const zstd = await openZstdDecompressor(opts.env ?? process.env);
        const fed = pipeline(plain, zstd.input).catch(() => undefined);
        decompressed = Promise.all([zstd.done, fed]).catch((e: Error) => {
          throw new ReadBackError(
            'decompress',
            `${opts.key}: zstd decompression failed (${zstd.via}): ${e.message}`,
          );
        });
        archive = zstd.output;
        killDecompressor = () => zstd.kill();
      }
      if (sink) {
        const gated = archive.pipe(new EndGate(verified));
        archive.on('error', (e) => gated.destroy(e));
        const target = sink.mayStopEarly ? tolerantWriter(sink) : sink.stdin;
        // A consumer that fails stops the whole read: nothing else would drain the stream.
        let consumerFailed = false;
        const stopReading = (e: unknown) => {
          consumerFailed = true;
          body.destroy(e instanceof Error ? e : new Error(String(e)));
          killDecompressor();
        };
        const delivered = pipeline(gated, target).catch(async (e: unknown) => {
          await sink.abort();
          stopReading(e);
          throw e;
        });
        const consumed = sink.done.catch((e: unknown) => {
          stopReading(e);
          throw e;
        });
        const results = await Promise.allSettled([verified, decompressed, delivered, consumed]);
        const order: ReadBackFailure[] = ['checksum', 'decompress', 'consumer', 'consumer'];
        results.forEach((r, i) => {
          if (r.status !== 'rejected') return;
          // Once the consumer failed, the others only report the stream being cut.
          if (consumerFailed && i < 2 && !(r.reason instanceof ReadBackError)) return;
          fail(r.reason, order[i] as ReadBackFailure);
        });
        if (consumerFailed) {
          const sinkError =
            results[3]?.status === 'rejected'
              ? results[3].reason
              : results[2]?.status === 'rejected'
                ? results[2].reason
                : null;
          if (sinkError) {
            failures.length = 0;
            fail(
              new ReadBackError('consumer', `${opts.key}: ${(sinkError as Error).message}`),
              'consumer',
            );
          }
        }
        if (failures.length > 0) await sink.abort();
      } else {
        archive.resume();
        const results = await Promise.allSettled([verified, decompressed]);
        for (const r of results) if (r.status === 'rejected') fail(r.reason, 'decrypt');
      }
    }
  } catch (e) {
    fail(e, 'read');
    await sink?.abort();
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  // The most telling failure first: a checksum or size mismatch explains a decryption error.
  const rank: ReadBackFailure[] = [
    'missing',
    'size',
    'checksum',
    'key',
    'decrypt',
    'decompress',
    'read',
    'consumer',
  ];
  failures.sort((a, b) => rank.indexOf(a.kind) - rank.indexOf(b.kind));
  const first = failures[0];
  const digest = (d: DigestStream) => {
    try {
      return { bytes: d.bytes, sha256: d.sha256() };
    } catch {
      return null;
    }
  };
  return {
    ok: first === undefined,
    failure: first?.kind ?? null,
    error: first ? first.message : null,
    encrypted: digest(cipher),
    plaintext: opts.decrypt ? digest(plain) : null,
  };
}

/**
 * Reads a small object back (no compression: the config bundle, the globals), proves it as
 * `readBack` does, and hands its plaintext to `consume`, whose result counts only if every
 * check passed.
 */
export async function readObjectInto<T>(
  opts: {
    readonly destination: Destination;
    readonly key: string;
    readonly entry: { readonly encrypted: Expected; readonly plaintext: Expected };
    readonly decryption: DecryptionSettings;
    readonly signal?: AbortSignal;
  },
  consume: (plaintext: Readable) => Promise<T>,
): Promise<{ read: ReadBackResult; value: T | null }> {
  const into = new PassThrough();
  const consumed = consume(into);
  consumed.catch(() => undefined);
  const read = await readBack({
    destination: opts.destination,
    key: opts.key,
    encrypted: opts.entry.encrypted,
    decrypt: {
      settings: opts.decryption,
      plaintext: opts.entry.plaintext,
      compression: null,
      sink: {
        stdin: into,
        done: consumed,
        abort: async () => {
          into.destroy(new Error(`${opts.key}: the check failed`));
        },
        mayStopEarly: false,
      },
    },
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return { read, value: read.ok ? await consumed : null };
}
