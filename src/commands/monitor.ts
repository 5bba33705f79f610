import type { AlertFeed, AlertKey, AlertOutcome } from '../alerts/index.js';
import {
  apiUrlFromEnv,
  createGitHubClient,
  formatDuration,
  formatTime,
  GitHubUnavailableError,
  parseRepository,
} from '../alerts/index.js';
import type { MonitorSettings } from '../inputs/parse.js';
import { type BackupAtDestination, scanDestination } from '../manifest/catalog.js';
import type { Manifest } from '../manifest/schema.js';
import { computeTrends, type TrendFigure, type Trends } from '../manifest/trends.js';
import { CHECKS, type CheckState, type Finding } from '../monitor/checks.js';
import { HISTORY_NIGHTS, historyChart, type Night, nightlyHistory } from '../monitor/history.js';
import {
  lastGoodOf,
  latestVerifications,
  type MonitorView,
  type RunsRead,
  type WalRead,
} from '../monitor/view.js';
import { RPO_DAYS, type RpoSummary, rpoChart, rpoSummary } from '../monitor/wal.js';
import type { Host, SummaryTable } from '../report/host.js';
import { formatBytes } from '../report/progress.js';
import { lit } from '../report/status.js';
import type { Destination } from '../storage/destination.js';
import { readWalRecords } from '../wal/catalog.js';
import { type CommandResult, type Context, withAlerts } from './command.js';

export type { CheckState } from '../monitor/checks.js';

/** Conclusions of the last completed runs of a workflow, newest first. */
export type RunHistory = (
  file: string,
) => Promise<readonly { conclusion: string | null; url: string }[]>;

export interface MonitorDeps {
  readonly host: Host;
  readonly destinations: readonly Destination[];
  readonly now: () => Date;
  readonly feed: AlertFeed;
  /** null when there is no token to ask GitHub with. */
  readonly runs: RunHistory | null;
}

export interface CheckResult {
  readonly check: string;
  readonly key: AlertKey;
  readonly state: CheckState;
  readonly detail: string;
  /**
   * For an alert, when its condition began (ISO time): as the check tells it, else as its
   * open issue remembers it, else now. Null otherwise.
   */
  readonly since: string | null;
}

export interface MonitorReport {
  readonly ok: boolean;
  readonly checks: readonly CheckResult[];
  readonly storage: Readonly<
    Record<string, { bytes: number; backups: number; incomplete: number }>
  >;
  readonly trends: Trends;
  readonly alerts: readonly AlertOutcome[];
  /** The WAL shipping's achieved recovery point over 7 days, when the prefix holds WAL. */
  readonly rpo?: RpoSummary;
}

/**
 * Reads what the checks look at, once: every destination's backups (a destination that
 * cannot be listed is unreachable), the newest verification records, the backup runs.
 */
async function readView(
  settings: MonitorSettings,
  deps: MonitorDeps,
  now: Date,
): Promise<MonitorView> {
  const { host } = deps;
  const scans = new Map<string, BackupAtDestination[]>();
  const unreachable = new Map<string, string>();
  await host.group('Scan destinations', async () => {
    // The destinations read at the same time (as list does); kept and reported in order.
    const read = await Promise.all(
      deps.destinations.map((d) =>
        scanDestination(d, settings.prefix, now, settings.trusted).then(
          (list) => ({ d, list, error: null }),
          (error: unknown) => ({ d, list: null, error }),
        ),
      ),
    );
    for (const { d, list, error } of read) {
      if (list) scans.set(d.settings.name, list);
      else {
        unreachable.set(d.settings.name, d.describeError(error));
        host.warning(
          `${d.settings.name}: cannot list ${d.settings.bucket}: ${d.describeError(error)}`,
        );
      }
    }
  });
  return {
    destinations: deps.destinations.map(({ settings: { name, bucket, endpoint } }) => ({
      name,
      bucket,
      endpoint,
    })),
    scans,
    unreachable,
    verifications: await latestVerifications(deps.destinations, scans, now, settings.trusted),
    runs: await readRuns(settings.backupWorkflow, deps.runs, host),
    wal: await readWal(settings, deps, now),
  };
}

/** The trusted WAL run records of the last {@link RPO_DAYS} days (and the newest), newest first. */
async function readWal(settings: MonitorSettings, deps: MonitorDeps, now: Date): Promise<WalRead> {
  const from = now.getTime() - (RPO_DAYS + 1) * 24 * 3600 * 1000;
  try {
    const { records } = await readWalRecords(deps.destinations, settings.prefix, {
      now,
      trusted: settings.trusted,
      // Newest first: once a batch reaches a record older than the window, older ones are not read.
      enough: (read) => read.some((r) => Date.parse(r.record.finishedAt) < from),
    });
    return {
      state: 'read',
      runs: records
        .filter((r, i) => i === 0 || Date.parse(r.record.finishedAt) >= from)
        .map((r) => ({
          runId: r.record.runId,
          endAt: new Date(r.record.endServerTime ?? r.record.startedAt),
          finishedAt: new Date(r.record.finishedAt),
          endLsn: r.record.endLsn,
        })),
    };
  } catch (e) {
    deps.host.warning(`Could not read the WAL run records: ${(e as Error).message}`);
    return { state: 'unreadable', error: (e as Error).message };
  }
}

/** The backup workflow's last 10 completed runs; a warning when they cannot be read. */
async function readRuns(
  workflow: string | null,
  runs: RunHistory | null,
  host: Host,
): Promise<RunsRead> {
  if (!workflow) return { state: 'not-configured', why: "'backup-workflow' is not set" };
  if (!runs) return { state: 'not-configured', why: 'no github-token' };
  try {
    return { state: 'read', workflow, runs: (await runs(workflow)).slice(0, 10) };
  } catch (e) {
    const error = (e as Error).message;
    if ((e as { status?: unknown }).status === 404) {
      host.warning(`The backup workflow ${workflow} was not found (GitHub API 404: ${error}).`);
      return { state: 'not-found', workflow, error: `GitHub API 404: ${error}` };
    }
    // An outage was told once, by the client that met it.
    if (!(e instanceof GitHubUnavailableError))
      host.warning(`Could not read the runs of ${workflow}: ${error}`);
    return { state: 'unreadable', error };
  }
}

/**
 * The hourly check: freshness and completeness per destination, reachability,
 * verifications, the backup workflow's success rate; each condition raises or clears
 * its own alert (see CHECKS in src/monitor/checks.ts). Trends and storage are figures only.
 */
export async function monitor(
  settings: MonitorSettings,
  deps: MonitorDeps,
): Promise<{ report: MonitorReport; summary: SummaryTable; trends: SummaryTable }> {
  const now = deps.now();
  const view = await readView(settings, deps, now);
  const findings = CHECKS.flatMap((c) => c.evaluate(view, settings, now));
  const nights = nightlyHistory(view.scans, now, settings.keepDaily);
  const chart = historyChart(nights, settings.keepDaily);
  const alerts = await tellFeed(deps, findings, lastGoodOf(view.scans), chart);
  const open = await deps.feed.open();
  const checks: CheckResult[] = findings.map((f) => ({
    check: f.check,
    key: f.key,
    state: f.state,
    detail: f.detail,
    since:
      f.state === 'alert'
        ? (f.condition.since ?? open.find((o) => o.key === f.key)?.since ?? now.toISOString())
        : null,
  }));
  const report: MonitorReport = {
    ok: checks.every((c) => c.state !== 'alert'),
    checks,
    storage: storageOf(view.scans),
    trends: trendsOf(view.scans, now),
    alerts,
  };
  const wal = view.wal?.state === 'read' && view.wal.runs.length > 0 ? view.wal.runs : null;
  return {
    report: wal ? { ...report, rpo: rpoSummary(wal, now) } : report,
    summary: checksTable(checks, now),
    trends: {
      ...trendsTable(report, nights),
      chart: wal ? `${chart}\n\n${rpoChart(wal, now)}` : chart,
    },
  };
}

/** The alerts whose issues show the nights' chart: the ones about backups not being made. */
const CHARTED: ReadonlySet<AlertKey> = new Set(['backup-stale', 'backup-degraded']);

/** Raises what is wrong, clears what recovered; a skipped check does neither. The feed never throws. */
async function tellFeed(
  { host, feed }: MonitorDeps,
  findings: readonly Finding[],
  lastGood: ReturnType<typeof lastGoodOf>,
  chart: string,
): Promise<AlertOutcome[]> {
  const alerts: AlertOutcome[] = [];
  await host.group('Alerts', async () => {
    for (const f of findings) {
      if (f.state === 'alert')
        alerts.push(
          await feed.raise({
            ...f.condition,
            lastGood,
            ...(CHARTED.has(f.key) ? { chart } : {}),
          }),
        );
      else if (f.state === 'ok') alerts.push(await feed.clear(f.key, f.recovery));
    }
  });
  return alerts;
}

function storageOf(scans: MonitorView['scans']): MonitorReport['storage'] {
  return Object.fromEntries(
    [...scans.entries()].map(([name, list]) => [
      name,
      {
        bytes: list.reduce((s, b) => s + [...b.objects.values()].reduce((x, y) => x + y, 0), 0),
        backups: list.filter((b) => b.problem === null).length,
        incomplete: list.filter((b) => b.problem !== null).length,
      },
    ]),
  );
}

/** Trends over the manifests read, one per backup id (the first destination's copy). */
function trendsOf(scans: MonitorView['scans'], now: Date): Trends {
  const manifests = new Map<string, Manifest>();
  for (const list of scans.values())
    for (const b of list) if (b.manifest && !manifests.has(b.id)) manifests.set(b.id, b.manifest);
  return computeTrends([...manifests.values()], now);
}

function checksTable(checks: readonly CheckResult[], now: Date): SummaryTable {
  const light = {
    ok: lit('ok', 'ok'),
    alert: lit('failed', 'alert'),
    skipped: lit('skipped', 'skipped'),
    unknown: lit('skipped', 'unknown'),
  } as const;
  const since = (iso: string | null) =>
    iso === null
      ? ''
      : `${formatTime(iso)} (${formatDuration(now.getTime() - Date.parse(iso))} ago)`;
  return {
    title: `pg-dr monitor: ${checks.some((c) => c.state === 'alert') ? lit('failed', 'ALERT') : lit('ok', 'ok')}`,
    header: ['check', 'state', 'detail', 'since'],
    rows: checks.map((c) => [
      c.check,
      // A backup at some destinations only: working, but short of what was asked.
      c.key === 'backup-degraded' && c.state === 'alert'
        ? lit('degraded', 'degraded')
        : light[c.state],
      c.detail,
      since(c.since),
    ]),
  };
}

function fmt(f: TrendFigure, unit: string, digits = 1): string {
  if (f.current === null) return '—';
  const change =
    f.change === null
      ? ''
      : ` (${f.change >= 0 ? '+' : ''}${(f.change * 100).toFixed(0)}% vs previous 30 days)`;
  return `${f.current.toFixed(digits)} ${unit}${change}`;
}

/** `45 s`, `12 min 3 s`, `2 h 5 min`: a backup's duration. */
function seconds(s: number): string {
  if (s < 120) return `${s.toFixed(0)} s`;
  return s < 7200 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : formatDuration(s * 1000);
}

/** The nights as rows: how many were missed, and the slowest against the median. */
function nightRows(nights: readonly Night[]): string[][] {
  const missed = nights.filter((n) => n.gap === 'missed');
  const rows = [
    [
      `missed nights (last ${HISTORY_NIGHTS} days)`,
      missed.length === 0
        ? lit('ok', 'none')
        : lit('failed', `${missed.length}: ${missed.map((n) => n.day).join(', ')}`),
    ],
  ];
  const backed = nights.flatMap((n) =>
    n.backup ? [{ day: n.day, s: n.backup.durationSeconds }] : [],
  );
  const sorted = backed.map((b) => b.s).sort((a, b) => a - b);
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  const slowest = backed.reduce<(typeof backed)[number] | undefined>(
    (w, b) => (w === undefined || b.s > w.s ? b : w),
    undefined,
  );
  if (slowest && median)
    rows.push([
      `slowest night (last ${HISTORY_NIGHTS} days)`,
      `${slowest.day}: ${seconds(slowest.s)} (${(slowest.s / median).toFixed(1)}× the median night)`,
    ]);
  return rows;
}

function trendsTable(r: MonitorReport, nights: readonly Night[]): SummaryTable {
  const rows: string[][] = [...nightRows(nights)];
  for (const [name, s] of Object.entries(r.storage))
    rows.push([
      `storage at ${name}`,
      `${formatBytes(s.bytes)} in ${s.backups} backups${s.incomplete ? ` (+${s.incomplete} incomplete)` : ''}`,
    ]);
  rows.push([
    'backups (last 30 days)',
    `${r.trends.backups.current} (previous 30 days: ${r.trends.backups.previous})`,
  ]);
  rows.push(['backup duration (median)', fmt(r.trends.durationSeconds, 's')]);
  rows.push(['dump throughput (median)', fmt(r.trends.dumpMBps, 'MB/s of database')]);
  for (const [name, f] of Object.entries(r.trends.uploadMBps))
    rows.push([`upload to ${name} (median)`, fmt(f, 'MB/s')]);
  rows.push(['compression ratio (median)', fmt(r.trends.compressionRatio, '×', 2)]);
  return { title: 'Trends', header: ['figure', 'value'], rows };
}

// The command's handler.

/** The monitor command: runs the checks, whose alerts it raises and clears through the feed. */
export async function runMonitor(settings: MonitorSettings, ctx: Context): Promise<CommandResult> {
  const { host, env, feed, destinations } = ctx;
  const r = await monitor(settings, {
    host,
    destinations,
    now: () => new Date(),
    feed,
    runs: runHistory(settings.githubToken, env, host, feed),
  });
  return {
    outputs: { status: r.report.ok ? 'ok' : 'failed', report: r.report },
    tables: withAlerts([r.summary, r.trends], r.report.alerts),
    // Monitoring reports through the feed; its own step fails only when it cannot check.
    failure: null,
  };
}

/** The last completed runs of a workflow, through the one GitHub client; null without a token. */
function runHistory(
  token: string,
  env: NodeJS.ProcessEnv,
  host: Host,
  feed: AlertFeed,
): RunHistory | null {
  const repository = parseRepository(env);
  if (token === '' || !repository) return null;
  // The feed's own client when it has one: one outage costs one retry budget per run.
  const client =
    feed.client ??
    createGitHubClient({ token, baseUrl: apiUrlFromEnv(env), log: (w) => host.warning(w) });
  return async (file) => {
    const { data } = await client.rest.actions.listWorkflowRuns({
      ...repository,
      workflow_id: file,
      status: 'completed',
      per_page: 10,
    });
    return data.workflow_runs.map((r) => ({ conclusion: r.conclusion ?? null, url: r.html_url }));
  };
}
