import { randomBytes } from 'node:crypto';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatTime } from '../../src/alerts/index.js';
import type { MonitorSettings } from '../../src/inputs/parse.js';
import { backupIdTime } from '../../src/manifest/id.js';
import { createSeededDatabase } from '../harness/fixtures.js';
import { type FakeGitHubApi, startGitHubApi } from '../harness/github-api.js';
import { leasePostgres } from '../harness/lease.js';
import { monitorAt, monitorSettings as settingsFor } from '../harness/monitor.js';
import type { PgCluster } from '../harness/postgres.js';
import { destinationInputs, runPgDr } from '../harness/run.js';
import { type S3Pair, startS3Pair } from '../harness/s3.js';

let pg: PgCluster;
let s3: S3Pair;
let gh: FakeGitHubApi;
let recipient: string;
const token = `ghs_${randomBytes(18).toString('hex')}`;
const HOUR = 3600 * 1000;

beforeAll(async () => {
  [pg, s3] = await Promise.all([leasePostgres({ name: 'monitor' }), startS3Pair()]);
  gh = await startGitHubApi({ token, owner: 'acme', repo: 'platform' });
  await createSeededDatabase(pg, 'app');
  recipient = await identityToRecipient(await generateX25519Identity());
});
afterAll(async () => {
  await Promise.all([pg?.stop(), s3?.stop(), gh?.stop()]);
});

const ghEnv = () => ({ GITHUB_REPOSITORY: 'acme/platform', GITHUB_API_URL: gh.url });

function monitorSettings(extra: Record<string, string> = {}): MonitorSettings {
  return settingsFor({ ...destinationInputs(s3.primary, s3.secondary), ...extra });
}

/** A backup of `app` whose alerts go to the local GitHub API. */
const backupWithAlerts = () => ({
  command: 'backup',
  'database-url': pg.url('app'),
  'age-recipients': recipient,
  'github-token': token,
  ...destinationInputs(s3.primary, s3.secondary),
});

/** The monitor command at a chosen time, with the real feed against the local GitHub API. */
function runMonitor(at: Date, settings = monitorSettings()) {
  return monitorAt(settings, {
    at,
    apiUrl: gh.url,
    token,
    runUrl: 'https://github.example/acme/platform/actions/runs/1',
  });
}

describe('monitor and the alert feed', () => {
  it('stale → one issue; an hour later → the same issue, no comment; a fresh backup → recovered and closed', async () => {
    const b = await runPgDr({
      command: 'backup',
      'database-url': pg.url('app'),
      'age-recipients': recipient,
      ...destinationInputs(s3.primary, s3.secondary),
    });
    expect(b.failed).toBeUndefined();
    const later = new Date(Date.now() + 30 * HOUR);
    const first = await runMonitor(later);
    const stale = first.report.checks.find((c) => c.key === 'backup-stale');
    expect(stale?.state).toBe('alert');
    let open = gh.state.issues.filter(
      (i) => i.state === 'open' && i.title.includes('no fresh backup'),
    );
    expect(open.length).toBe(1);
    const issue = open[0];
    expect(issue?.labels).toContain('disaster-recovery');
    expect(issue?.body).toContain(b.outputs['backup-id']);
    expect(issue?.body).toContain('https://github.example/acme/platform/actions/runs/1');
    // Since = when backups became stale (the newest backup + max-backup-age-hours, 26 by
    // default), not when this alert opened: 4 h before this check, not "under a minute".
    const staleSince = new Date(
      backupIdTime(b.outputs['backup-id'] as string).getTime() + 26 * HOUR,
    );
    expect(stale?.since).toBe(staleSince.toISOString());
    expect(issue?.body).toContain(`### Since\n\n${formatTime(staleSince.toISOString())} — 4 h`);
    expect(stale?.detail).toMatch(/^b2: newest \S+ is 1 d 6 h old; r2: newest \S+ is 1 d 6 h old$/);
    const row = first.summary.rows.find((r) => r[0] === 'backup fresh');
    expect(row?.[3]).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d UTC \(4 h( \d+ min)? ago\)$/);
    const commentsBefore = issue?.comments.length;

    await runMonitor(new Date(later.getTime() + HOUR));
    open = gh.state.issues.filter((i) => i.state === 'open' && i.title.includes('no fresh backup'));
    expect(open.length).toBe(1);
    expect(open[0]?.number).toBe(issue?.number);
    expect(open[0]?.comments.length).toBe(commentsBefore);

    const fresh = await runPgDr({
      command: 'backup',
      'database-url': pg.url('app'),
      'age-recipients': recipient,
      ...destinationInputs(s3.primary, s3.secondary),
    });
    expect(fresh.failed).toBeUndefined();
    const ok = await runMonitor(new Date(Date.now() + HOUR));
    expect(ok.report.checks.find((c) => c.key === 'backup-stale')?.state).toBe('ok');
    const closed = gh.state.issues.find((i) => i.number === issue?.number);
    expect(closed?.state).toBe('closed');
    expect(closed?.comments.at(-1)?.body).toMatch(/Recovered/);
    // The summary a person reads: a traffic light per check, then the trends.
    expect(ok.summary.header).toEqual(['check', 'state', 'detail', 'since']);
    expect(ok.trends.rows.some((r) => r[0]?.startsWith('storage at b2'))).toBe(true);
    console.log(
      `--- backup-stale issue #${closed?.number} body ---\n${closed?.body}\n--- comments ---\n${closed?.comments.map((c) => c.body).join('\n---\n')}`,
    );
  });

  it('an unreachable secondary opens destination-unreachable:r2, and closes it when it is back', async () => {
    const down = await runMonitor(
      new Date(),
      monitorSettings({ 'secondary-endpoint': 'http://127.0.0.1:9' }),
    );
    expect(down.report.checks.find((c) => c.key === 'destination-unreachable:r2')?.state).toBe(
      'alert',
    );
    const issue = gh.state.issues.find((i) => i.state === 'open' && i.title.includes('r2'));
    expect(issue).toBeDefined();
    console.log(`--- destination-unreachable:r2 issue #${issue?.number} body ---\n${issue?.body}`);
    const back = await runMonitor(new Date());
    expect(back.report.checks.find((c) => c.key === 'destination-unreachable:r2')?.state).toBe(
      'ok',
    );
    expect(gh.state.issues.find((i) => i.number === issue?.number)?.state).toBe('closed');
  });

  it('a failed backup opens backup-failed; the next good one closes it', async () => {
    const inputs = {
      command: 'backup',
      'age-recipients': recipient,
      'github-token': token,
      ...destinationInputs(s3.primary, s3.secondary),
    };
    const before = await runPgDr({ ...inputs, 'database-url': pg.url('app') }, ghEnv());
    expect(before.outputs.status).toBe('ok');
    const bad = await runPgDr(
      { ...inputs, 'database-url': pg.url('app').replace(/:[^:@/]+@/, ':wrong-password@') },
      ghEnv(),
    );
    expect(bad.outputs.status).toBe('failed');
    const issue = gh.state.issues.find(
      (i) => i.state === 'open' && i.title.includes('backup of app failed'),
    );
    expect(issue?.body).toMatch(/password authentication failed/);
    // The last good backup is named (it was "Not known to this check").
    expect(issue?.body).toMatch(
      new RegExp(
        `### Last good backup\\n\\n\`${before.outputs['backup-id']}\`, finished .* stored at \\*\\*b2\\*\\*, \\*\\*r2\\*\\*\\.`,
      ),
    );
    expect(issue?.body).not.toContain('wrong-password');
    expect(JSON.stringify(gh.state)).not.toContain(token);
    const good = await runPgDr({ ...inputs, 'database-url': pg.url('app') }, ghEnv());
    expect(good.failed).toBeUndefined();
    expect(gh.state.issues.find((i) => i.number === issue?.number)?.state).toBe('closed');
  });

  it('GitHub answering 403 or 500 changes nothing about the command’s own result', async () => {
    gh.failNext(403, Number.POSITIVE_INFINITY);
    try {
      const r = await runPgDr(backupWithAlerts(), ghEnv());
      expect(r.failed).toBeUndefined();
      expect(r.outputs.status).toBe('ok');
      expect(r.log).toMatch(/warning: .*403/);
    } finally {
      gh.clearFailures();
    }
    gh.failNext(500, Number.POSITIVE_INFINITY);
    try {
      const m = await runMonitor(new Date(Date.now() + 40 * HOUR));
      expect(m.report.checks.find((c) => c.key === 'backup-stale')?.state).toBe('alert');
      // The first call meets the outage; every alert is skipped (see the tests below).
      expect(m.report.alerts.length).toBeGreaterThan(0);
      expect(m.report.alerts.every((a) => a.state === 'skipped')).toBe(true);
    } finally {
      gh.clearFailures();
    }
  });

  it('zero runs of the backup workflow is ⚪ unknown; a workflow that does not exist opens backup-workflow-missing until it is found', async () => {
    const inputs = {
      command: 'monitor',
      'github-token': token,
      ...destinationInputs(s3.primary, s3.secondary),
    };
    gh.seedRuns('no-runs-yet.yml', []);
    const none = await runPgDr({ ...inputs, 'backup-workflow': 'no-runs-yet.yml' }, ghEnv());
    const rows = none.tables.find((t) => t.title.startsWith('pg-dr monitor'))?.rows ?? [];
    const rate = rows.find((r) => r[0] === 'backup runs succeed');
    // Was: 🟢 ok "0 of the last 0 completed runs of … succeeded (100%, minimum 80%)".
    expect(rate?.slice(1, 3)).toEqual([
      '⚪ unknown',
      'no completed run of no-runs-yet.yml found: the success rate is unknown',
    ]);
    expect(rows.find((r) => r[0] === 'backup workflow found')?.[1]).toBe('🟢 ok');
    const report = JSON.parse(none.outputs.report as string);
    expect(report.checks.find((c: { key: string }) => c.key === 'low-success-rate').state).toBe(
      'unknown',
    );

    const typo = await runPgDr({ ...inputs, 'backup-workflow': 'pg-dr-bakup.yml' }, ghEnv());
    expect(typo.failed).toBeUndefined();
    expect(typo.log).toMatch(/warning: The backup workflow pg-dr-bakup\.yml was not found/);
    const typoRows = typo.tables.find((t) => t.title.startsWith('pg-dr monitor'))?.rows ?? [];
    expect(typoRows.find((r) => r[0] === 'backup workflow found')?.[1]).toBe('🔴 alert');
    expect(typoRows.find((r) => r[0] === 'backup runs succeed')?.[1]).toBe('⚪ skipped');
    const issue = gh.state.issues.find(
      (i) =>
        i.state === 'open' && i.body?.includes('<!-- pg-dr:alert key=backup-workflow-missing -->'),
    );
    expect(issue?.title).toBe('pg-dr: the backup workflow pg-dr-bakup.yml does not exist');
    expect(issue?.body).toContain("Set 'backup-workflow' to the file name");
    console.log(`--- backup-workflow-missing issue #${issue?.number} body ---\n${issue?.body}`);

    gh.seedRuns('pg-dr-bakup.yml', [{ conclusion: 'success' }]);
    const found = await runPgDr({ ...inputs, 'backup-workflow': 'pg-dr-bakup.yml' }, ghEnv());
    const foundRows = found.tables.find((t) => t.title.startsWith('pg-dr monitor'))?.rows ?? [];
    expect(foundRows.find((r) => r[0] === 'backup workflow found')?.[1]).toBe('🟢 ok');
    const closed = gh.state.issues.find((i) => i.number === issue?.number);
    expect(closed?.state).toBe('closed');
    expect(closed?.comments.at(-1)?.body).toContain(
      '✅ Recovered: the workflow `pg-dr-bakup.yml` is found again.',
    );
  });

  /** The warnings a run logged, one a line. */
  const warningsOf = (log: string) => log.split('\n').filter((l) => l.startsWith('warning: '));

  /** A run against an API answering 500 to everything, with the default client (3 retries, 1 s back-off unit). */
  async function underOutage(inputs: Record<string, string>) {
    gh.failNext(500, Number.POSITIVE_INFINITY);
    const before = gh.requests.length;
    try {
      const r = await runPgDr(inputs, ghEnv());
      return { ...r, sent: gh.requests.slice(before), warnings: warningsOf(r.log) };
    } finally {
      gh.clearFailures();
    }
  }

  /** What an outage must leave: one warning naming the status (never the token), one call's tries sent. */
  function expectOneRetryBudget(down: Awaited<ReturnType<typeof underOutage>>) {
    const told = down.warnings.filter((w) => /GitHub/.test(w));
    expect(told).toHaveLength(1);
    expect(told[0]).toMatch(
      /GitHub API unavailable \(500 .* on GET \/repos\/(\{owner\}\/\{repo\}|acme\/platform)\/[^ ?]*, after 3 retries\): the rest of this run's alert work is skipped/,
    );
    expect(down.log).not.toContain(token);
    // The first call and its 3 retries (the default); every later call skipped, unsent.
    expect(down.sent).toHaveLength(4);
    expect(new Set(down.sent.map((r) => `${r.method} ${r.path}`)).size).toBe(1);
    expect(down.sent.every((r) => r.status === 500)).toBe(true);
  }

  it('a total GitHub outage costs a monitor one retry budget (default back-off); its result stands', async () => {
    gh.seedRuns('backup.yml', [{ conclusion: 'success' }, { conclusion: 'success' }]);
    const inputs = {
      command: 'monitor',
      'github-token': token,
      'backup-workflow': 'backup.yml',
      ...destinationInputs(s3.primary, s3.secondary),
    };
    const healthy = await runPgDr(inputs, ghEnv());
    const down = await underOutage(inputs);
    expectOneRetryBudget(down);
    expect(down.failed).toBe(healthy.failed);
    expect(down.warnings).toHaveLength(warningsOf(healthy.log).length + 1);
    type Report = { checks: { key: string; state: string }[]; alerts: { state: string }[] };
    const [was, now] = [healthy, down].map((r) => JSON.parse(r.outputs.report ?? '') as Report);
    // Every check the destinations answer is judged as before; only the runs went unread,
    // so the two checks that read them cannot tell.
    const fromRuns = ['low-success-rate', 'backup-workflow-missing'];
    const states = (r: Report | undefined) =>
      r?.checks.filter((c) => !fromRuns.includes(c.key)).map((c) => `${c.key}=${c.state}`);
    expect(states(now)).toEqual(states(was));
    expect(now?.checks.find((c) => c.key === 'backup-workflow-missing')?.state).toBe('skipped');
    expect(down.outputs.status).toBe(healthy.outputs.status);
    expect(now?.alerts.length).toBeGreaterThan(0);
    expect(now?.alerts.every((a) => a.state === 'skipped')).toBe(true);
  });

  it('a GitHub API that hangs: the default outage budget (20 s) ends the alert work; the result stands', async () => {
    // Every request hangs far longer than the run: only the default budget can end it.
    gh.failNext(200, Number.POSITIVE_INFINITY, undefined, { delayMs: 120_000 });
    const before = gh.requests.length;
    try {
      const run = await runPgDr(backupWithAlerts(), ghEnv());
      expect(run.failed).toBeUndefined();
      expect(run.outputs.status).toBe('ok');
      const told = warningsOf(run.log).filter((w) => /GitHub/.test(w));
      expect(told).toEqual([
        "warning: GitHub API unavailable (no answer below 500 within 20 s): the rest of this run's alert work is skipped. The command's own result stands.",
      ]);
      // The default 10 s timeout lets at most two tries start within the 20 s budget.
      expect(gh.requests.length - before).toBeLessThanOrEqual(2);
    } finally {
      gh.clearFailures();
    }
  }, 60_000);

  it('a total GitHub outage costs a backup one retry budget (default back-off); the backup stands', async () => {
    const down = await underOutage(backupWithAlerts());
    expectOneRetryBudget(down);
    expect(down.failed).toBeUndefined();
    expect(down.outputs.status).toBe('ok');
    expect(down.outputs['backup-id']).toMatch(/^\d{8}T\d{6}Z-/);
  });
});
