import type { PruneSettings } from '../inputs/parse.js';
import type { BackupAtDestination } from '../manifest/catalog.js';
import { SIGNATURE_SUFFIX } from '../manifest/id.js';
import { isPhysical } from '../manifest/schema.js';
import { formatLsn, parseLsn, parseSegmentName } from '../postgres/lsn.js';
import { planWalPrune, type WalRunRef, walAnchor } from '../retention/wal-plan.js';
import type { Destination } from '../storage/destination.js';
import { readWalRecords } from '../wal/catalog.js';
import { timelinePrefix, type WalObject, walObjectKey, walObjectName } from '../wal/record.js';
import type { PruneDeps } from './prune.js';

/** What prune did with the shipped WAL at one destination. */
export interface WalPruned {
  /** The oldest kept physical backup the WAL is kept from, or why nothing was pruned. */
  readonly anchor: string;
  readonly objects: number;
  readonly records: number;
  readonly kept: number;
  /** `deleted`, `would delete`, `nothing to delete`, `kept: …`, or `delete failed: …`. */
  readonly result: string;
}

/** PostgreSQL's largest WAL segment (1 GB). */
const MAX_SEGMENT = 1024 ** 3;

/**
 * Where an object's WAL ends, read from its own name (the key prune would delete), never from
 * what its record claims: a segment ends where its file name's segment does, a partial where
 * its name says. Null (kept) for a history file, or a name that is not what pg-dr writes for
 * that WAL file on that timeline.
 */
export function endByName(
  o: Pick<WalObject, 'walFile' | 'name' | 'kind'>,
  timeline: number,
  segmentBytes: number,
): bigint | null {
  const seg = o.kind === 'history' ? null : parseSegmentName(o.walFile, segmentBytes);
  if (!seg || seg.timeline !== timeline) return null;
  if (o.kind === 'segment')
    return o.name === walObjectName(o.walFile, null) ? seg.start + BigInt(segmentBytes) : null;
  const end = new RegExp(`^${o.walFile}\\.([0-9A-F]{16})\\.partial\\.zst\\.age$`).exec(o.name)?.[1];
  if (end === undefined) return null;
  const lsn = BigInt(`0x${end}`);
  return lsn > seg.start && lsn <= seg.start + BigInt(segmentBytes) ? lsn : null;
}

/**
 * Deletes the shipped WAL that no kept base backup needs (retention/wal-plan.ts), at one
 * destination: each run record's objects first, then the record and its signature, oldest
 * run first, so an interruption leaves records whose WAL is gone (older than every kept
 * backup) rather than WAL no record lists. Only trusted records and the objects they say this
 * destination holds are touched. Null when the prefix holds no WAL.
 */
export async function pruneWalAt(
  settings: PruneSettings,
  deps: PruneDeps,
  dest: Destination,
  kept: readonly BackupAtDestination[],
): Promise<WalPruned | null> {
  const name = dest.settings.name;
  const { records } = await readWalRecords([dest], settings.prefix, {
    now: deps.now(),
    trusted: settings.trusted,
  });
  if (records.length === 0) return null;
  const bases = kept.flatMap((b) =>
    b.problem === null && b.manifest && isPhysical(b.manifest) && b.manifest.physical
      ? [{ id: b.id, ...b.manifest.physical }]
      : [],
  );
  // The largest segment size any record claims: an object's end read from its name with it
  // is never earlier than its real end (a record planted with small segments deletes nothing more).
  const segmentBytes = Math.min(
    MAX_SEGMENT,
    Math.max(...records.map((r) => r.record.segmentBytes)),
  );
  const runs: WalRunRef[] = records.map((r) => ({
    key: r.key,
    timeline: r.record.timeline,
    endLsn: parseLsn(r.record.endLsn),
    objects: r.record.objects
      .filter((o) => o.destinations.includes(name))
      .map((o) => ({
        key: walObjectKey(settings.prefix, r.record.timeline, o.name),
        kind: o.kind,
        timeline: r.record.timeline,
        endLsn: endByName(o, r.record.timeline, segmentBytes),
      })),
  }));
  const plan = planWalPrune(runs, walAnchor(bases));
  const anchor = plan.anchor
    ? `${plan.anchor.backupId} (timeline ${plan.anchor.timeline}, from ${formatLsn(plan.anchor.startLsn)})`
    : 'none: no physical backup is kept here, so all WAL is kept';
  const base = {
    anchor,
    objects: plan.objects.length,
    records: plan.records.length,
    kept: plan.kept,
  };
  if (plan.objects.length === 0 && plan.records.length === 0)
    return { ...base, result: 'nothing to delete' };
  if (settings.dryRun) return { ...base, result: 'would delete' };
  const failures: string[] = [];
  const gone = new Set<string>();
  const sorted = [...runs].sort((a, b) => (a.endLsn < b.endLsn ? -1 : 1));
  const doomed = new Set(plan.objects);
  for (const run of sorted) {
    const folder = timelinePrefix(settings.prefix, run.timeline);
    const objects = run.objects.map((o) => o.key).filter((k) => doomed.has(k) && !gone.has(k));
    if (objects.length > 0) {
      const r = await dest.purge({ folder, first: objects[0] as string, keys: objects });
      for (const k of r.deleted) gone.add(k);
      failures.push(...r.failed.map((f) => `${f.key}: ${f.error}`));
      failures.push(...r.locked.map((l) => `${l.key}: locked`));
    }
    if (!plan.records.includes(run.key)) continue;
    if (run.objects.some((o) => doomed.has(o.key) && !gone.has(o.key))) continue;
    const r = await dest.purge({ folder, first: run.key, keys: [`${run.key}${SIGNATURE_SUFFIX}`] });
    failures.push(...r.failed.map((f) => `${f.key}: ${f.error}`));
  }
  deps.host.info(
    `${name}: WAL before ${anchor}: ${gone.size} objects and ${plan.records.length} run records ${failures.length ? `partly deleted (${failures.length} failed)` : 'deleted'}; ${plan.kept} objects kept`,
  );
  return {
    ...base,
    result: failures.length ? `delete failed: ${failures.slice(0, 5).join('; ')}` : 'deleted',
  };
}
