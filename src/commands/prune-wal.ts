import type { PruneSettings } from '../inputs/parse.js';
import type { BackupAtDestination } from '../manifest/catalog.js';
import { SIGNATURE_SUFFIX } from '../manifest/id.js';
import { isPhysical } from '../manifest/schema.js';
import { formatLsn, parseLsn } from '../postgres/lsn.js';
import { planWalPrune, type WalRunRef, walAnchor } from '../retention/wal-plan.js';
import type { Destination } from '../storage/destination.js';
import { readWalRecords } from '../wal/catalog.js';
import { timelinePrefix, walObjectKey } from '../wal/record.js';
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
        endLsn: o.endLsn ? parseLsn(o.endLsn) : null,
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
