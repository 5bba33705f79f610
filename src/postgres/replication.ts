import type { Duplex } from 'node:stream';
import type pg from 'pg';
import * as copyStreams from 'pg-copy-streams';
import { UserError } from '../errors.js';
import { formatLsn, parseLsn, parseSegmentSize } from './lsn.js';
import { connectClient, sqlErrorOf } from './session.js';
import type { DatabaseTarget } from './url.js';

/**
 * The streaming replication protocol's messages inside CopyData, as a physical walsender
 * sends and takes them (https://www.postgresql.org/docs/current/protocol-replication.html).
 */
export type ReplicationMessage =
  /** XLogData: `data` is the WAL from `start` on; `serverEnd` the server's end of WAL. */
  | {
      readonly kind: 'wal';
      readonly start: bigint;
      readonly serverEnd: bigint;
      readonly sentAt: Date;
      readonly data: Buffer;
    }
  /** Primary keepalive: answer at once when `replyRequested`. */
  | {
      readonly kind: 'keepalive';
      readonly serverEnd: bigint;
      readonly sentAt: Date;
      readonly replyRequested: boolean;
    };

/** PostgreSQL's epoch (2000-01-01 UTC) in Unix milliseconds: its timestamps count µs from it. */
const PG_EPOCH_MS = 946_684_800_000;

function pgTime(micros: bigint): Date {
  return new Date(PG_EPOCH_MS + Number(micros / 1000n));
}

/** One CopyData payload of a physical replication stream; throws on anything else. */
export function parseReplicationMessage(buf: Buffer): ReplicationMessage {
  const tag = buf[0];
  if (tag === 0x77 && buf.length >= 25)
    return {
      kind: 'wal',
      start: buf.readBigUInt64BE(1),
      serverEnd: buf.readBigUInt64BE(9),
      sentAt: pgTime(buf.readBigInt64BE(17)),
      data: buf.subarray(25),
    };
  if (tag === 0x6b && buf.length >= 18)
    return {
      kind: 'keepalive',
      serverEnd: buf.readBigUInt64BE(1),
      sentAt: pgTime(buf.readBigInt64BE(9)),
      replyRequested: buf[17] === 1,
    };
  throw new Error(
    `unexpected replication message (tag ${tag === undefined ? 'none' : `0x${tag.toString(16)}`}, ${buf.length} bytes)`,
  );
}

/**
 * A standby status update: the positions written, flushed and applied. For a physical slot
 * the server moves the slot's restart_lsn to `flush` (0 = invalid: the slot stays where it
 * is), so pg-dr sends only what it has stored, and a flush position only once the run's
 * record is stored.
 */
export function statusUpdate(
  p: { write: bigint; flush: bigint; apply: bigint },
  now: Date = new Date(),
  replyRequested = false,
): Buffer {
  const b = Buffer.alloc(34);
  b[0] = 0x72;
  b.writeBigUInt64BE(p.write, 1);
  b.writeBigUInt64BE(p.flush, 9);
  b.writeBigUInt64BE(p.apply, 17);
  b.writeBigInt64BE(BigInt(now.getTime() - PG_EPOCH_MS) * 1000n, 25);
  b[33] = replyRequested ? 1 : 0;
  return b;
}

/** IDENTIFY_SYSTEM's answer: the cluster, its current timeline and its flushed end of WAL. */
export interface SystemIdentity {
  readonly systemIdentifier: string;
  readonly timeline: number;
  /** The server's flushed WAL position when asked: what a walsender can send up to. */
  readonly flushed: bigint;
}

/** A physical replication connection (walsender), before and while it streams. */
export interface ReplicationConnection {
  identify(): Promise<SystemIdentity>;
  /** `SHOW wal_segment_size` in bytes. */
  segmentSize(): Promise<number>;
  /** A timeline's history file: its name and content (`TIMELINE_HISTORY`). */
  timelineHistory(timeline: number): Promise<{ name: string; content: Buffer }>;
  /**
   * `START_REPLICATION SLOT … PHYSICAL <start> TIMELINE <t>`: a duplex of CopyData payloads,
   * one message per chunk (object mode); writing sends a payload; ending it sends CopyDone.
   */
  startStreaming(slot: string, start: bigint, timeline: number): Duplex;
  close(): Promise<void>;
}

/** A slot name as PostgreSQL accepts one (lower-case letters, digits, underscores, ≤ 63). */
export const SLOT_NAME = /^[a-z0-9_]{1,63}$/;

type Both = (text: string, options?: object) => Duplex & pg.Submittable;
const both = (copyStreams as unknown as { both: Both }).both;

/** Opens a physical replication connection to `target` (the URL's role needs REPLICATION). */
export async function openReplication(target: DatabaseTarget): Promise<ReplicationConnection> {
  const client = await connectClient(target, { replication: 'true' });
  const simple = async <T>(sql: string): Promise<T[]> => {
    try {
      return (await client.query(sql)).rows as T[];
    } catch (e) {
      throw sqlErrorOf(e);
    }
  };
  let closed = false;
  return {
    async identify() {
      const [row] = await simple<{ systemid: string; timeline: number | string; xlogpos: string }>(
        'IDENTIFY_SYSTEM',
      );
      if (!row) throw new UserError('IDENTIFY_SYSTEM returned nothing');
      return {
        systemIdentifier: String(row.systemid),
        timeline: Number(row.timeline),
        flushed: parseLsn(row.xlogpos),
      };
    },
    async segmentSize() {
      const [row] = await simple<{ wal_segment_size: string }>('SHOW wal_segment_size');
      return parseSegmentSize(row?.wal_segment_size ?? '');
    },
    async timelineHistory(timeline) {
      const [row] = await simple<{ filename: string; content: Buffer | string }>(
        `TIMELINE_HISTORY ${timeline}`,
      );
      if (!row) throw new UserError(`TIMELINE_HISTORY ${timeline} returned nothing`);
      return {
        name: row.filename,
        content: Buffer.isBuffer(row.content) ? row.content : Buffer.from(row.content),
      };
    },
    startStreaming(slot, start, timeline) {
      if (!SLOT_NAME.test(slot)) throw new Error(`not a slot name: ${slot}`);
      const stream = both(
        `START_REPLICATION SLOT ${slot} PHYSICAL ${formatLsn(start)} TIMELINE ${timeline}`,
        { alignOnCopyDataFrame: true, readableObjectMode: true },
      );
      client.query(stream);
      return stream;
    },
    async close() {
      if (closed) return;
      closed = true;
      await client.end().catch(() => undefined);
    },
  };
}
