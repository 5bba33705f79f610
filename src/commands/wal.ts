import { walDegraded, walFailed } from '../alerts/conditions.js';
import { findZstd } from '../compression/index.js';
import { BackupFailed } from '../errors.js';
import type { WalSettings } from '../inputs/parse.js';
import { newestCompleteAt } from '../manifest/catalog.js';
import { newBackupId, SIGNATURE_SUFFIX } from '../manifest/id.js';
import { reasonOf } from '../pipeline/store.js';
import { formatServerVersion } from '../postgres/binaries.js';
import { connect } from '../postgres/clients.js';
import { formatLsn, parseLsn, segmentStart, timelineHex } from '../postgres/lsn.js';
import { openReplication, type ReplicationConnection } from '../postgres/replication.js';
import type { Session } from '../postgres/session.js';
import {
  createPhysicalSlot,
  readSlot,
  readSlotRetention,
  readWalSettings,
  serverNow,
} from '../postgres/slots.js';
import { readServerInfo } from '../postgres/snapshot.js';
import { type DatabaseTarget, describeTarget } from '../postgres/url.js';
import type { Host, SummaryTable } from '../report/host.js';
import { formatBytes, formatRate } from '../report/progress.js';
import { lit } from '../report/status.js';
import { describeSource } from '../source/index.js';
import type { Destination } from '../storage/destination.js';
import { VERSION } from '../version.js';
import { type BaseBackupStart, judgeSlot, lastWalRun, type ReadRecord } from '../wal/catalog.js';
import { runRecordKey, type WalObject, type WalRunRecord } from '../wal/record.js';
import { shipWal, storeWalFile, type WalStoreContext } from '../wal/ship.js';
import { checkDestinations } from './backup.js';
import { type CommandResult, type Context, describeError, withAlerts } from './command.js';

export type WalStatus = 'ok' | 'degraded';

export interface WalResult {
  readonly status: WalStatus;
  readonly record: WalRunRecord;
  /** Where the slot's restart_lsn stood after the run, as the server reports it. */
  readonly slotAfter: string | null;
  readonly seconds: number;
}

/** What the wal command needs from the world. */
export interface WalDeps {
  readonly host: Host;
  readonly destinations: readonly Destination[];
  readonly signal: AbortSignal;
  readonly env: NodeJS.ProcessEnv;
  readonly now: () => Date;
  /** Where PostgreSQL connections go (an SSH tunnel's local end, when set). */
  readonly target?: DatabaseTarget;
  readonly runUrl: string | null;
}

/** What the run learned before streaming: the server, the slot, the range to ship. */
interface WalPlan {
  /** `15.10`. */
  readonly serverVersion: string;
  readonly versionNum: number;
  readonly systemIdentifier: string;
  readonly timeline: number;
  readonly segmentBytes: number;
  readonly start: bigint;
  readonly end: bigint;
  readonly endServerTime: string;
  readonly restartLsn: bigint;
  readonly last: ReadRecord | null;
}

/**
 * Ships every WAL byte from the slot's position (the segment boundary holding its
 * restart_lsn) to the server's flushed position when the run started, then writes the run's
 * record, and only then advances the slot: a run that fails anywhere before leaves the slot
 * where it was, and the next run ships the same WAL again (same object names).
 */
export async function wal(settings: WalSettings, deps: WalDeps): Promise<WalResult> {
  const { host } = deps;
  const t0 = Date.now();
  const startedAt = deps.now();
  const target = deps.target ?? settings.database;
  const zstd = await findZstd(deps.env);
  if (!zstd)
    throw new BackupFailed(
      'wal compresses with zstd: no zstd binary is on PATH (apt-get install zstd).',
      null,
    );
  if (deps.destinations.length < 2)
    host.warning('No secondary destination is configured: the WAL will exist in one place only.');
  const { live } = await host.group('Check destinations', () => checkDestinations(deps));
  const session = await host.group('Connect to PostgreSQL', async () => {
    host.info(`Connecting to ${describeTarget(settings.database)} (and for replication)`);
    return connect(target).catch((e: Error) => {
      throw new BackupFailed(e.message, null);
    });
  });
  let conn: ReplicationConnection | null = null;
  try {
    conn = await openReplication(target).catch((e: Error) => {
      throw new BackupFailed(
        `Cannot open a replication connection to ${describeTarget(settings.database)}: ${e.message}. The role needs REPLICATION and pg_hba.conf a "host replication <role> <address> scram-sha-256" line.`,
        null,
      );
    });
    const plan = await host.group('Check the server and the slot', () =>
      planRun(settings, deps, session, conn as ReplicationConnection, live),
    );
    const ctx: WalStoreContext = {
      prefix: settings.prefix,
      timeline: plan.timeline,
      encryption: settings.encryption,
      zstd,
      host,
      signal: deps.signal,
      live: [...live],
      failures: new Map(),
    };
    const objects: WalObject[] = [];
    if (plan.timeline > 1) objects.push(await storeHistory(ctx, conn, plan.timeline));
    host.info(
      `Shipping WAL ${formatLsn(plan.start)} → ${formatLsn(plan.end)} (${formatBytes(Number(plan.end - plan.start))}) on timeline ${plan.timeline} from slot "${settings.slot}"`,
    );
    const shipped = await host.group('Stream, compress, encrypt, upload', () =>
      shipWal(ctx, conn as ReplicationConnection, {
        slot: settings.slot,
        start: plan.start,
        end: plan.end,
        segmentBytes: plan.segmentBytes,
      }),
    );
    objects.push(...shipped.objects);
    const confirm = maxLsn(segmentStart(plan.end, plan.segmentBytes), plan.restartLsn);
    const record = buildRecord(settings, deps, plan, { objects, ctx, startedAt, confirm });
    try {
      await host.group('Record the run', () => writeRecord(settings, deps, record, ctx));
    } catch (e) {
      shipped.abandon();
      throw e;
    }
    await shipped.confirm(confirm);
    const slotAfter =
      (await readSlot(session, settings.slot, plan.versionNum).catch(() => null))?.restartLsn ??
      null;
    host.info(
      `Slot "${settings.slot}" advanced to ${slotAfter ?? '?'} (asked: ${formatLsn(confirm)})`,
    );
    return {
      status: record.destinations.every((d) => d.ok) ? 'ok' : 'degraded',
      record,
      slotAfter,
      seconds: (Date.now() - t0) / 1000,
    };
  } finally {
    await conn?.close();
    await session.close();
  }
}

/**
 * Where the last run's record says the WAL is stored up to on this timeline: a run whose
 * slot confirmation never reached the server does not make the next one ship (and replace)
 * segments a record already vouches for.
 */
function recordedUpTo(
  last: ReadRecord | null,
  identity: { systemIdentifier: string; timeline: number },
): bigint {
  if (!last || last.record.timeline !== identity.timeline) return 0n;
  return parseLsn(last.record.confirmLsn);
}

function maxLsn(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

/** The server's checks (wal_level, role, cluster, timeline), the slot's verdict, the range. */
async function planRun(
  settings: WalSettings,
  deps: WalDeps,
  session: Session,
  conn: ReplicationConnection,
  live: readonly Destination[],
): Promise<WalPlan> {
  const { host } = deps;
  const server = await readServerInfo(session);
  const ws = await readWalSettings(session);
  if (ws.walLevel !== 'replica' && ws.walLevel !== 'logical')
    throw new BackupFailed(
      `wal_level is "${ws.walLevel}": the server writes too little WAL to recover from. Fix: wal_level = replica in postgresql.conf, then restart the server.`,
      null,
    );
  if (!ws.canReplicate)
    throw new BackupFailed(
      `Role "${ws.role}" has neither REPLICATION nor SUPERUSER: wal streams over a replication connection. Fix: ALTER ROLE "${ws.role}" REPLICATION.`,
      null,
    );
  const identity = await conn.identify();
  const endServerTime = new Date(await serverNow(session)).toISOString();
  const segmentBytes = await conn.segmentSize();
  const now = deps.now();
  const [{ last, ignored }, newest] = await Promise.all([
    lastWalRun(live, settings.prefix, { now, trusted: settings.trusted }),
    newestBase(live, settings.prefix, now, settings),
  ]);
  for (const i of ignored) host.warning(`Ignored ${i.key}: ${i.why}`);
  checkCluster(identity.systemIdentifier, last, newest);
  if (last && last.record.timeline !== identity.timeline)
    host.warning(
      `The server is on timeline ${identity.timeline}; the last run shipped timeline ${last.record.timeline} (a promotion or a point-in-time recovery happened): this run ships under ${settings.prefix}wal/${timelineHex(identity.timeline)}/, with the timeline's history file.`,
    );
  let slot = await readSlot(session, settings.slot, server.versionNum);
  const verdict = judgeSlot({
    slotName: settings.slot,
    slot,
    last: last?.record ?? null,
    newestBase: newest?.base ?? null,
    segmentBytes,
    createSlot: settings.createSlot,
  });
  if (verdict.state === 'create') {
    host.info(`The slot "${settings.slot}" does not exist: creating it (create-slot: true)`);
    await createPhysicalSlot(session, settings.slot);
    slot = await readSlot(session, settings.slot, server.versionNum);
  } else if (verdict.state !== 'ok') throw new BackupFailed(verdict.message, null);
  else if (verdict.note) host.info(verdict.note);
  if (!slot?.restartLsn)
    throw new BackupFailed(`The slot "${settings.slot}" holds no WAL position.`, null);
  if (slot.active)
    throw new BackupFailed(
      `The slot "${settings.slot}" is in use by another connection (another wal run, or a standby using the same slot name). Fix: give each its own wal-slot.`,
      null,
    );
  const restartLsn = parseLsn(slot.restartLsn);
  await warnRetention(session, settings.slot, server.versionNum, host);
  host.info(
    `Server ${formatServerVersion(server.versionNum).version}, system ${identity.systemIdentifier}, timeline ${identity.timeline}, wal_level ${ws.walLevel}, segments of ${formatBytes(segmentBytes)}; slot "${settings.slot}" at ${slot.restartLsn}${slot.walStatus ? ` (${slot.walStatus})` : ''}; last run ${last ? `${last.record.runId} ended at ${last.record.endLsn}` : 'none'}`,
  );
  return {
    serverVersion: formatServerVersion(server.versionNum).version,
    versionNum: server.versionNum,
    systemIdentifier: identity.systemIdentifier,
    timeline: identity.timeline,
    segmentBytes,
    start: segmentStart(maxLsn(restartLsn, recordedUpTo(last, identity)), segmentBytes),
    end: identity.flushed,
    endServerTime,
    restartLsn,
    last,
  };
}

/** The newest complete backup's cluster and, when it is physical, where its WAL starts. */
async function newestBase(
  live: readonly Destination[],
  prefix: string,
  now: Date,
  settings: WalSettings,
): Promise<{ systemIdentifier: string | null; id: string; base: BaseBackupStart | null } | null> {
  for (const d of live) {
    const b = await newestCompleteAt(d, prefix, now, settings.trusted).catch(() => undefined);
    if (b === undefined) continue;
    const m = b?.manifest;
    if (!m) return null;
    return {
      id: m.id,
      systemIdentifier: m.database.systemIdentifier ?? null,
      base: m.physical ? { id: m.id, startLsn: m.physical.startLsn } : null,
    };
  }
  return null;
}

/** A different cluster behind the same URL (or the same prefix) is refused. */
function checkCluster(
  systemIdentifier: string,
  last: ReadRecord | null,
  newest: { systemIdentifier: string | null; id: string } | null,
): void {
  if (last && last.record.systemIdentifier !== systemIdentifier)
    throw new BackupFailed(
      `The server is another cluster (system identifier ${systemIdentifier}) than the one whose WAL is under this prefix (${last.record.systemIdentifier}, run ${last.record.runId}): a re-created or replaced server behind the same URL. Its WAL cannot continue that archive. Fix: use another prefix for the new cluster, and take a physical base backup of it.`,
      null,
    );
  if (newest?.systemIdentifier && newest.systemIdentifier !== systemIdentifier)
    throw new BackupFailed(
      `The server is another cluster (system identifier ${systemIdentifier}) than the newest backup under this prefix (${newest.id}, cluster ${newest.systemIdentifier}): its WAL would not apply to that backup. Fix: use another prefix for this cluster, or take a physical base backup of it first.`,
      null,
    );
}

/** A timeline's history file (timeline > 1), which recovery asks for before its segments. */
async function storeHistory(
  ctx: WalStoreContext,
  conn: ReplicationConnection,
  timeline: number,
): Promise<WalObject> {
  const h = await conn.timelineHistory(timeline);
  const { Readable } = await import('node:stream');
  return storeWalFile(
    ctx,
    {
      walFile: h.name,
      kind: 'history',
      startLsn: null,
      endLsn: null,
      expectedBytes: h.content.length,
    },
    Readable.from([h.content]),
  );
}

function buildRecord(
  settings: WalSettings,
  deps: WalDeps,
  plan: WalPlan,
  o: { objects: WalObject[]; ctx: WalStoreContext; startedAt: Date; confirm: bigint },
): WalRunRecord {
  return {
    format: 'pg-dr-wal/1',
    runId: newBackupId(o.startedAt),
    startedAt: o.startedAt.toISOString(),
    finishedAt: deps.now().toISOString(),
    tool: { name: 'pg-dr', version: VERSION },
    runUrl: deps.runUrl,
    systemIdentifier: plan.systemIdentifier,
    serverVersion: plan.serverVersion,
    timeline: plan.timeline,
    segmentBytes: plan.segmentBytes,
    slot: settings.slot,
    startLsn: formatLsn(plan.start),
    endLsn: formatLsn(plan.end),
    endServerTime: plan.endServerTime,
    confirmLsn: formatLsn(o.confirm),
    compression: 'zstd',
    encryption:
      settings.encryption.mode === 'passphrase'
        ? { scheme: 'age', mode: 'passphrase' }
        : { scheme: 'age', mode: 'recipients', recipients: [...settings.encryption.recipients] },
    objects: o.objects,
    destinations: deps.destinations.map((d) => {
      const why = o.ctx.failures.get(d.settings.name);
      const holds = o.objects.every((x) => x.destinations.includes(d.settings.name));
      return {
        name: d.settings.name,
        ok: why === undefined && holds && o.ctx.live.includes(d),
        error: why ?? (holds ? null : 'not reachable'),
      };
    }),
    ...(settings.signer ? { signedBy: settings.signer.publicKey } : {}),
  };
}

/**
 * The record (and its signature, first) at each destination that holds every object of
 * the run. Throws when no destination took it: then nothing is confirmed.
 */
async function writeRecord(
  settings: WalSettings,
  deps: WalDeps,
  record: WalRunRecord,
  ctx: WalStoreContext,
): Promise<void> {
  if (deps.signal.aborted)
    throw new BackupFailed(
      `${reasonOf(deps.signal)} before the record: the slot was not advanced.`,
      null,
    );
  const body = `${JSON.stringify(record, null, 2)}\n`;
  const signature = settings.signer ? settings.signer.sign(Buffer.from(body)) : null;
  const key = runRecordKey(settings.prefix, record.timeline, record.runId);
  const writing = deps.destinations.filter(
    (d) => record.destinations.find((x) => x.name === d.settings.name)?.ok,
  );
  const written = await Promise.allSettled(
    writing.map(async (d) => {
      if (signature) await d.put(`${key}${SIGNATURE_SUFFIX}`, signature, 'text/plain');
      await d.put(key, body, 'application/json');
    }),
  );
  const ok: string[] = [];
  for (const [i, d] of writing.entries()) {
    const w = written[i] as PromiseSettledResult<void>;
    if (w.status === 'fulfilled') ok.push(d.settings.name);
    else {
      const why = d.describeError(w.reason);
      ctx.failures.set(d.settings.name, `record not written: ${why}`);
      deps.host.warning(`${d.settings.name}: the run's record could not be written (${why})`);
    }
  }
  if (ok.length === 0)
    throw new BackupFailed(
      `The WAL could not be recorded at any destination (${[...ctx.failures].map(([n, w]) => `${n}: ${w}`).join('; ') || 'none holds every object'}): the slot was not advanced; the next run ships the same WAL again.`,
      null,
    );
  for (const d of record.destinations) if (!ok.includes(d.name)) (d as { ok: boolean }).ok = false;
  deps.host.info(`Run ${record.runId} recorded at ${ok.join(', ')}: ${key}`);
}

function walSummary(r: WalResult, settings: WalSettings): SummaryTable {
  const rec = r.record;
  const shippedBytes = rec.objects.reduce((s, o) => s + o.wal.bytes, 0);
  const stored = rec.objects.reduce((s, o) => s + o.encrypted.bytes, 0);
  const rows: string[][] = [
    ['Status', lit(r.status, r.status)],
    ['Range', `${rec.startLsn} → ${rec.endLsn} (timeline ${rec.timeline})`],
    [
      'Objects',
      `${rec.objects.filter((o) => o.kind === 'segment').length} segments, ${rec.objects.filter((o) => o.kind === 'partial').length} partial, ${rec.objects.filter((o) => o.kind === 'history').length} history`,
    ],
    [
      'WAL → stored',
      `${formatBytes(shippedBytes)} → ${formatBytes(stored)} in ${r.seconds.toFixed(1)} s (${formatRate(shippedBytes, r.seconds)})`,
    ],
    ['Slot', `"${settings.slot}" now at ${r.slotAfter ?? '?'} (asked ${rec.confirmLsn})`],
    ['End position time (server)', rec.endServerTime ?? '—'],
  ];
  for (const d of rec.destinations)
    rows.push([`Destination ${d.name}`, d.ok ? '✅ stored' : `❌ ${d.error ?? 'not stored'}`]);
  return { title: `pg-dr wal: ${lit(r.status, r.status)}`, header: ['Run', rec.runId], rows };
}

/** The wal command: ships, records, advances the slot; degraded fails the step unless allowed. */
export async function runWal(settings: WalSettings, ctx: Context): Promise<CommandResult> {
  const source = await describeSource(ctx.env, settings.workspace);
  const r = await wal(settings, {
    host: ctx.host,
    destinations: ctx.destinations,
    signal: ctx.signal,
    env: ctx.env,
    now: () => new Date(),
    runUrl: source.runUrl,
    ...(ctx.target ? { target: ctx.target } : {}),
  }).catch(async (e: unknown) => {
    await ctx.feed.raise(walFailed(describeError(e)));
    throw e;
  });
  const failed = r.record.destinations.filter((d) => !d.ok);
  const alerts = [
    await ctx.feed.clear(
      'wal-failed',
      `WAL run ${r.record.runId} stored the WAL up to ${r.record.endLsn}.`,
    ),
    r.status === 'degraded'
      ? await ctx.feed.raise(walDegraded(r.record.runId, failed))
      : await ctx.feed.clear(
          'wal-degraded',
          `WAL run ${r.record.runId} is stored at every destination.`,
        ),
  ];
  return {
    outputs: { status: r.status, report: { wal: r.record } },
    tables: withAlerts([walSummary(r, settings)], alerts),
    failure:
      r.status === 'degraded' && settings.failOnDegraded
        ? `WAL run ${r.record.runId} is degraded: ${failed.map((d) => `${d.name}: ${d.error}`).join('; ')} (set fail-on-degraded: false to accept one destination).`
        : null,
  };
}

/** Past this share of max_slot_wal_keep_size held (or left), a run warns that the slot nears invalidation. */
const SLOT_SAFE_WARNING = 0.5;

/**
 * The slot's hold on the server's disk: unlimited (`max_slot_wal_keep_size = -1`), a slot
 * that stops being advanced keeps WAL until the disk fills; limited, it is invalidated once
 * it holds that much, and the WAL since the last run is lost. Either is said before it bites.
 */
async function warnRetention(
  session: Session,
  slot: string,
  versionNum: number,
  host: Host,
): Promise<void> {
  const r = await readSlotRetention(session, slot, versionNum).catch(() => null);
  if (!r) return;
  if (r.keepBytes === null)
    host.warning(
      `max_slot_wal_keep_size is unlimited: if wal runs stop, the slot "${slot}" keeps WAL until the server's disk fills (it holds ${formatBytes(r.retainedBytes)} now). Set it (docs/pitr.md, "max_slot_wal_keep_size").`,
    );
  else if (
    r.retainedBytes > r.keepBytes * SLOT_SAFE_WARNING ||
    (r.safeBytes !== null && r.safeBytes < r.keepBytes * SLOT_SAFE_WARNING)
  )
    host.warning(
      `The slot "${slot}" holds ${formatBytes(r.retainedBytes)} of WAL, ${Math.round((100 * r.retainedBytes) / r.keepBytes)}% of max_slot_wal_keep_size (${formatBytes(r.keepBytes)}): past it the server invalidates the slot at a checkpoint, losing the WAL not yet shipped. This run catches up; if runs keep failing, fix them first.`,
    );
}
