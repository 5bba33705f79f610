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

/**
 * What pg-dr's own stop of the read raises in every stage: a stage that fails with it was
 * cut, it did not fail on its own.
 */
class Cut extends Error {}

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

/** The most telling failure first: a checksum or size mismatch explains a decryption error. */
const RANK: readonly ReadBackFailure[] = [
  'missing',
  'size',
  'checksum',
  'key',
  'decrypt',
  'decompress',
  'read',
  'consumer',
];

/** What went wrong during one read-back. */
class Failures {
  private list: ReadBackError[] = [];

  /** Records `e`, as a failure of `kind` unless it already says what it is. */
  add(e: unknown, kind: ReadBackFailure): void {
    this.list.push(e instanceof ReadBackError ? e : new ReadBackError(kind, (e as Error).message));
  }

  get any(): boolean {
    return this.list.length > 0;
  }

  first(): ReadBackError | undefined {
    return [...this.list].sort((a, b) => RANK.indexOf(a.kind) - RANK.indexOf(b.kind))[0];
  }
}

/** Stage 1: the stored object's body, or why there is none. */
async function fetchObject(opts: ReadBackOptions): Promise<Readable | ReadBackError> {
  const dest = opts.destination;
  try {
    return await dest.get(opts.key);
  } catch (e) {
    return dest.isNotFound(e)
      ? new ReadBackError('missing', `${opts.key}: missing`)
      : new ReadBackError('read', `${opts.key}: cannot read: ${dest.describeError(e)}`);
  }
}

/** Stage 2: the stored bytes, counted and hashed on their way to the decryption. */
interface Download {
  readonly body: Readable;
  readonly cipher: DigestStream;
  /** Settles once the stored bytes are all read: rejects unless size and SHA-256 match. */
  readonly checked: Promise<void>;
  /** Stops listening to the caller's abort signal. */
  detach(): void;
}

function startDownload(opts: ReadBackOptions, body: Readable, cipher: DigestStream): Download {
  let read = 0;
  body.on('data', (c: Buffer) => {
    read += c.length;
    opts.onBytes?.(read);
  });
  const onAbort = () => body.destroy(new Error('cancelled'));
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const checked = pipeline(body, cipher).then(() => compare(opts.key, cipher, opts.encrypted));
  checked.catch(() => undefined);
  return {
    body,
    cipher,
    checked,
    detach: () => opts.signal?.removeEventListener('abort', onAbort),
  };
}

type Decrypt = NonNullable<ReadBackOptions['decrypt']>;

/**
 * Stage 3: the plaintext, hashed into `plain`. The age header is read first: a wrong key
 * fails here, before any plaintext.
 */
async function startDecryption(
  key: string,
  decrypt: Decrypt,
  download: Download,
  plain: DigestStream,
): Promise<{ readonly checked: Promise<unknown> }> {
  let decrypted: Readable;
  try {
    decrypted = await decryptStream(decrypt.settings, download.cipher);
  } catch (e) {
    download.body.destroy();
    throw new ReadBackError('key', `${key}: cannot decrypt: ${(e as Error).message}`);
  }
  const plaintextOk = pipeline(decrypted, plain).then(
    () => compare(`${key} (decrypted)`, plain, decrypt.plaintext),
    (e: unknown) => {
      throw e instanceof ReadBackError || e instanceof Cut
        ? e
        : new ReadBackError('decrypt', `${key}: decryption failed: ${(e as Error).message}`);
    },
  );
  // Settles once both the stored bytes and the plaintext were checked.
  const checked = Promise.all([download.checked, plaintextOk]);
  checked.catch(() => undefined);
  return { checked };
}

/** Stage 4: the archive as a consumer reads it, decompressed when it was compressed. */
interface Archive {
  readonly stream: Readable;
  /** Rejects when the decompression failed. */
  readonly done: Promise<unknown>;
  kill(): void;
}

async function openArchive(
  key: string,
  compression: Compression | null,
  env: NodeJS.ProcessEnv,
  plain: DigestStream,
): Promise<Archive> {
  if (compression !== 'zstd')
    return { stream: plain, done: Promise.resolve(), kill: () => undefined };
  const zstd = await openZstdDecompressor(env);
  let killed = false;
  const fed = pipeline(plain, zstd.input).catch(() => undefined);
  const done = Promise.all([zstd.done, fed]).catch((e: Error) => {
    if (killed) throw new Cut('the decompression was stopped');
    throw new ReadBackError(
      'decompress',
      `${key}: zstd decompression failed (${zstd.via}): ${e.message}`,
    );
  });
  done.catch(() => undefined);
  return {
    stream: zstd.output,
    done,
    kill: () => {
      killed = true;
      zstd.kill();
    },
  };
}

/**
 * How long the rest of the archive is still read, after its consumer failed, for the checks
 * to say whether the archive itself was the cause.
 */
const VERDICT_WAIT_MS = 10_000;

/**
 * Stage 5: the archive into the consumer, its end held back until every check passed. A
 * consumer that fails stops the whole read (nothing else would drain the stream). Its
 * failure is reported only when nothing upstream failed on its own: a checksum, decryption
 * or decompression failure cuts the consumer's input, and is what explains its error.
 */
async function deliver(
  key: string,
  sink: Sink,
  archive: Archive,
  checked: Promise<unknown>,
  body: Readable,
  failures: Failures,
): Promise<void> {
  const gated = archive.stream.pipe(new EndGate(checked));
  archive.stream.on('error', (e) => gated.destroy(e));
  const target = sink.mayStopEarly ? tolerantWriter(sink) : sink.stdin;
  let cut = false;
  const stopReading = () => {
    if (cut) return;
    cut = true;
    // Every stage upstream then fails with this `Cut`: not a failure of its own.
    body.destroy(new Cut('the read was stopped'));
    archive.kill();
  };
  // Once the consumer is gone, the rest of the archive is read and discarded until every
  // check has its verdict (bounded): pg_restore may have died of what a check finds later
  // (zstd proves its frame's checksum at its end, after handing out the bad data).
  let ended: Promise<void> | null = null;
  const consumerEnded = () => {
    ended ??= (async () => {
      target.destroy();
      archive.stream.unpipe();
      archive.stream.resume();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([checked, archive.done]),
        new Promise((resolve) => {
          timer = setTimeout(resolve, VERDICT_WAIT_MS);
        }),
      ]);
      clearTimeout(timer);
      stopReading();
    })();
    return ended;
  };
  const delivered = pipeline(gated, target).catch(async (e: unknown) => {
    await sink.abort();
    await consumerEnded();
    throw e;
  });
  const consumed = sink.done.catch(async (e: unknown) => {
    await consumerEnded();
    throw e;
  });
  // Every stage settles: the consumer's end stops the others (above), so none is left waiting.
  const [byChecks, byArchive, byDelivery, byConsumer] = await Promise.allSettled([
    checked,
    archive.done,
    delivered,
    consumed,
  ]);
  let upstream = false;
  for (const r of [byChecks, byArchive]) {
    if (r?.status !== 'rejected' || r.reason instanceof Cut) continue;
    // Stopped by something else than a check (the caller's cancel, a lost connection).
    if (cut && !(r.reason instanceof ReadBackError)) continue;
    failures.add(r.reason, r === byChecks ? 'checksum' : 'decompress');
    upstream = true;
  }
  if (!upstream) {
    const sinkError =
      byConsumer?.status === 'rejected'
        ? byConsumer.reason
        : byDelivery?.status === 'rejected'
          ? byDelivery.reason
          : null;
    if (sinkError)
      failures.add(
        new ReadBackError('consumer', `${key}: ${(sinkError as Error).message}`),
        'consumer',
      );
  }
  if (failures.any) await sink.abort();
}

/** Stage 5 without a consumer: the archive read to its end and discarded. */
async function drain(archive: Archive, checked: Promise<unknown>, failures: Failures) {
  archive.stream.resume();
  const results = await Promise.allSettled([checked, archive.done]);
  for (const r of results) if (r.status === 'rejected') failures.add(r.reason, 'decrypt');
}

function digestOf(d: DigestStream): { bytes: number; sha256: string } | null {
  try {
    return { bytes: d.bytes, sha256: d.sha256() };
  } catch {
    return null;
  }
}

/**
 * Streams one object back from a destination and proves it: size and SHA-256 of what is
 * stored; with `decrypt`, the age header (a wrong key fails before any plaintext), the
 * plaintext's size and SHA-256, the decompression, and the consumer's exit. One pass, no
 * temporary file.
 */
export async function readBack(opts: ReadBackOptions): Promise<ReadBackResult> {
  const sink = opts.decrypt?.sink ?? null;
  const body = await fetchObject(opts);
  if (body instanceof ReadBackError) {
    await sink?.abort();
    return {
      ok: false,
      failure: body.kind,
      error: body.message,
      encrypted: null,
      plaintext: null,
    };
  }
  const cipher = new DigestStream();
  const plain = new DigestStream();
  const failures = new Failures();
  const download = startDownload(opts, body, cipher);
  try {
    if (!opts.decrypt) {
      cipher.resume();
      await download.checked;
    } else {
      const decrypt = opts.decrypt;
      const { checked } = await startDecryption(opts.key, decrypt, download, plain);
      const archive = await openArchive(
        opts.key,
        decrypt.compression,
        opts.env ?? process.env,
        plain,
      );
      if (decrypt.sink) await deliver(opts.key, decrypt.sink, archive, checked, body, failures);
      else await drain(archive, checked, failures);
    }
  } catch (e) {
    failures.add(e, 'read');
    await sink?.abort();
  } finally {
    download.detach();
  }
  const first = failures.first();
  return {
    ok: first === undefined,
    failure: first?.kind ?? null,
    error: first ? first.message : null,
    encrypted: digestOf(cipher),
    plaintext: opts.decrypt ? digestOf(plain) : null,
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
