import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execa, type ResultPromise } from 'execa';
import { childEnv } from '../child-env.js';
import { zstdCompressArgs } from '../compression/index.js';
import type { EncryptionSettings } from '../crypto/age.js';
import { DigestStream } from '../crypto/digest.js';
import { BackupFailed } from '../errors.js';
import { storeObject } from '../pipeline/store.js';
import { formatLsn, parseLsn, segmentName } from '../postgres/lsn.js';
import {
  parseReplicationMessage,
  type ReplicationConnection,
  statusUpdate,
} from '../postgres/replication.js';
import type { Host } from '../report/host.js';
import type { Destination } from '../storage/destination.js';
import { SegmentCutter } from './cutter.js';
import { type WalObject, walObjectKey, walObjectName } from './record.js';

/** What every stored WAL file needs: where it goes and how it is sealed. */
export interface WalStoreContext {
  readonly prefix: string;
  readonly timeline: number;
  readonly encryption: EncryptionSettings;
  /** The zstd binary. */
  readonly zstd: string;
  readonly host: Host;
  readonly signal: AbortSignal;
  /** The destinations still taking objects; one that fails an object is dropped from it. */
  readonly live: Destination[];
  /** Why each dropped destination was dropped. */
  readonly failures: Map<string, string>;
}

/** One WAL file to store, and what the record says of it. */
interface WalFileSpec {
  readonly walFile: string;
  readonly kind: WalObject['kind'];
  readonly startLsn: bigint | null;
  readonly endLsn: bigint | null;
  readonly expectedBytes: number;
}

/**
 * Stores one WAL file from `source`: its bytes hashed, zstd, then the same path as a backup's
 * objects (age, both destinations at once, hashes of both sides). Rejects when it is stored
 * nowhere, or zstd or the source failed.
 */
export async function storeWalFile(
  ctx: WalStoreContext,
  spec: WalFileSpec,
  source: Readable,
): Promise<WalObject> {
  const name = walObjectName(spec.walFile, spec.kind === 'partial' ? spec.endLsn : null);
  const wal = new DigestStream();
  const zstd: ResultPromise = execa(ctx.zstd, zstdCompressArgs(), {
    env: childEnv(),
    extendEnv: false,
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: { stdout: false, stderr: true },
  });
  const fed = pipeline(source, wal, zstd.stdin as NodeJS.WritableStream);
  const zstdDone = zstd.then(
    () => undefined,
    (e: { stderr?: unknown; exitCode?: number }) => {
      throw new Error(`zstd failed (exit ${e.exitCode ?? '?'}): ${String(e.stderr ?? '').trim()}`);
    },
  );
  const producers = Promise.all([fed, zstdDone]).then(() => undefined);
  producers.catch(() => undefined);
  const live = [...ctx.live];
  const stored = await storeObject({
    input: zstd.stdout as Readable,
    producers,
    key: walObjectKey(ctx.prefix, ctx.timeline, name),
    kind: 'wal',
    encryption: ctx.encryption,
    live,
    expectedBytes: spec.expectedBytes,
    host: ctx.host,
    signal: ctx.signal,
    kill: () => {
      zstd.kill('SIGTERM');
      source.destroy();
    },
  });
  for (const r of stored.results) {
    if (r.ok) continue;
    ctx.failures.set(r.destination, `${name}: ${r.error ?? 'not stored'}`);
    const i = ctx.live.findIndex((d) => d.settings.name === r.destination);
    if (i >= 0) ctx.live.splice(i, 1);
  }
  return {
    walFile: spec.walFile,
    name,
    kind: spec.kind,
    startLsn: spec.startLsn === null ? null : formatLsn(spec.startLsn),
    endLsn: spec.endLsn === null ? null : formatLsn(spec.endLsn),
    wal: { bytes: wal.bytes, sha256: wal.sha256() },
    plaintext: stored.entry.plaintext,
    encrypted: stored.entry.encrypted,
    destinations: stored.results.filter((r) => r.ok).map((r) => r.destination),
  };
}

/** How many segments may be uploading at once while the next one streams in. */
export const SEGMENTS_IN_FLIGHT = 2;

/** How often the run tells the server it is alive (well under wal_sender_timeout's 60 s default). */
export const FEEDBACK_INTERVAL_MS = 10_000;

/**
 * Every {@link FEEDBACK_INTERVAL_MS}: a status update, and a check that the server still
 * talks (it sends a keepalive at least every wal_sender_timeout / 2, 30 s by default).
 */
function startFeedback(
  reply: () => void,
  stalled: () => string | null,
): { heard(): void; onStall(f: (e: Error) => void): void; stop(): void } {
  let heard = Date.now();
  let onStall: (e: Error) => void = () => undefined;
  const timer = setInterval(() => {
    reply();
    const why = Date.now() - heard > SILENCE_MS ? stalled() : null;
    if (why) onStall(new BackupFailed(why, null));
  }, FEEDBACK_INTERVAL_MS);
  timer.unref();
  return {
    heard: () => {
      heard = Date.now();
    },
    onStall: (f) => {
      onStall = f;
    },
    stop: () => clearInterval(timer),
  };
}

/** How long the stream may stay silent (no WAL, no keepalive) before the run gives up. */
export const SILENCE_MS = 120_000;

/** The replication stream once every byte up to the end is stored: confirm, then close. */
export interface ShippedStream {
  /** The objects stored, in WAL order. */
  readonly objects: readonly WalObject[];
  /**
   * Tells the server the WAL up to `lsn` is stored for good (the slot's restart_lsn moves
   * there), ends the stream and waits for the server to end it too. Only after the record.
   */
  confirm(lsn: bigint): Promise<void>;
  /** Ends the stream without confirming anything (the slot stays where it was). */
  abandon(): void;
}

/** One segment being written into its upload. */
interface OpenSegment {
  readonly start: bigint;
  readonly input: PassThrough;
  readonly stored: Promise<WalObject>;
}

/** Starts storing the segment that begins at `segment` (a partial when the end falls in it). */
function openSegment(ctx: WalStoreContext, cutter: SegmentCutter, segment: bigint): OpenSegment {
  const input = new PassThrough();
  const partial = cutter.isPartial(segment);
  const size = BigInt(cutter.segmentBytes);
  const stored = storeWalFile(
    ctx,
    {
      walFile: segmentName(ctx.timeline, segment, cutter.segmentBytes),
      kind: partial ? 'partial' : 'segment',
      startLsn: segment,
      endLsn: partial ? cutter.end : segment + size,
      expectedBytes: cutter.segmentBytes,
    },
    input,
  );
  stored.catch(() => undefined);
  return { start: segment, input, stored };
}

/**
 * Streams the WAL from `start` (a segment boundary) to `end` over `conn`'s slot, each
 * segment stored as it fills (up to {@link SEGMENTS_IN_FLIGHT} at once), the segment `end`
 * falls in stored as a partial. Standby status updates report as written only what is
 * stored, and never a flush position: the slot does not move until {@link ShippedStream.confirm}.
 */
export async function shipWal(
  ctx: WalStoreContext,
  conn: ReplicationConnection,
  o: {
    readonly slot: string;
    readonly start: bigint;
    readonly end: bigint;
    readonly segmentBytes: number;
  },
): Promise<ShippedStream> {
  const cutter = new SegmentCutter(o.start, o.end, o.segmentBytes);
  const stream = conn.startStreaming(o.slot, o.start, ctx.timeline);
  const objects: Promise<WalObject>[] = [];
  let stored = o.start;
  let current: OpenSegment | null = null;
  const reply = (flush = 0n) => stream.write(statusUpdate({ write: stored, flush, apply: flush }));
  const watch = startFeedback(
    () => reply(),
    () =>
      cutter.done
        ? null
        : `The server sent nothing for ${SILENCE_MS / 1000} s at ${formatLsn(cutter.position)} (of ${formatLsn(o.end)}): the replication connection is stalled. Nothing was confirmed; the next run ships from the same position.`,
  );
  const open = (segment: bigint): OpenSegment => {
    const seg = openSegment(ctx, cutter, segment);
    const p = seg.stored.then((obj) => {
      if (obj.kind === 'segment' && obj.endLsn) {
        const end = parseLsn(obj.endLsn);
        if (end > stored) stored = end;
      }
      return obj;
    });
    p.catch(() => undefined);
    objects.push(p);
    return { ...seg, stored: p };
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const fail = (e: unknown) => {
        current?.input.destroy(e as Error);
        reject(e);
      };
      stream.on('error', fail);
      stream.on('end', () => {
        if (!cutter.done) fail(endedEarly(cutter.position, o.end));
      });
      ctx.signal.addEventListener('abort', () => fail(ctx.signal.reason), { once: true });
      const inFlight = () => objects.length - settledCount;
      let settledCount = 0;
      let draining = false;
      const maybeResume = () => {
        if (!draining && inFlight() < SEGMENTS_IN_FLIGHT) stream.resume();
      };
      watch.onStall(fail);
      const onData = (chunk: Buffer) => {
        watch.heard();
        try {
          if (cutter.done) return;
          const m = parseReplicationMessage(chunk);
          if (m.kind === 'keepalive') {
            if (m.replyRequested) reply();
            return;
          }
          for (const piece of cutter.push(m.start, m.data)) {
            if (current === null || current.start !== piece.segment) current = open(piece.segment);
            const seg = current;
            const ends = piece.endsSegment || cutter.done;
            // An ended stream emits no 'drain': the segments in flight hold the stream back then.
            if (!seg.input.write(piece.data) && !ends) {
              draining = true;
              stream.pause();
              seg.input.once('drain', () => {
                draining = false;
                maybeResume();
              });
            }
            if (ends) {
              seg.input.end();
              current = null;
              void seg.stored.then(() => {
                settledCount++;
                maybeResume();
              }, fail);
              if (inFlight() >= SEGMENTS_IN_FLIGHT) stream.pause();
            }
          }
          if (cutter.done) resolve();
        } catch (e) {
          fail(e);
        }
      };
      stream.on('data', onData);
      if (cutter.done) resolve();
    });
    const shipped = await Promise.all(objects);
    // After the end, what the server still sends is read and dropped.
    stream.resume();
    return {
      objects: shipped,
      async confirm(lsn) {
        watch.stop();
        reply(lsn);
        await endStream(stream);
      },
      abandon() {
        watch.stop();
        stream.destroy();
      },
    };
  } catch (e) {
    watch.stop();
    current = null;
    stream.destroy();
    await Promise.allSettled(objects);
    throw e;
  }
}

function endedEarly(at: bigint, end: bigint): BackupFailed {
  return new BackupFailed(
    `The server ended the replication stream at ${formatLsn(at)}, before ${formatLsn(end)} (a timeline switch, or the server stopping). Nothing was confirmed; the next run ships from the same position.`,
    null,
  );
}

/** How long the server may take to answer the end of the stream. */
const END_TIMEOUT_MS = 30_000;

/** Sends CopyDone and waits until the server has ended the stream too. */
async function endStream(stream: NodeJS.ReadWriteStream & { destroy(): void }): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error('the server did not end the replication stream')),
      END_TIMEOUT_MS,
    );
    stream.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    stream.once('finish', () => {
      clearTimeout(timer);
      resolve();
    });
    stream.end();
  });
}
