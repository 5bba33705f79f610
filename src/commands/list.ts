import { formatTime } from '../alerts/index.js';
import type { ListSettings } from '../inputs/parse.js';
import {
  type BackupAtDestination,
  completeVerifications,
  databasesHeld,
  describeHeld,
  type HeldDatabase,
  ofDatabase,
  scanAll,
} from '../manifest/catalog.js';
import { backupIdTime } from '../manifest/id.js';
import { isPhysical } from '../manifest/schema.js';
import type { Verification } from '../manifest/verification.js';
import type { Host, SummaryTable } from '../report/host.js';
import { formatBytes } from '../report/progress.js';
import { lit } from '../report/status.js';
import type { Destination } from '../storage/destination.js';
import type { CommandResult, Context } from './command.js';

export interface ListDeps {
  readonly host: Host;
  readonly destinations: readonly Destination[];
}

export interface ListedBackup {
  readonly id: string;
  readonly createdAt: string;
  /** Complete at one destination at least: restorable. */
  readonly complete: boolean;
  readonly database: string | null;
  /** `logical` (pg_dump) or `physical` (pg_basebackup of the cluster); null without a manifest. */
  readonly kind: 'logical' | 'physical' | null;
  /** The cluster's system identifier, when recorded. */
  readonly cluster: string | null;
  /** The database's encoding and default collation (`icu de-DE`, `libc C.UTF-8`), when recorded. */
  readonly encoding: string | null;
  readonly locale: string | null;
  /** Bytes stored per destination (all objects, encrypted). */
  readonly sizeBytes: number | null;
  readonly commit: string | null;
  readonly destinations: readonly {
    readonly name: string;
    readonly complete: boolean;
    readonly problem: string | null;
    readonly lastVerification: {
      readonly at: string;
      readonly level: string;
      readonly ok: boolean;
    } | null;
  }[];
}

export interface ListReport {
  readonly backups: readonly ListedBackup[];
  /** The databases the prefix holds complete backups of (all of them, `source-database` or not). */
  readonly databases: readonly HeldDatabase[];
  readonly unreachable: Record<string, string>;
}

/** Every backup at every destination, newest first; incomplete ones marked. */
export async function list(
  settings: ListSettings,
  deps: ListDeps,
): Promise<{ report: ListReport; summary: SummaryTable }> {
  const { entries: all, unreachable } = await deps.host.group('List backups', () =>
    scanAll(deps.destinations, settings.prefix, new Date(), settings.trusted),
  );
  for (const [name, why] of unreachable) deps.host.warning(`${name}: cannot list backups: ${why}`);
  const databases = databasesHeld(all);
  const entries = settings.sourceDatabase === null ? all : ofDatabase(all, settings.sourceDatabase);
  // Each destination's records read together (bounded), before the table is built in order.
  const verified = new Map<BackupAtDestination, Verification | null>();
  await Promise.all(
    deps.destinations.map(async (d) => {
      const ats = entries.flatMap((e) => e.at.filter((a) => a.destination === d.settings.name));
      const found = await completeVerifications(d, ats, new Date(), settings.trusted);
      for (const [i, a] of ats.entries()) verified.set(a, found[i] ?? null);
    }),
  );
  const backups: ListedBackup[] = [];
  for (const e of entries) {
    const destinations: ListedBackup['destinations'][number][] = [];
    for (const d of deps.destinations) {
      const at = e.at.find((a) => a.destination === d.settings.name);
      if (!at) continue;
      const v = verified.get(at) ?? null;
      destinations.push({
        name: d.settings.name,
        complete: at.problem === null,
        problem: at.problem,
        lastVerification: v ? { at: v.startedAt, level: v.level, ok: v.ok } : null,
      });
    }
    const m = e.manifest;
    backups.push({
      id: e.id,
      createdAt: m?.createdAt ?? backupIdTime(e.id).toISOString(),
      complete: e.completeAt.length > 0,
      database: m?.database.name ?? null,
      kind: m ? (isPhysical(m) ? 'physical' : 'logical') : null,
      cluster: m?.database.systemIdentifier ?? null,
      encoding: m?.database.encoding ?? null,
      locale: m?.database.locale
        ? `${m.database.locale.provider} ${m.database.locale.locale ?? m.database.locale.collate}`
        : null,
      sizeBytes: m ? m.objects.reduce((s, o) => s + o.encrypted.bytes, 0) : null,
      commit: m?.source.commit ?? null,
      destinations,
    });
  }
  const report: ListReport = {
    backups,
    databases,
    unreachable: Object.fromEntries(unreachable),
  };
  return { report, summary: listTable(report) };
}

function listTable(r: ListReport): SummaryTable {
  const notes = Object.entries(r.unreachable).map(
    ([n, why]) => `⚠️ ${n} could not be listed: ${why}`,
  );
  if (r.databases.length > 1)
    notes.push(
      `⚠️ The prefix holds backups of ${r.databases.length} databases: ${describeHeld(r.databases)}. Restore and verify of latest choose by 'source-database'; giving each database its own 'prefix' keeps them apart.`,
    );
  // The cluster is shown where one database's backups come from more than one.
  const clusters = new Map<string, Set<string | null>>();
  for (const b of r.backups)
    if (b.database !== null)
      clusters.set(b.database, (clusters.get(b.database) ?? new Set()).add(b.cluster));
  const clusterOf = (b: ListedBackup) =>
    b.database !== null && (clusters.get(b.database)?.size ?? 0) > 1
      ? `, cluster ${b.cluster ?? 'unknown'}`
      : '';
  return {
    title: `pg-dr backups (${r.backups.filter((b) => b.complete).length} complete, ${r.backups.filter((b) => !b.complete).length} incomplete)`,
    header: [
      'backup',
      'made',
      'database',
      'kind',
      'size',
      'commit',
      'destinations',
      'last verification',
    ],
    rows: r.backups.map((b) => [
      b.complete ? b.id : `${b.id} (INCOMPLETE)`,
      formatTime(b.createdAt),
      b.database === null
        ? '—'
        : b.encoding && b.locale
          ? `${b.database} (${b.encoding}, ${b.locale}${clusterOf(b)})`
          : `${b.database}${clusterOf(b) ? ` (${clusterOf(b).slice(2)})` : ''}`,
      b.kind ?? '—',
      b.sizeBytes === null ? '—' : formatBytes(b.sizeBytes),
      b.commit?.slice(0, 12) ?? '—',
      b.destinations
        .map((d) => (d.complete ? lit('ok', d.name) : lit('failed', `${d.name} (${d.problem})`)))
        .join(', '),
      b.destinations
        .filter((d) => d.lastVerification)
        .map(
          (d) =>
            `${d.name}: ${d.lastVerification?.ok ? lit('ok', 'ok') : lit('failed', 'FAILED')} ${d.lastVerification?.level} ${formatTime(d.lastVerification?.at ?? '')}`,
        )
        .join(', ') || 'never',
    ]),
    notes,
  };
}

/** The list command: every backup, as a report and a table. */
export async function runList(settings: ListSettings, ctx: Context): Promise<CommandResult> {
  const r = await list(settings, { host: ctx.host, destinations: ctx.destinations });
  return { outputs: { report: r.report }, tables: [r.summary], failure: null };
}
