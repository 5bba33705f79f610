import { mapLimit } from '../concurrency.js';
import type { TrustedSigner } from '../crypto/sshsig.js';
import { UserError } from '../errors.js';
import {
  FUTURE_TOLERANCE_MS,
  MAX_RECORD_BYTES,
  READ_CONCURRENCY,
  readBytes,
  signatureOf,
} from '../manifest/catalog.js';
import { backupIdTime, SIGNATURE_SUFFIX } from '../manifest/id.js';
import { formatLsn, parseLsn, segmentStart } from '../postgres/lsn.js';
import type { Destination } from '../storage/destination.js';
import {
  parseRunRecordKey,
  parseWalRunRecord,
  timelinePrefix,
  type WalObject,
  WalRunRecord,
  walPrefix,
} from './record.js';

/** A run record as read: where it is, and at which destinations. */
export interface ReadRecord {
  readonly key: string;
  readonly record: WalRunRecord;
  /** The destinations whose copy was listed (the record was read from the first that answered). */
  readonly destinations: readonly string[];
}

/** What reading the run records found: trusted records newest first, and what was ignored and why. */
export interface WalRecords {
  readonly records: readonly ReadRecord[];
  readonly ignored: readonly { readonly key: string; readonly why: string }[];
  /** Ignored records that parse (unsigned, or signed by no trusted key): read, never believed. */
  readonly untrusted: readonly WalRunRecord[];
}

interface Listed {
  readonly key: string;
  readonly runId: string;
  readonly timeline: number;
  /** Per destination that lists it: whether its `.sig` is there. */
  readonly at: Map<Destination, boolean>;
}

/** Every run record key under `prefix` (one timeline, or all), at every destination, newest first. */
async function listRecords(
  destinations: readonly Destination[],
  prefix: string,
  timeline: number | null,
): Promise<{ listed: Listed[]; unreadable: string[] }> {
  const byKey = new Map<string, Listed>();
  const unreadable: string[] = [];
  const under = timeline === null ? walPrefix(prefix) : timelinePrefix(prefix, timeline);
  await Promise.all(
    destinations.map(async (d) => {
      try {
        const sigs = new Set<string>();
        const keys: string[] = [];
        for await (const o of d.list(under)) {
          if (o.key.endsWith(`.json${SIGNATURE_SUFFIX}`))
            sigs.add(o.key.slice(0, -SIGNATURE_SUFFIX.length));
          else if (o.key.endsWith('.json')) keys.push(o.key);
        }
        for (const key of keys) {
          const parsed = parseRunRecordKey(prefix, key);
          if (!parsed) continue;
          const entry = byKey.get(key) ?? { key, ...parsed, at: new Map<Destination, boolean>() };
          entry.at.set(d, sigs.has(key));
          byKey.set(key, entry);
        }
      } catch (e) {
        unreadable.push(`${d.settings.name}: cannot list ${under}: ${d.describeError(e)}`);
      }
    }),
  );
  const listed = [...byKey.values()].sort((a, b) =>
    a.runId < b.runId ? 1 : a.runId > b.runId ? -1 : 0,
  );
  return { listed, unreadable };
}

/** Reads one record from the first destination that holds a good copy (signed, when trusted is set). */
async function readOne(
  l: Listed,
  trusted: readonly TrustedSigner[] | null,
): Promise<ReadRecord | { why: string; untrusted: WalRunRecord | null }> {
  const whys: string[] = [];
  let untrusted: WalRunRecord | null = null;
  for (const [d, signed] of l.at) {
    try {
      const body = await readBytes(await d.get(l.key), MAX_RECORD_BYTES);
      if (trusted) {
        const bad = await signatureOf(d, l.key, body, signed, trusted);
        if (bad) {
          whys.push(`${d.settings.name}: ${bad}`);
          untrusted ??= WalRunRecord.safeParse(safeJson(body)).data ?? null;
          continue;
        }
      }
      const record = parseWalRunRecord(body.toString('utf8'));
      if (record.runId !== l.runId || record.timeline !== l.timeline) {
        whys.push(`${d.settings.name}: its content names another run or timeline`);
        continue;
      }
      return { key: l.key, record, destinations: [...l.at.keys()].map((x) => x.settings.name) };
    } catch (e) {
      whys.push(
        `${d.settings.name}: ${e instanceof Error && e.name === 'ZodError' ? 'not a pg-dr WAL run record' : d.describeError(e)}`,
      );
    }
  }
  return { why: whys.join('; '), untrusted };
}

function safeJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
}

/**
 * The trusted run records under `prefix` (one timeline, or all), newest first, read in
 * batches until `enough` says the records read so far answer the question (then older ones
 * are not read). A record dated in the future, unsigned or badly signed while `trusted` is
 * set, or unreadable, is ignored and said why.
 */
export async function readWalRecords(
  destinations: readonly Destination[],
  prefix: string,
  opts: {
    readonly now: Date;
    readonly trusted: readonly TrustedSigner[] | null;
    readonly timeline?: number;
    readonly enough?: (newestFirst: readonly ReadRecord[]) => boolean;
  },
): Promise<WalRecords> {
  const { listed, unreadable } = await listRecords(destinations, prefix, opts.timeline ?? null);
  const records: ReadRecord[] = [];
  const untrusted: WalRunRecord[] = [];
  const ignored = unreadable.map((why) => ({ key: walPrefix(prefix), why }));
  const current = listed.filter((l) => {
    const future = backupIdTime(l.runId).getTime() > opts.now.getTime() + FUTURE_TOLERANCE_MS;
    if (future) ignored.push({ key: l.key, why: 'dated in the future' });
    return !future;
  });
  for (let i = 0; i < current.length; i += READ_CONCURRENCY) {
    const batch = current.slice(i, i + READ_CONCURRENCY);
    const read = await mapLimit(batch, READ_CONCURRENCY, (l) => readOne(l, opts.trusted));
    for (const [j, r] of read.entries()) {
      if ('record' in r) records.push(r);
      else {
        ignored.push({ key: (batch[j] as Listed).key, why: r.why });
        if (r.untrusted) untrusted.push(r.untrusted);
      }
    }
    if (opts.enough?.(records)) break;
  }
  return { records, ignored, untrusted };
}

/** The newest trusted record of the cluster (the last run's end), or null when there is none. */
export async function lastWalRun(
  destinations: readonly Destination[],
  prefix: string,
  opts: { readonly now: Date; readonly trusted: readonly TrustedSigner[] | null },
): Promise<{ last: ReadRecord | null; ignored: WalRecords['ignored'] }> {
  const found = await readWalRecords(destinations, prefix, {
    ...opts,
    enough: (r) => r.length > 0,
  });
  const last =
    [...found.records].sort((a, b) => {
      const d = parseLsn(b.record.endLsn) - parseLsn(a.record.endLsn);
      return d > 0n ? 1 : d < 0n ? -1 : a.record.runId < b.record.runId ? 1 : -1;
    })[0] ?? null;
  return { last, ignored: found.ignored };
}

/** Where a WAL file is stored, and every trusted record's entry for that object. */
export interface WalCandidate {
  readonly timeline: number;
  readonly object: WalObject;
  /** The entries of every trusted record listing this object (a re-shipped segment has several). */
  readonly entries: readonly WalObject[];
  readonly segmentBytes: number;
}

/**
 * Where the WAL file PostgreSQL asks for is stored: the complete segment, or, when only
 * partials of it exist, the newest run's partial (it reaches furthest). History files too.
 * Null when no trusted record lists it (a file beyond the end: PostgreSQL asks for those).
 * Records are read newest first, down to the first one that ended before the segment.
 */
export async function findWalFile(
  destinations: readonly Destination[],
  prefix: string,
  file: { readonly kind: 'segment' | 'history'; readonly name: string; readonly timeline: number },
  opts: {
    readonly now: Date;
    readonly trusted: readonly TrustedSigner[] | null;
    /** The start of the segment asked for (segment files), to stop reading older records. */
    readonly segmentStartOf?: (segmentBytes: number) => bigint;
  },
): Promise<WalCandidate | null> {
  const passed = (r: ReadRecord) =>
    file.kind === 'segment' &&
    opts.segmentStartOf !== undefined &&
    parseLsn(r.record.endLsn) <= opts.segmentStartOf(r.record.segmentBytes);
  const { records, untrusted } = await readWalRecords(destinations, prefix, {
    now: opts.now,
    trusted: opts.trusted,
    timeline: file.timeline,
    // Runs are newest first; once one ended before the segment, older ones cannot hold it.
    enough: (rs) => rs.some(passed),
  });
  const holding = records.flatMap((r) =>
    r.record.objects.filter((o) => o.walFile === file.name).map((o) => ({ r, o })),
  );
  const complete = holding.filter((h) => h.o.kind !== 'partial');
  const partials = holding
    .filter((h) => h.o.kind === 'partial')
    .sort((a, b) => (parseLsn(b.o.endLsn ?? '0/0') > parseLsn(a.o.endLsn ?? '0/0') ? 1 : -1));
  const first = complete[0] ?? partials[0];
  if (!first) {
    const planted = untrusted.filter((r) => r.objects.some((o) => o.walFile === file.name));
    // Not "missing": PostgreSQL would end recovery there. The user decides what to trust.
    if (planted.length > 0)
      throw new UserError(
        `${file.name} is listed only by run records that are not trusted (${planted.map((r) => r.runId).join(', ')}: unsigned, or signed by a key not in trusted-signers): refused. If those runs are yours, add their key to trusted-signers.`,
      );
    return null;
  }
  return {
    timeline: file.timeline,
    object: first.o,
    entries: holding.filter((h) => h.o.name === first.o.name).map((h) => h.o),
    segmentBytes: first.r.record.segmentBytes,
  };
}

/** A replication slot as pg_replication_slots shows it. */
export interface SlotInfo {
  readonly name: string;
  readonly type: string;
  /** Null for a slot that has never reserved WAL. */
  readonly restartLsn: string | null;
  /** `reserved`, `extended`, `unreserved`, `lost` (PostgreSQL 13+); null before. */
  readonly walStatus: string | null;
  readonly active: boolean;
}

/** The newest physical base backup of the cluster, as its manifest records it. */
export interface BaseBackupStart {
  readonly id: string;
  readonly startLsn: string;
}

/** Whether the WAL since the last run can still be shipped, and what to do when not. */
export type SlotVerdict =
  | { readonly state: 'ok'; readonly from: bigint; readonly note: string | null }
  | { readonly state: 'create'; readonly note: string }
  | {
      readonly state: 'missing' | 'lost' | 'gap' | 'not-physical' | 'no-wal' | 'absent';
      readonly message: string;
    };

/**
 * The slot's state against the last run's record: the condition the `wal` run refuses on,
 * and the one a monitor check raises an alert for (`wal-stale` and a lost chain). A pure
 * function of what was read.
 *
 * - `missing`: records exist but the slot is gone: the WAL since the last run is lost.
 * - `lost`: the server invalidated the slot (`max_slot_wal_keep_size`).
 * - `gap`: the slot starts after the last run's end, and no newer base backup starts after
 *   that gap (a base backup started after it is a new beginning: no gap).
 * - `absent`: no slot and no record: `create-slot: true` creates it (`create`).
 */
export function judgeSlot(o: {
  readonly slotName: string;
  readonly slot: SlotInfo | null;
  readonly last: WalRunRecord | null;
  readonly newestBase: BaseBackupStart | null;
  readonly segmentBytes: number;
  readonly createSlot: boolean;
}): SlotVerdict {
  const { slot, last, slotName } = o;
  const fresh = `a fresh physical base backup is needed: run backup with mode: physical, wal-slot: ${slotName} and create-slot: true (it creates the slot and keeps the WAL from the backup's start)`;
  if (!slot) {
    if (last)
      return {
        state: 'missing',
        message: `The replication slot "${slotName}" is gone, but earlier wal runs shipped up to ${last.endLsn} (run ${last.runId}): the WAL written since then may no longer be on the server, so point-in-time recovery past ${last.endLsn} is broken; ${fresh}.`,
      };
    if (o.createSlot)
      return { state: 'create', note: `creating the replication slot "${slotName}"` };
    return {
      state: 'absent',
      message: `The replication slot "${slotName}" does not exist. Fix: set create-slot: true (wal creates it), or take a physical base backup with wal-slot: ${slotName} and create-slot: true first (recommended: then no WAL between the backup and the first wal run can be lost).`,
    };
  }
  if (slot.type !== 'physical')
    return {
      state: 'not-physical',
      message: `The replication slot "${slotName}" is a ${slot.type} slot; wal needs a physical one. Fix: choose another wal-slot name (wal creates it with create-slot: true).`,
    };
  if (slot.walStatus === 'lost')
    return {
      state: 'lost',
      message: `The replication slot "${slotName}" was invalidated by the server (wal_status lost: it held more WAL than max_slot_wal_keep_size allows), so WAL since ${last?.endLsn ?? 'the last run'} is gone; ${fresh} after SELECT pg_drop_replication_slot('${slotName}').`,
    };
  if (slot.restartLsn === null)
    return {
      state: 'no-wal',
      message: `The replication slot "${slotName}" reserves no WAL (created without reserving it). Fix: SELECT pg_drop_replication_slot('${slotName}'), then run wal with create-slot: true, or a physical backup with wal-slot: ${slotName} and create-slot: true.`,
    };
  const from = segmentStart(parseLsn(slot.restartLsn), o.segmentBytes);
  if (last && parseLsn(last.endLsn) < from) {
    const base = o.newestBase;
    const restarted =
      base !== null &&
      parseLsn(base.startLsn) >= from &&
      parseLsn(base.startLsn) > parseLsn(last.endLsn);
    if (!restarted)
      return {
        state: 'gap',
        message: `The WAL from ${last.endLsn} (end of run ${last.runId}) to ${formatLsn(from)} was never shipped and the slot "${slotName}" no longer holds it (something else advanced the slot): point-in-time recovery across it is impossible; ${fresh}.`,
      };
    return {
      state: 'ok',
      from,
      note: `A gap after ${last.endLsn} (run ${last.runId}) is covered by base backup ${base.id}, which starts at ${base.startLsn}: the WAL chain starts again there.`,
    };
  }
  return { state: 'ok', from, note: null };
}
