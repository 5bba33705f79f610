import { untrustedObjects } from '../alerts/conditions.js';
import {
  type AlertCondition,
  type AlertFeed,
  type AlertOutcome,
  destinationUnreachableKey,
} from '../alerts/index.js';
import type { MonitorSettings } from '../inputs/parse.js';
import {
  type BackupAtDestination,
  latestVerification,
  manifestDisagreement,
  scanDestination,
} from '../manifest/catalog.js';
import { backupIdTime } from '../manifest/id.js';
import type { Manifest } from '../manifest/schema.js';
import { computeTrends, type TrendFigure, type Trends } from '../manifest/trends.js';
import type { Verification } from '../manifest/verification.js';
import type { Host, SummaryTable } from '../report/host.js';
import { inert } from '../report/inert.js';
import { formatBytes } from '../report/progress.js';
import type { Destination } from '../storage/destination.js';
import { describeS3Error } from '../storage/destination.js';

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

export type CheckState = 'ok' | 'alert' | 'skipped';

export interface CheckResult {
  readonly check: string;
  readonly key: string;
  readonly state: CheckState;
  readonly detail: string;
  /** When the alert was first seen (from its open issue), else null. */
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
}

const HOUR = 3600 * 1000;

function hoursAgo(now: Date, t: Date): number {
  return (now.getTime() - t.getTime()) / HOUR;
}

function lastGoodOf(
  all: Map<string, BackupAtDestination[]>,
): { id: string; time: string; where: string[] } | null {
  let best: BackupAtDestination | undefined;
  for (const list of all.values()) {
    const c = list.find((b) => b.problem === null);
    if (c && (!best || c.id > best.id)) best = c;
  }
  if (!best) return null;
  const id = best.id;
  const where = [...all.entries()]
    .filter(([, l]) => l.some((b) => b.id === id && b.problem === null))
    .map(([n]) => n);
  return { id, time: backupIdTime(id).toISOString(), where };
}

/**
 * The hourly check: freshness and completeness per destination, reachability,
 * verifications, the backup workflow's success rate; each condition raises or clears
 * its own alert. Trends and storage are figures only.
 */
export async function monitor(
  settings: MonitorSettings,
  deps: MonitorDeps,
): Promise<{ report: MonitorReport; summary: SummaryTable; trends: SummaryTable }> {
  const now = deps.now();
  const { host } = deps;
  const scans = new Map<string, BackupAtDestination[]>();
  const unreachable = new Map<string, string>();
  await host.group('Scan destinations', async () => {
    for (const d of deps.destinations) {
      try {
        scans.set(
          d.settings.name,
          await scanDestination(d, settings.prefix, now, settings.trusted),
        );
      } catch (e) {
        unreachable.set(d.settings.name, describeS3Error(e));
        host.warning(`${d.settings.name}: cannot list ${d.settings.bucket}: ${describeS3Error(e)}`);
      }
    }
  });
  const lastGood = lastGoodOf(scans);
  const results: {
    result: Omit<CheckResult, 'since'>;
    condition: AlertCondition | null;
    recovery: string;
  }[] = [];

  // Reachability, one alert per destination.
  for (const d of deps.destinations) {
    const name = d.settings.name;
    const key = destinationUnreachableKey(name);
    const why = unreachable.get(name);
    results.push({
      result: {
        check: `${name} reachable`,
        key,
        state: why ? 'alert' : 'ok',
        detail: why ?? `${d.settings.bucket} listed`,
      },
      condition: why
        ? {
            key,
            title: `pg-dr: destination ${name} is unreachable`,
            detail: `The bucket \`${d.settings.bucket}\` at \`${new URL(d.settings.endpoint).host}\` cannot be listed: ${inert(why)}`,
            lastGood,
            nextStep: `Check the ${name} credentials (key not expired or revoked, scoped to the bucket), the endpoint and the provider's status page.`,
          }
        : null,
      recovery: `${name} (${d.settings.bucket}) can be listed again.`,
    });
  }

  // Freshness: the newest complete backup at each reachable destination.
  const stale: string[] = [];
  const fresh: string[] = [];
  for (const [name, list] of scans) {
    const newest = list.find((b) => b.problem === null);
    if (!newest) stale.push(`${name}: no complete backup`);
    else {
      const h = hoursAgo(now, backupIdTime(newest.id));
      (h > settings.maxBackupAgeHours ? stale : fresh).push(
        `${name}: newest ${newest.id} is ${h.toFixed(1)} h old`,
      );
    }
  }
  const worstHours = Math.max(
    0,
    ...[...scans.values()].map((l) => {
      const n = l.find((b) => b.problem === null);
      return n ? hoursAgo(now, backupIdTime(n.id)) : Number.POSITIVE_INFINITY;
    }),
  );
  results.push({
    result: {
      check: 'backup fresh',
      key: 'backup-stale',
      state: scans.size === 0 ? 'skipped' : stale.length ? 'alert' : 'ok',
      detail: scans.size === 0 ? 'no destination could be listed' : [...stale, ...fresh].join('; '),
    },
    condition: stale.length
      ? {
          key: 'backup-stale',
          title: `pg-dr: no fresh backup (limit ${settings.maxBackupAgeHours} h)`,
          detail: `The newest complete backup is older than ${settings.maxBackupAgeHours} hours: ${stale.join('; ')}. Scheduled runs may have failed, been skipped, or been dropped by GitHub.`,
          figure: Number.isFinite(worstHours) ? Math.floor(worstHours / 24) : 9999,
          lastGood,
          nextStep:
            'Open the backup workflow’s recent runs; run it by hand (workflow_dispatch) and watch it complete.',
        }
      : null,
    recovery: `a fresh backup exists: ${fresh.join('; ')}.`,
  });

  // Completeness of the newest backup at every destination.
  const newestId = [...scans.values()]
    .flatMap((l) => l.filter((b) => !b.future).map((b) => b.id))
    .sort()
    .at(-1);
  const degraded: string[] = [];
  if (newestId && unreachable.size === 0) {
    for (const [name, list] of scans) {
      const b = list.find((x) => x.id === newestId);
      if (!b) degraded.push(`${name}: missing`);
      else if (b.problem !== null && hoursAgo(now, backupIdTime(newestId)) > 2)
        degraded.push(`${name}: ${b.problem}`);
    }
  }
  results.push({
    result: {
      check: 'newest backup everywhere',
      key: 'backup-degraded',
      state: !newestId || unreachable.size > 0 ? 'skipped' : degraded.length ? 'alert' : 'ok',
      detail: !newestId
        ? 'no backup yet'
        : degraded.length
          ? `${newestId}: ${degraded.join('; ')}`
          : `${newestId} complete at ${[...scans.keys()].join(', ')}`,
    },
    condition: degraded.length
      ? {
          key: 'backup-degraded',
          title: `pg-dr: newest backup is not complete at every destination`,
          detail: `Backup ${newestId} is incomplete: ${inert(degraded.join('; '))}.`,
          figure: degraded.length,
          lastGood,
          nextStep:
            'Look at the backup run’s log for the failed destination; the next backup normally repairs this. Run one by hand if the next one is far away.',
        }
      : null,
    recovery: `backup ${newestId} is complete at every destination.`,
  });

  // Folders pg-dr did not write as they are: dated in the future, or committed (a manifest
  // exists) and then damaged or overwritten. Nothing reads them as backups; a person should.
  const foreign: string[] = [];
  for (const [name, list] of scans)
    for (const b of list)
      if (b.future || (b.hasManifest && b.problem !== null))
        foreign.push(`${name}: ${b.id}: ${b.problem}`);
  const everywhere = [...scans.values()].flat();
  for (const id of new Set(everywhere.map((b) => b.id))) {
    const why = manifestDisagreement(
      everywhere.filter((b) => b.id === id && b.problem === null && b.manifest),
    );
    if (why) foreign.push(`${id}: ${why}`);
  }
  results.push({
    result: {
      check: 'nothing foreign in the bucket',
      key: 'untrusted-objects',
      state: scans.size === 0 ? 'skipped' : foreign.length ? 'alert' : 'ok',
      detail: foreign.length ? inert(foreign.join('; ')) : 'every folder is a backup pg-dr wrote',
    },
    condition: foreign.length ? { ...untrustedObjects(foreign), lastGood } : null,
    recovery: 'every folder in the bucket is a backup pg-dr wrote.',
  });

  // Verifications: the newest record at each destination.
  const latest: { destination: string; v: Verification }[] = [];
  for (const d of deps.destinations) {
    const list = scans.get(d.settings.name);
    if (!list) continue;
    const withV = [...list]
      .filter((b) => b.verificationKeys.length > 0)
      .sort((a, b) =>
        (a.verificationKeys.at(-1) as string) < (b.verificationKeys.at(-1) as string) ? 1 : -1,
      );
    const newestV = withV[0];
    if (!newestV) continue;
    const v = await latestVerification(d, newestV, now, settings.trusted);
    if (v) latest.push({ destination: d.settings.name, v });
  }
  const newestVerification = latest
    .map((x) => new Date(x.v.startedAt))
    .sort((a, b) => b.getTime() - a.getTime())[0];
  const verifyAgeDays = newestVerification ? hoursAgo(now, newestVerification) / 24 : null;
  const verifyStale =
    scans.size > 0 && (verifyAgeDays === null || verifyAgeDays > settings.maxVerifyAgeDays);
  results.push({
    result: {
      check: 'verified recently',
      key: 'verification-stale',
      state: scans.size === 0 ? 'skipped' : verifyStale ? 'alert' : 'ok',
      detail:
        verifyAgeDays === null
          ? 'no verification recorded'
          : `last verification ${verifyAgeDays.toFixed(1)} days ago`,
    },
    condition: verifyStale
      ? {
          key: 'verification-stale',
          title: `pg-dr: no verification in ${settings.maxVerifyAgeDays} days`,
          detail:
            verifyAgeDays === null
              ? 'No verification has ever been recorded: nobody knows whether these backups restore.'
              : `The last verification ran ${verifyAgeDays.toFixed(1)} days ago (limit ${settings.maxVerifyAgeDays}).`,
          figure: verifyAgeDays === null ? 9999 : Math.floor(verifyAgeDays),
          lastGood,
          nextStep:
            'Run the verify workflow (weekly schedule, or workflow_dispatch) and check that its schedule still fires.',
        }
      : null,
    recovery: `a verification ran ${verifyAgeDays?.toFixed(1)} days ago.`,
  });
  const failedV = latest.filter((x) => !x.v.ok);
  results.push({
    result: {
      check: 'last verification passed',
      key: 'verification-failed',
      state: latest.length === 0 ? 'skipped' : failedV.length ? 'alert' : 'ok',
      detail:
        latest.length === 0
          ? 'no verification recorded'
          : latest
              .map(
                (x) =>
                  `${x.destination}: ${x.v.backupId} ${x.v.level} ${x.v.ok ? 'ok' : `FAILED (${x.v.error})`}`,
              )
              .join('; '),
    },
    condition: failedV.length
      ? {
          key: 'verification-failed',
          title: 'pg-dr: the latest verification failed',
          detail: failedV
            .map(
              (x) =>
                `${x.destination}: backup ${x.v.backupId} failed ${x.v.level} verification on ${inert(x.v.startedAt)}: ${inert(x.v.error ?? 'failed')}`,
            )
            .join('\n'),
          figure: failedV.length,
          lastGood,
          nextStep:
            'Read the verification record and the run log; if an object is damaged, restore from the other destination and take a new backup.',
        }
      : null,
    recovery: 'the latest verification passed at every destination.',
  });

  // The backup workflow's success rate.
  if (!settings.backupWorkflow || !deps.runs) {
    results.push({
      result: {
        check: 'backup runs succeed',
        key: 'low-success-rate',
        state: 'skipped',
        detail: !settings.backupWorkflow
          ? "skipped: 'backup-workflow' is not set"
          : 'skipped: no github-token',
      },
      condition: null,
      recovery: '',
    });
  } else {
    try {
      const runs = (await deps.runs(settings.backupWorkflow)).slice(0, 10);
      const ok = runs.filter((r) => r.conclusion === 'success').length;
      const rate = runs.length ? ok / runs.length : 1;
      const low = runs.length > 0 && rate < settings.minSuccessRate;
      results.push({
        result: {
          check: 'backup runs succeed',
          key: 'low-success-rate',
          state: low ? 'alert' : 'ok',
          detail: `${ok} of the last ${runs.length} completed runs of ${settings.backupWorkflow} succeeded (${(rate * 100).toFixed(0)}%, minimum ${(settings.minSuccessRate * 100).toFixed(0)}%)`,
        },
        condition: low
          ? {
              key: 'low-success-rate',
              title: `pg-dr: only ${ok} of the last ${runs.length} backup runs succeeded`,
              detail: `The last ${runs.length} completed runs of \`${settings.backupWorkflow}\`: ${runs.map((r) => r.conclusion ?? '?').join(', ')}.`,
              figure: Math.round(rate * 100),
              worseWhen: 'lower',
              lastGood,
              nextStep: `Open the failed runs of ${settings.backupWorkflow}; a recurring failure (credentials, version mismatch, timeouts) needs a fix, not a retry.`,
            }
          : null,
        recovery: `${ok} of the last ${runs.length} runs succeeded (${(rate * 100).toFixed(0)}%).`,
      });
    } catch (e) {
      host.warning(
        `Could not read the runs of ${settings.backupWorkflow}: ${(e as Error).message}`,
      );
      results.push({
        result: {
          check: 'backup runs succeed',
          key: 'low-success-rate',
          state: 'skipped',
          detail: `runs unreadable: ${(e as Error).message}`,
        },
        condition: null,
        recovery: '',
      });
    }
  }

  // Alerts: raise what is wrong, clear what recovered. The feed never throws.
  const alerts: AlertOutcome[] = [];
  await host.group('Alerts', async () => {
    for (const r of results) {
      if (r.result.state === 'skipped') continue;
      alerts.push(
        r.condition
          ? await deps.feed.raise(r.condition)
          : await deps.feed.clear(r.result.key, r.recovery),
      );
    }
  });
  const open = await deps.feed.open();
  const checks: CheckResult[] = results.map((r) => ({
    ...r.result,
    since:
      r.result.state === 'alert'
        ? (open.find((o) => o.key === r.result.key)?.since ?? now.toISOString())
        : null,
  }));

  const storage = Object.fromEntries(
    [...scans.entries()].map(([name, list]) => [
      name,
      {
        bytes: list.reduce((s, b) => s + [...b.objects.values()].reduce((x, y) => x + y, 0), 0),
        backups: list.filter((b) => b.problem === null).length,
        incomplete: list.filter((b) => b.problem !== null).length,
      },
    ]),
  );
  const manifests = new Map<string, Manifest>();
  for (const list of scans.values())
    for (const b of list) if (b.manifest && !manifests.has(b.id)) manifests.set(b.id, b.manifest);
  const trends = computeTrends([...manifests.values()], now);
  const report: MonitorReport = {
    ok: checks.every((c) => c.state !== 'alert'),
    checks,
    storage,
    trends,
    alerts,
  };
  return { report, summary: checksTable(checks), trends: trendsTable(report) };
}

function checksTable(checks: readonly CheckResult[]): SummaryTable {
  const light = { ok: '🟢 ok', alert: '🔴 alert', skipped: '⚪ skipped' } as const;
  return {
    title: `pg-dr monitor: ${checks.some((c) => c.state === 'alert') ? 'ALERT' : 'ok'}`,
    header: ['check', 'state', 'detail', 'since'],
    rows: checks.map((c) => [c.check, light[c.state], c.detail, c.since ?? '']),
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

function trendsTable(r: MonitorReport): SummaryTable {
  const rows: string[][] = [];
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

// The command's handler. Its imports sit here, next to it, so the code above stays as it is.
import { apiUrlFromEnv, createGitHubClient, parseRepository } from '../alerts/index.js';
import { type CommandResult, type Context, withAlerts } from './command.js';

/** The monitor command: runs the checks, whose alerts it raises and clears through the feed. */
export async function runMonitor(settings: MonitorSettings, ctx: Context): Promise<CommandResult> {
  const { host, env, feed, destinations } = ctx;
  const r = await monitor(settings, {
    host,
    destinations,
    now: () => new Date(),
    feed,
    runs: runHistory(settings.githubToken, env, host),
  });
  return {
    outputs: { status: r.report.ok ? 'ok' : 'failed', report: r.report },
    tables: withAlerts([r.summary, r.trends], r.report.alerts),
    // Monitoring reports through the feed; its own step fails only when it cannot check.
    failure: null,
  };
}

/** The last completed runs of a workflow, through the one GitHub client; null without a token. */
function runHistory(token: string, env: NodeJS.ProcessEnv, host: Host): RunHistory | null {
  const repository = parseRepository(env);
  if (token === '' || !repository) return null;
  const client = createGitHubClient({
    token,
    baseUrl: apiUrlFromEnv(env),
    log: (w) => host.warning(w),
  });
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
