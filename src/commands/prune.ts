import { untrustedObjects } from '../alerts/conditions.js';
import type { AlertCondition, AlertFeed, AlertOutcome } from '../alerts/index.js';
import type { PruneSettings } from '../inputs/parse.js';
import {
  type BackupAtDestination,
  completeVerifications,
  scanDestination,
  UNAUTHENTICATED,
} from '../manifest/catalog.js';
import { deleteBackup } from '../manifest/delete.js';
import { backupIdTime, backupPrefix, MANIFEST_NAME } from '../manifest/id.js';
import type { Host, SummaryTable } from '../report/host.js';
import { lit } from '../report/status.js';
import { type PruneCandidate, planPruneByDatabase } from '../retention/plan.js';
import { describeLock } from '../storage/delete.js';
import type { Destination } from '../storage/destination.js';
import { type CommandResult, type Context, withAlerts } from './command.js';
import { pruneWalAt, type WalPruned } from './prune-wal.js';

export interface PruneDeps {
  readonly host: Host;
  readonly destinations: readonly Destination[];
  readonly now: () => Date;
}

export interface PrunedBackup {
  readonly id: string;
  readonly complete: boolean;
  /** Why it is not complete here, when it is not. */
  readonly problem: string | null;
  /** What the plan decided, and what happened: `deleted`, `would delete` (dry run), `kept`, `kept: locked until …`, `delete failed: …`. */
  readonly action: 'keep' | 'delete';
  readonly result: string;
  readonly reasons: readonly string[];
}

export interface PruneAtDestination {
  readonly destination: string;
  /** Why nothing was pruned at this destination (stale newest backup, listing failed). */
  readonly refused: string | null;
  readonly backups: readonly PrunedBackup[];
  /** The shipped WAL no kept base backup needs (null: the prefix holds none, or refused). */
  readonly wal?: WalPruned | null;
}

export interface PruneReport {
  readonly ok: boolean;
  readonly dryRun: boolean;
  readonly destinations: readonly PruneAtDestination[];
  /** Folders kept because they are not backups as pg-dr wrote them (`<destination>: <id>: why`). */
  readonly untrusted: readonly string[];
}

/** Applies the retention policy to each destination on its own. */
export async function prune(
  settings: PruneSettings,
  deps: PruneDeps,
): Promise<{ report: PruneReport; summary: SummaryTable }> {
  if (!settings.trusted) deps.host.warning(UNAUTHENTICATED);
  // Every destination is read at once (the reads are most of the time); each is then
  // planned and pruned on its own, one after another, in its own log group.
  const reads = deps.destinations.map((dest) => readForPrune(settings, deps, dest));
  // A read that fails is reported when its turn comes, not as an unhandled rejection before.
  for (const r of reads) r.catch(() => undefined);
  const out: PruneAtDestination[] = [];
  for (const [i, dest] of deps.destinations.entries()) {
    const read = reads[i] as Promise<PruneRead>;
    out.push(
      await deps.host.group(
        `Prune ${dest.settings.name}${settings.dryRun ? ' (dry run)' : ''}`,
        () => pruneAt(settings, deps, dest, read),
      ),
    );
  }
  const ok = out.every(
    (d) =>
      d.refused === null &&
      d.backups.every((b) => !b.result.startsWith('delete failed')) &&
      !d.wal?.result.startsWith('delete failed'),
  );
  const untrusted = out.flatMap((d) =>
    d.backups
      .filter((b) =>
        b.reasons.some((r) => /^(dated in the future|committed, then damaged)/.test(r)),
      )
      .map((b) => `${d.destination}: ${b.id}: ${b.problem ?? b.reasons.join(', ')}`),
  );
  const report: PruneReport = { ok, dryRun: settings.dryRun, destinations: out, untrusted };
  return { report, summary: pruneSummary(report) };
}

/** What prune reads of one destination: its backups and their latest verifications. */
type PruneRead =
  | {
      readonly found: BackupAtDestination[];
      readonly verified: Awaited<ReturnType<typeof completeVerifications>>;
    }
  | { readonly error: string };

async function readForPrune(
  settings: PruneSettings,
  deps: PruneDeps,
  dest: Destination,
): Promise<PruneRead> {
  let found: BackupAtDestination[];
  try {
    found = await scanDestination(dest, settings.prefix, deps.now(), settings.trusted);
  } catch (e) {
    return { error: `cannot list the bucket: ${dest.describeError(e)}` };
  }
  return {
    found,
    verified: await completeVerifications(dest, found, deps.now(), settings.trusted),
  };
}

async function pruneAt(
  settings: PruneSettings,
  deps: PruneDeps,
  dest: Destination,
  reading: Promise<PruneRead>,
): Promise<PruneAtDestination> {
  const name = dest.settings.name;
  const read = await reading;
  if ('error' in read) {
    deps.host.warning(`${name}: ${read.error}`);
    return { destination: name, refused: read.error, backups: [] };
  }
  const { found, verified } = read;
  const candidates: PruneCandidate[] = [];
  for (const [i, b] of found.entries()) {
    const v = verified[i] ?? null;
    candidates.push({
      id: b.id,
      time: backupIdTime(b.id),
      complete: b.problem === null,
      latestVerification: v ? { ok: v.ok, at: new Date(v.startedAt) } : null,
      hasManifest: b.hasManifest,
      future: b.future,
      database: b.manifest?.database.name ?? null,
    });
  }
  if (candidates.length === 0) return { destination: name, refused: null, backups: [] };
  const plan = planPruneByDatabase({
    entries: candidates,
    rules: settings.rules,
    now: deps.now(),
    maxBackupAgeHours: settings.maxBackupAgeHours,
    verifyWindowDays: settings.maxVerifyAgeDays,
    maxDeletions: settings.maxDeletions,
  });
  if (plan.refused) deps.host.error(`${name}: pruning refused: ${plan.refused}`);
  const backups: PrunedBackup[] = [];
  for (const d of plan.decisions) {
    const b = found.find((x) => x.id === d.id) as BackupAtDestination;
    const base = {
      id: d.id,
      complete: b.problem === null,
      problem: b.problem,
      action: d.action,
      reasons: d.reasons,
    };
    if (d.action === 'keep') {
      backups.push({ ...base, result: 'kept' });
      continue;
    }
    if (settings.dryRun) {
      backups.push({ ...base, result: 'would delete' });
      continue;
    }
    const folder = backupPrefix(settings.prefix, d.id);
    const keys = [...[...b.objects.keys()].map((k) => `${folder}${k}`), ...b.verificationKeys];
    const r = await deleteBackup(dest, `${folder}${MANIFEST_NAME}`, keys);
    for (const n of r.notes) deps.host.info(`${name}: ${n}`);
    let result: string;
    if (r.failed.length > 0)
      result = `delete failed: ${r.failed.map((f) => `${f.key}: ${f.error}`).join('; ')}`;
    else if (r.locked.length > 0) result = r.locked.map((l) => describeLock(l)).join('; ');
    else if (r.skipped.length > 0) result = `kept: ${r.skipped.length} objects not attempted`;
    else result = 'deleted';
    deps.host.info(`${name}: ${d.id} ${result} (${d.reasons.join(', ')})`);
    backups.push({ ...base, result });
  }
  const kept = found.filter((b) => backups.some((x) => x.id === b.id && x.action === 'keep'));
  const wal = plan.refused ? null : await pruneWal(settings, deps, dest, kept);
  return { destination: name, refused: plan.refused, backups, wal };
}

/** The WAL step of one destination; a failure is its result, not the prune's end. */
async function pruneWal(
  settings: PruneSettings,
  deps: PruneDeps,
  dest: Destination,
  kept: readonly BackupAtDestination[],
): Promise<WalPruned | null> {
  try {
    return await pruneWalAt(settings, deps, dest, kept);
  } catch (e) {
    const error = dest.describeError(e);
    deps.host.warning(`${dest.settings.name}: the WAL was not pruned: ${error}`);
    return { anchor: '—', objects: 0, records: 0, kept: 0, result: `delete failed: ${error}` };
  }
}

function pruneSummary(r: PruneReport): SummaryTable {
  const rows: string[][] = [];
  for (const d of r.destinations) {
    if (d.refused) rows.push([d.destination, '—', '⛔ refused', d.refused]);
    for (const b of d.backups)
      rows.push([
        d.destination,
        b.complete ? b.id : `${b.id} (incomplete)`,
        b.result === 'deleted' || b.result === 'would delete'
          ? `🗑 ${b.result}`
          : b.result.startsWith('delete failed')
            ? lit('failed', b.result)
            : lit('ok', b.result),
        b.reasons.join(', '),
      ]);
    if (d.wal)
      rows.push([
        d.destination,
        'WAL',
        d.wal.result.startsWith('delete failed')
          ? lit('failed', d.wal.result)
          : d.wal.result === 'deleted' || d.wal.result === 'would delete'
            ? `🗑 ${d.wal.result}`
            : lit('ok', d.wal.result),
        `${d.wal.objects} objects and ${d.wal.records} run records older than the oldest kept physical backup, ${d.wal.anchor}; ${d.wal.kept} objects kept`,
      ]);
  }
  return {
    title: `pg-dr prune${r.dryRun ? ' (dry run)' : ''}: ${r.ok ? lit('ok', 'ok') : lit('failed', 'NOT OK')}`,
    header: ['destination', 'backup', 'result', 'rule'],
    rows,
  };
}

// The command's handler.

/** The prune command: prunes, and raises the alert for objects it cannot trust. */
export async function runPrune(settings: PruneSettings, ctx: Context): Promise<CommandResult> {
  const { host, destinations, feed } = ctx;
  const r = await prune(settings, { host, destinations, now: () => new Date() });
  const refused = r.report.destinations.filter((d) => d.refused);
  return {
    outputs: { status: r.report.ok ? 'ok' : 'failed', report: r.report },
    tables: withAlerts([r.summary], await raiseUntrusted(feed, r.report)),
    failure: r.report.ok
      ? null
      : refused.length > 0
        ? `Pruning refused: ${refused.map((d) => `${d.destination}: ${d.refused}`).join('; ')}`
        : 'Some deletes failed (see the report).',
  };
}

/**
 * Raises the alert for folders prune kept because it cannot trust them; never clears it:
 * monitor sees what prune cannot (destinations that disagree).
 */
export async function raiseUntrusted(
  feed: AlertFeed,
  report: PruneReport,
): Promise<AlertOutcome[]> {
  if (report.untrusted.length === 0) return [];
  const lastGood = lastKept(report);
  return [
    await feed.raise({
      ...untrustedObjects(report.untrusted),
      ...(lastGood !== undefined ? { lastGood } : {}),
    }),
  ];
}

/** The newest complete backup prune left in place, and where: the last good one. */
function lastKept(report: PruneReport): AlertCondition['lastGood'] {
  const kept = (b: PrunedBackup) => b.complete && !/^(deleted|would delete)$/.test(b.result);
  const id = report.destinations
    .flatMap((d) => d.backups.filter(kept).map((b) => b.id))
    .sort()
    .at(-1);
  // A destination that could not be read may hold one: then it is not known.
  if (id === undefined)
    return report.destinations.some((d) => d.refused !== null && d.backups.length === 0)
      ? undefined
      : null;
  const where = report.destinations
    .filter((d) => d.backups.some((b) => b.id === id && kept(b)))
    .map((d) => d.destination);
  return { id, time: backupIdTime(id).toISOString(), where };
}
