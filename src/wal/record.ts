import { z } from 'zod';
import { BACKUP_ID } from '../manifest/id.js';
import { timelineHex } from '../postgres/lsn.js';

/**
 * The WAL archive's layout under the prefix (one folder per timeline):
 *
 * ```
 * <prefix>wal/<timeline>/<segment>.zst.age           a complete segment (000000010000000000000003)
 * <prefix>wal/<timeline>/<segment>.<end>.partial.zst.age  the segment a run ended in, up to its end
 *                                                   LSN (<end>: 16 hex digits), never overwritten
 * <prefix>wal/<timeline>/<timeline>.history.zst.age  the timeline's history file (timeline > 1)
 * <prefix>wal/<timeline>/runs/<run id>.json          what one run shipped (written last; .sig beside it)
 * ```
 */
export const WAL_FOLDER = 'wal/';
export const RUNS_FOLDER = 'runs/';
export const WAL_OBJECT_SUFFIX = '.zst.age';
export const PARTIAL_SUFFIX = '.partial';

export function walPrefix(prefix: string): string {
  return `${prefix}${WAL_FOLDER}`;
}

/** `<prefix>wal/00000001/`. */
export function timelinePrefix(prefix: string, timeline: number): string {
  return `${walPrefix(prefix)}${timelineHex(timeline)}/`;
}

/** The key of a WAL object named `name` ({@link walObjectName}). */
export function walObjectKey(prefix: string, timeline: number, name: string): string {
  return `${timelinePrefix(prefix, timeline)}${name}`;
}

/**
 * An object's name: `<walFile>.zst.age`; a partial carries its end LSN
 * (`000000010000000000000005.0000000005A1B2C8.partial.zst.age`), so a later run's partial of
 * the same segment never replaces one an earlier record vouches for.
 */
export function walObjectName(walFile: string, partialEnd: bigint | null): string {
  const end =
    partialEnd === null
      ? ''
      : `.${partialEnd.toString(16).toUpperCase().padStart(16, '0')}${PARTIAL_SUFFIX}`;
  return `${walFile}${end}${WAL_OBJECT_SUFFIX}`;
}

export function runRecordKey(prefix: string, timeline: number, runId: string): string {
  return `${timelinePrefix(prefix, timeline)}${RUNS_FOLDER}${runId}.json`;
}

/** A run record's key → its timeline and run id; null for any other key. */
export function parseRunRecordKey(
  prefix: string,
  key: string,
): { timeline: number; runId: string } | null {
  const rest = key.startsWith(walPrefix(prefix)) ? key.slice(walPrefix(prefix).length) : null;
  const m = rest === null ? null : /^([0-9A-F]{8})\/runs\/([^/]+)\.json$/.exec(rest);
  if (!m || !BACKUP_ID.test(m[2] as string)) return null;
  return { timeline: Number.parseInt(m[1] as string, 16), runId: m[2] as string };
}

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const bytes = z.number().int().nonnegative();
const digest = z.object({ bytes, sha256 });
const lsn = z.string().regex(/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/);

/** One object a run stored. */
export const WalObject = z.object({
  /** The WAL file name PostgreSQL asks for (`000000010000000000000003`, `00000002.history`). */
  walFile: z.string().min(1),
  /** The object's name in the timeline folder ({@link walObjectName}). */
  name: z.string().min(1),
  /** `segment`: complete; `partial`: from the segment's start up to `endLsn` (padded with zeros on fetch). */
  kind: z.enum(['segment', 'partial', 'history']),
  /** The WAL range it holds (segment and partial). */
  startLsn: lsn.nullable(),
  endLsn: lsn.nullable(),
  /** The WAL bytes themselves (what pg_wal holds, up to endLsn for a partial). */
  wal: digest,
  /** After zstd: what `age -d` gives back. */
  plaintext: digest,
  /** What is stored. */
  encrypted: digest,
  /** The destinations that hold it. */
  destinations: z.array(z.string()),
});
export type WalObject = z.infer<typeof WalObject>;

/** What one `wal` run shipped: written at each destination that holds all of it, last. */
export const WalRunRecord = z.object({
  format: z.literal('pg-dr-wal/1'),
  runId: z.string().regex(BACKUP_ID),
  startedAt: z.iso.datetime(),
  finishedAt: z.iso.datetime(),
  tool: z.object({ name: z.literal('pg-dr'), version: z.string() }),
  runUrl: z.string().nullable(),
  /** The cluster (pg_control_system's system_identifier, digits). */
  systemIdentifier: z.string().regex(/^\d+$/),
  serverVersion: z.string(),
  timeline: z.number().int().positive(),
  segmentBytes: z.number().int().positive(),
  slot: z.string(),
  /** Where this run's WAL starts: the segment boundary holding the slot's restart_lsn. */
  startLsn: lsn,
  /** The server's flushed position when the run started: every byte before it is stored. */
  endLsn: lsn,
  /** The server's clock when `endLsn` was read (the WAL up to it is this recent). */
  endServerTime: z.iso.datetime({ offset: true }).nullable(),
  /** Where the slot is advanced to once this record is stored: the start of the partial segment. */
  confirmLsn: lsn,
  compression: z.literal('zstd'),
  encryption: z.discriminatedUnion('mode', [
    z.object({
      scheme: z.literal('age'),
      mode: z.literal('recipients'),
      recipients: z.array(z.string()).min(1),
    }),
    z.object({ scheme: z.literal('age'), mode: z.literal('passphrase') }),
  ]),
  objects: z.array(WalObject),
  destinations: z.array(
    z.object({ name: z.string(), ok: z.boolean(), error: z.string().nullable() }),
  ),
  /** The public key that signed the record (signing-key), when one did. */
  signedBy: z.string().optional(),
});
export type WalRunRecord = z.infer<typeof WalRunRecord>;

export function parseWalRunRecord(text: string): WalRunRecord {
  return WalRunRecord.parse(JSON.parse(text));
}
