/**
 * `check` (preflight): validates every input of a set-up without taking a backup — each
 * destination (a probe written, read and deleted the way a backup writes), the database
 * (through the tunnel), the clients, privileges, row security, roles and lock budget (with
 * `mode: physical`: the replication connection, WAL senders, tablespaces, pg_basebackup), the
 * age and signing keys, the GitHub token and workflow, the webhook and the heartbeat — and
 * prints one row per check with the fix for each ✗. The step fails on any ✗.
 */
import { type GitHubClient, parseRepository } from '../alerts/github.js';
import { checkDatabase } from '../check/database.js';
import { checkDestination } from '../check/destination.js';
import { checkGitHub } from '../check/github.js';
import { checkAge, checkSigning } from '../check/keys.js';
import { checkHeartbeat, checkWebhook } from '../check/notify.js';
import { type CheckRow, SYMBOL } from '../check/row.js';
import type { CheckSettings } from '../inputs/parse.js';
import type { SummaryTable } from '../report/host.js';
import type { Destination } from '../storage/destination.js';
import type { CommandResult, Context } from './command.js';

export interface CheckDeps {
  readonly destinations: readonly Destination[];
  readonly env: NodeJS.ProcessEnv;
  /** The alert feed's GitHub client (its outage breaker); null without a token or repository. */
  readonly github: GitHubClient | null;
}

/** What `check` found: every row, in the order shown. */
export interface CheckReport {
  readonly ok: boolean;
  readonly failed: number;
  readonly warnings: number;
  readonly rows: readonly CheckRow[];
}

/** Runs every check; those that do not depend on each other at once. */
export async function check(settings: CheckSettings, deps: CheckDeps): Promise<CheckReport> {
  const repository = parseRepository(deps.env);
  const repoName = repository ? `${repository.owner}/${repository.repo}` : null;
  const groups = await Promise.all([
    ...deps.destinations.map((d) => checkDestination(d, settings.prefix)),
    checkDatabase(settings, deps.env),
    checkAge(settings.encryption, settings.decryption).then((r) => [r]),
    Promise.resolve([checkSigning(settings.signer, settings.trusted)]),
    checkGitHub({
      client: deps.github,
      token: settings.githubToken !== '',
      repository,
      workflow: settings.backupWorkflow,
    }),
    checkWebhook(settings.alertWebhookUrl, repoName).then((r) => [r]),
    checkHeartbeat(settings.heartbeatUrl).then((r) => [r]),
  ]);
  const rows = groups.flat();
  const failed = rows.filter((r) => r.state === 'fail').length;
  const warnings = rows.filter((r) => r.state === 'warn').length;
  return { ok: failed === 0, failed, warnings, rows };
}

/** The table: one row per check; the fixes, one line each, below it. */
export function checkTable(report: CheckReport): SummaryTable {
  const n = report.rows.length;
  const title = report.ok
    ? `pg-dr check: ✓ no check failed (${n} rows${report.warnings ? `, ${report.warnings} warning(s)` : ''})`
    : `pg-dr check: ✗ ${report.failed} of ${n} checks failed`;
  return {
    title,
    header: ['', 'Check', 'Detail'],
    rows: report.rows.map((r) => [SYMBOL[r.state], r.check, r.detail]),
    notes: report.rows
      .filter((r) => r.fix && (r.state === 'fail' || r.state === 'warn'))
      .map((r) => `${SYMBOL[r.state]} ${r.check} — fix: ${r.fix}`),
  };
}

export async function runCheck(settings: CheckSettings, ctx: Context): Promise<CommandResult> {
  const report = await check(settings, {
    destinations: ctx.destinations,
    env: ctx.env,
    github: ctx.feed.client ?? null,
  });
  const failedRows = report.rows.filter((r) => r.state === 'fail').map((r) => r.check);
  return {
    outputs: { status: report.ok ? 'ok' : 'failed', report },
    tables: [checkTable(report)],
    failure: report.ok
      ? null
      : `check: ${report.failed} check(s) failed: ${failedRows.join('; ')}. The fixes are in the table.`,
  };
}
