import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AlertCondition,
  alertFeedFromEnv,
  createAlertFeed,
  createGitHubClient,
  destinationUnreachableKey,
} from '../../src/alerts/index.js';
import { type FakeGitHubApi, startGitHubApi } from '../harness/github-api.js';

const TOKEN = 'ghs_fakeTokenForTests0123456789abcdef';
const OWNER = 'acme';
const REPO = 'platform';
const LABELS = ['disaster-recovery', 'pg-dr'];
const RUN_URL = 'https://github.example/acme/platform/actions/runs/4242';
const T0 = Date.parse('2025-03-01T04:00:00Z');
const HOUR = 3_600_000;

/** A clock the test moves by hand. */
function clock(start = T0) {
  let t = start;
  return { now: () => new Date(t), advance: (ms: number) => (t += ms) };
}

function feedFor(
  api: FakeGitHubApi,
  now: () => Date,
  extra: { token?: string; retries?: number; timeoutMs?: number; outageBudgetMs?: number } = {},
) {
  const warnings: string[] = [];
  const client = createGitHubClient({
    token: extra.token ?? TOKEN,
    baseUrl: api.url,
    retries: extra.retries ?? 2,
    retryBaseMs: 1,
    paceWrites: false,
    ...(extra.timeoutMs !== undefined ? { timeoutMs: extra.timeoutMs } : {}),
    ...(extra.outageBudgetMs !== undefined ? { outageBudgetMs: extra.outageBudgetMs } : {}),
    log: (w) => warnings.push(w),
  });
  const feed = createAlertFeed({
    client,
    owner: OWNER,
    repo: REPO,
    labels: LABELS,
    runUrl: RUN_URL,
    now,
    log: (w) => warnings.push(w),
  });
  return { feed, warnings };
}

function stale(hours: number, days = Math.floor(hours / 24)): AlertCondition {
  return {
    key: 'backup-stale',
    title: `Backups are stale: none finished for ${hours} hours`,
    detail: `No backup has finished for **${hours} hours** (the schedule expects one every 24 hours). The newest is \`20250228T030000Z-3fa9c1\`.`,
    figure: days,
    worseWhen: 'higher',
    lastGood: {
      id: '20250228T030000Z-3fa9c1',
      time: '2025-02-28T03:04:12Z',
      where: ['r2', 'b2'],
    },
    nextStep:
      'Open the **backup** workflow runs: if none ran, check that the schedule is enabled (GitHub disables schedules in repositories without activity for 60 days); if they failed, read the failed step.',
  };
}

const bodies = new Map<string, string>();

describe('alert feed against a local GitHub API', () => {
  let api: FakeGitHubApi;
  beforeAll(async () => {
    api = await startGitHubApi({ token: TOKEN, owner: OWNER, repo: REPO });
  });
  afterAll(async () => {
    await api?.stop();
  });

  const alertIssues = (key: string) =>
    api.state.issues.filter((i) => i.body?.includes(`<!-- pg-dr:alert key=${key} -->`));
  const writes = () => api.requests.filter((r) => r.method !== 'GET');

  it('opens one issue with its labels (creating them), then updates it quietly an hour later', async () => {
    const c = clock();
    const { feed, warnings } = feedFor(api, c.now);

    const first = await feed.raise(stale(25));
    expect(first).toMatchObject({ state: 'opened', key: 'backup-stale', issue: 1 });
    expect(api.state.labels.map((l) => l.name).sort()).toEqual([...LABELS].sort());
    expect(
      api.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/labels')),
    ).toHaveLength(2);
    const [issue] = alertIssues('backup-stale');
    expect(issue?.labels.sort()).toEqual([...LABELS].sort());
    expect(issue?.comments).toHaveLength(0);
    const firstBody = issue?.body ?? '';
    expect(firstBody).toContain('2025-03-01 04:00 UTC');

    // An hour later, same condition, a new run (a new feed): no duplicate, no comment.
    c.advance(HOUR);
    const again = feedFor(api, c.now);
    const before = writes().length;
    const second = await again.feed.raise(stale(26));
    expect(second).toMatchObject({ state: 'unchanged', issue: 1 });
    expect(alertIssues('backup-stale')).toHaveLength(1);
    expect(issue?.comments).toHaveLength(0);
    expect(issue?.body).not.toBe(firstBody);
    expect(issue?.body).toContain('26 hours');
    expect(issue?.body).toContain('Since\n\n2025-03-01 04:00 UTC — 1 h as of the last check');
    // Labels exist now: the second run creates none and writes only the body.
    expect(
      writes()
        .slice(before)
        .map((r) => `${r.method} ${r.path}`),
    ).toEqual([`PATCH /repos/${OWNER}/${REPO}/issues/1`]);
    expect([...warnings, ...again.warnings]).toEqual([]);
  });

  it('comments once when the figure gets worse, not when it merely repeats', async () => {
    const c = clock(T0 + 24 * HOUR);
    const { feed } = feedFor(api, c.now);
    expect(await feed.raise(stale(49))).toMatchObject({ state: 'updated', issue: 1 });
    const [issue] = alertIssues('backup-stale');
    expect(issue?.comments).toHaveLength(1);
    expect(issue?.comments[0]?.body).toContain('**Worse** than last reported (1 → 2)');
    expect(issue?.comments[0]?.body).toContain(RUN_URL);

    c.advance(HOUR);
    expect(await feedFor(api, c.now).feed.raise(stale(50))).toMatchObject({ state: 'unchanged' });
    // Better, then back to where the person was last told: still no news.
    expect(await feedFor(api, c.now).feed.raise(stale(30))).toMatchObject({ state: 'unchanged' });
    expect(await feedFor(api, c.now).feed.raise(stale(50))).toMatchObject({ state: 'unchanged' });
    expect(issue?.comments).toHaveLength(1);
    // Since is kept across every update.
    expect(issue?.body).toContain('2025-03-01 04:00 UTC');
    bodies.set('backup-stale', issue?.body ?? '');
  });

  it('comments when the detail changes materially', async () => {
    const { feed } = feedFor(api, clock(T0 + 26 * HOUR).now);
    const c = stale(51);
    const outcome = await feed.raise({
      ...c,
      detail: `${c.detail}\n\nThe last scheduled run failed: pg_dump could not connect.`,
    });
    expect(outcome).toMatchObject({ state: 'updated', issue: 1 });
    const [issue] = alertIssues('backup-stale');
    expect(issue?.comments.at(-1)?.body).toContain('**Changed** since last reported');
    expect(issue?.comments.at(-1)?.body).toContain('pg_dump could not connect');
  });

  it('clears: a recovered comment with the good figure, then closed as completed', async () => {
    const { feed } = feedFor(api, clock(T0 + 27 * HOUR).now);
    const outcome = await feed.clear(
      'backup-stale',
      'backup `20250302T070000Z-77ab01` finished at 2025-03-02 07:04 UTC (1 h ago) and is at r2 and b2.',
    );
    expect(outcome).toMatchObject({ state: 'closed', issue: 1 });
    const issue = api.state.issues.find((i) => i.number === 1);
    expect(issue?.state).toBe('closed');
    expect(issue?.state_reason).toBe('completed');
    const last = issue?.comments.at(-1)?.body ?? '';
    expect(last).toMatch(/^✅ Recovered: backup `20250302T070000Z-77ab01` finished/);
    expect(last).toContain('Open since 2025-03-01 04:00 UTC (1 d 3 h).');
    expect(last).toContain(RUN_URL);
    expect(await feed.clear('backup-stale', 'fine')).toEqual({
      state: 'none',
      key: 'backup-stale',
    });
  });

  it('raising again after recovery opens a new issue and leaves the old one closed', async () => {
    const c = clock(T0 + 72 * HOUR);
    const { feed } = feedFor(api, c.now);
    const outcome = await feed.raise(stale(25));
    expect(outcome.state).toBe('opened');
    expect(outcome).not.toMatchObject({ issue: 1 });
    expect(alertIssues('backup-stale').map((i) => [i.number, i.state])).toEqual([
      [1, 'closed'],
      [2, 'open'],
    ]);
    expect(alertIssues('backup-stale')[1]?.body).toContain('2025-03-04 04:00 UTC');
    expect(await feed.open()).toEqual([
      { key: 'backup-stale', number: 2, since: '2025-03-04T04:00:00.000Z' },
    ]);
  });

  it('keeps one issue per destination and lists them with open()', async () => {
    const c = clock(T0 + 73 * HOUR);
    const { feed } = feedFor(api, c.now);
    const unreachable = (name: string, error: string): AlertCondition => ({
      key: destinationUnreachableKey(name),
      title: `Backup destination ${name} is unreachable`,
      detail: `Uploads to **${name}** (\`${name}.example.com\`, bucket \`pgdr\`) failed: ${error}. The backup finished at the other destination only (degraded).`,
      lastGood: { id: '20250304T050000Z-0c1d2e', time: '2025-03-04T05:03:40Z', where: ['b2'] },
      nextStep: `Check ${name}'s status page and the \`${name}-*\` secrets (endpoint, key id, secret key, bucket). The next scheduled backup retries both destinations.`,
    });
    expect((await feed.raise(unreachable('r2', 'HTTP 403 AccessDenied'))).state).toBe('opened');
    expect((await feed.raise(unreachable('b2', 'connect ETIMEDOUT'))).state).toBe('opened');
    c.advance(HOUR);
    expect((await feed.raise(unreachable('r2', 'HTTP 403 AccessDenied'))).state).toBe('unchanged');
    const open = await feedFor(api, c.now).feed.open();
    expect(open.map((o) => o.key).sort()).toEqual([
      'backup-stale',
      'destination-unreachable:b2',
      'destination-unreachable:r2',
    ]);
    expect(alertIssues('destination-unreachable:r2')).toHaveLength(1);
    bodies.set(
      'destination-unreachable:r2',
      alertIssues('destination-unreachable:r2')[0]?.body ?? '',
    );
  });

  it('finds issues by marker across pages, never by title, and ignores pull requests', async () => {
    const t = new Date(T0).toISOString();
    for (let i = 0; i < 130; i++)
      api.state.issues.push({
        number: 100 + i,
        title: i === 0 ? 'backup-stale' : `unrelated ${i}`,
        body: i === 1 ? 'mentions pg-dr:alert key=backup-stale without the marker' : null,
        state: 'open',
        state_reason: null,
        labels: [...LABELS],
        assignees: [],
        comments: [],
        created_at: t,
        updated_at: t,
        closed_at: null,
        ...(i === 2 ? { pull_request: { url: 'x' } } : {}),
      });
    const noise = (n: number) => api.state.issues.find((i) => i.number === n);
    // A pull request that carries a marker is not an alert issue.
    const pr = noise(102);
    if (pr) pr.body = '<!-- pg-dr:alert key=low-success-rate -->';
    // An alert issue on the second page is found.
    const far = noise(229);
    if (far) far.body = '<!-- pg-dr:alert key=backup-failed -->\nOpened by an older run.';
    // Somebody renamed the real issue: still found.
    const real = alertIssues('backup-stale').find((i) => i.state === 'open');
    if (real) real.title = 'renamed by a person';

    const before = api.requests.length;
    const { feed } = feedFor(api, clock(T0 + 74 * HOUR).now);
    expect(await feed.raise(stale(27))).toMatchObject({ state: 'unchanged', issue: 2 });
    const pages = api.requests
      .slice(before)
      .filter((r) => r.method === 'GET' && r.path === `/repos/${OWNER}/${REPO}/issues`);
    expect(pages.map((r) => r.query.page ?? '1')).toEqual(['1', '2']);
    expect(pages[0]?.query.labels).toBe(LABELS.join(','));
    expect(real?.title).toBe('Backups are stale: none finished for 27 hours');
    const keys = (await feed.open()).map((o) => o.key);
    expect(keys).toContain('backup-failed');
    expect(keys).not.toContain('low-success-rate');
    api.state.issues = api.state.issues.filter((i) => i.number < 100);
  });

  it('closes duplicates left by concurrent runs, keeping the oldest', async () => {
    const { feed: a } = feedFor(api, clock(T0 + 80 * HOUR).now);
    const { feed: b } = feedFor(api, clock(T0 + 80 * HOUR).now);
    const c: AlertCondition = {
      key: 'verification-failed',
      title: 'Restore drill failed',
      detail: 'The restore drill of `20250304T050000Z-0c1d2e` failed: row counts differ.',
      lastGood: null,
      nextStep: 'Run `verify` with `verify-level: drill` by hand and read the diff.',
    };
    // Two runs that listed before either created: both open one.
    await Promise.all([a.open(), b.open()]);
    const [x, y] = await Promise.all([a.raise(c), b.raise(c)]);
    expect([x?.state, y?.state]).toEqual(['opened', 'opened']);
    expect(alertIssues('verification-failed').filter((i) => i.state === 'open')).toHaveLength(2);
    const { feed } = feedFor(api, clock(T0 + 81 * HOUR).now);
    const outcome = await feed.raise(c);
    const numbers = alertIssues('verification-failed').map((i) => i.number);
    expect(outcome).toMatchObject({ state: 'unchanged', issue: Math.min(...numbers) });
    const dup = alertIssues('verification-failed').find((i) => i.number === Math.max(...numbers));
    expect(dup?.state).toBe('closed');
    expect(dup?.state_reason).toBe('not_planned');
    expect(dup?.comments[0]?.body).toContain(`Duplicate of #${Math.min(...numbers)}`);
    expect(await feed.clear('verification-failed', 'the drill passed.')).toMatchObject({
      state: 'closed',
    });
  });
});

describe('alert feed when GitHub says no', () => {
  let api: FakeGitHubApi;
  beforeAll(async () => {
    api = await startGitHubApi({ token: TOKEN, owner: OWNER, repo: REPO });
  });
  afterAll(async () => {
    await api?.stop();
  });

  it('403 on every request: failed with a warning per call, nothing thrown, nothing skipped', async () => {
    api.failNext(403, Number.POSITIVE_INFINITY);
    const before = api.requests.length;
    const { feed, warnings } = feedFor(api, clock().now, { retries: 2 });
    const raised = await feed.raise(stale(25));
    expect(raised).toMatchObject({ state: 'failed', key: 'backup-stale' });
    expect(raised.state === 'failed' && raised.error).toContain('issues: write');
    const cleared = await feed.clear('backup-stale', 'fine');
    expect(cleared).toMatchObject({ state: 'failed' });
    expect(await feed.open()).toEqual([]);
    expect(warnings).toHaveLength(3);
    expect(warnings[0]).toContain("Alert 'backup-stale' could not be raised on acme/platform");
    expect(warnings[0]).toContain('issues: write');
    // The caller's problem, not an outage: each call tries once (403 is not retried).
    expect(api.requests.length - before).toBe(3);
    expect(api.state.issues).toHaveLength(0);
    api.clearFailures();
  });

  it.each([500, 502, 503])(
    '%i on every request: one retry budget for the feed, one warning, the rest skipped unsent',
    async (status) => {
      api.failNext(status, Number.POSITIVE_INFINITY);
      const before = api.requests.length;
      const { feed, warnings } = feedFor(api, clock().now, { retries: 2 });
      const raised = await feed.raise(stale(25));
      expect(raised).toMatchObject({ state: 'skipped', key: 'backup-stale' });
      expect(await feed.clear('verification-failed', 'fine')).toMatchObject({ state: 'skipped' });
      expect(await feed.raise(stale(26))).toMatchObject({ state: 'skipped' });
      expect(await feed.open()).toEqual([]);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(
        new RegExp(
          `^GitHub API unavailable \\(${status} .* on GET /repos/acme/platform/issues, after 2 retries\\): the rest of this run's alert work is skipped\\. The command's own result stands\\.$`,
        ),
      );
      expect(warnings[0]).not.toContain(TOKEN);
      // The first call and its 2 retries; nothing after.
      expect(api.requests.length - before).toBe(3);
      api.clearFailures();
    },
  );

  it('a failure that passes does not count against later calls', async () => {
    api.failNext(502, 1);
    const before = api.requests.length;
    const { feed, warnings } = feedFor(api, clock().now, { retries: 2, outageBudgetMs: 200 });
    expect(await feed.raise(stale(25))).toMatchObject({ state: 'opened' });
    await new Promise((r) => setTimeout(r, 400)); // past the budget: it restarted on success
    expect(await feed.clear('backup-stale', 'fine')).toMatchObject({ state: 'closed' });
    expect(warnings).toEqual([]);
    expect(api.requests[before]?.status).toBe(502);
  });

  it('hung requests: the outage budget ends the call, and the rest is skipped unsent', async () => {
    // Every request hangs 5 s; each try gives up after 0.3 s; the budget ends it all at 0.5 s.
    api.failNext(200, Number.POSITIVE_INFINITY, undefined, { delayMs: 5_000 });
    const before = api.requests.length;
    const { feed, warnings } = feedFor(api, clock().now, {
      retries: 3,
      timeoutMs: 300,
      outageBudgetMs: 500,
    });
    const raised = await feed.raise(stale(25));
    expect(raised).toMatchObject({ state: 'skipped' });
    const sent = api.requests.length - before;
    expect(sent).toBeLessThanOrEqual(2);
    expect(await feed.clear('verification-failed', 'fine')).toMatchObject({ state: 'skipped' });
    expect(await feed.open()).toEqual([]);
    expect(api.requests.length - before).toBe(sent);
    expect(warnings).toEqual([
      "GitHub API unavailable (no answer below 500 within 0.5 s): the rest of this run's alert work is skipped. The command's own result stands.",
    ]);
    api.clearFailures();
  });
});

describe('alert feed: retries, limits, tokens', () => {
  let api: FakeGitHubApi;
  beforeAll(async () => {
    api = await startGitHubApi({ token: TOKEN, owner: OWNER, repo: REPO, basePath: '/api/v3' });
  });
  afterAll(async () => {
    await api?.stop();
  });

  it('honours GITHUB_API_URL (GitHub Enterprise Server path) and retries a transient 502', async () => {
    api.failNext(502, 1);
    const warnings: string[] = [];
    const feed = alertFeedFromEnv({
      token: TOKEN,
      labels: LABELS,
      env: { GITHUB_REPOSITORY: `${OWNER}/${REPO}`, GITHUB_API_URL: api.url },
      runUrl: null,
      now: clock().now,
      log: (w) => warnings.push(w),
    });
    expect(api.url).toMatch(/\/api\/v3$/);
    // alertFeedFromEnv uses production back-off (1 s per retry): one retry is fine here.
    expect(await feed.raise(stale(25))).toMatchObject({ state: 'opened' });
    expect(api.requests[0]?.status).toBe(502);
    expect(api.requests[1]?.status).toBe(200);
    expect(warnings).toEqual([]);
    expect(api.state.issues[0]?.body).toContain('Not run from GitHub Actions.');
  });

  it('waits out a short primary rate limit', async () => {
    api.failNext(403, 1, 'PATCH', {
      message: 'API rate limit exceeded for installation ID 1.',
      headers: {
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 1),
      },
    });
    const { feed, warnings } = feedFor(api, clock(T0 + HOUR).now);
    expect(await feed.raise(stale(26))).toMatchObject({ state: 'unchanged' });
    expect(warnings.join('\n')).toMatch(/rate limit on PATCH .*retrying/);
  });

  it('aborts a hung request after the timeout', async () => {
    // Both tries of the first GET hang for 2 s; the client gives up on each after 0.2 s.
    api.failNext(200, 2, 'GET', { delayMs: 2_000 });
    const { feed, warnings } = feedFor(api, clock().now, { retries: 1, timeoutMs: 200 });
    const started = Date.now();
    const outcome = await feed.raise(stale(26));
    expect(outcome.state).toBe('skipped');
    expect(Date.now() - started).toBeLessThan(1_900);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /^GitHub API unavailable \(no answer on GET \/api\/v3\/repos\/acme\/platform\/issues: .*, after 1 retry\)/,
    );
  });

  it('a bad token: failed with a warning naming the cause', async () => {
    const { feed, warnings } = feedFor(api, clock().now, { token: 'ghp_wrongwrongwrong' });
    const outcome = await feed.raise(stale(26));
    expect(outcome).toMatchObject({ state: 'failed' });
    expect(warnings[0]).toContain('401');
    expect(warnings[0]).toContain('invalid or expired');
  });

  it('refuses to post text containing the token, and posts nothing', async () => {
    const before = api.requests.length;
    const { feed, warnings } = feedFor(api, clock().now);
    const c = stale(26);
    const outcome = await feed.raise({ ...c, detail: `${c.detail} (token=${TOKEN})` });
    expect(outcome).toMatchObject({ state: 'failed' });
    expect(warnings[0]).toContain('Refused to send');
    expect(warnings.join('\n')).not.toContain(TOKEN);
    const sent = api.requests.slice(before);
    expect(sent.filter((r) => r.method !== 'GET')).toEqual([]);
    expect(JSON.stringify(sent)).not.toContain(TOKEN);
  });

  it('no token or no repository: a disabled feed that skips with the reason', async () => {
    const noToken = alertFeedFromEnv({
      token: '',
      labels: LABELS,
      env: { GITHUB_REPOSITORY: `${OWNER}/${REPO}`, GITHUB_API_URL: api.url },
      runUrl: null,
      log: () => {},
    });
    expect(await noToken.raise(stale(1))).toEqual({
      state: 'skipped',
      key: 'backup-stale',
      reason: 'no github-token',
    });
    expect(await noToken.clear('backup-stale', 'x')).toMatchObject({ state: 'skipped' });
    expect(await noToken.open()).toEqual([]);
    const noRepo = alertFeedFromEnv({
      token: TOKEN,
      labels: LABELS,
      env: {},
      runUrl: null,
      log: () => {},
    });
    expect(await noRepo.raise(stale(1))).toMatchObject({
      state: 'skipped',
      reason: expect.stringContaining('GITHUB_REPOSITORY'),
    });
  });

  it('serves completed workflow runs for the monitor', async () => {
    api.seedRuns('backup.yml', [
      { conclusion: 'success', created_at: '2025-03-01T03:00:00Z' },
      { conclusion: 'failure', created_at: '2025-03-02T03:00:00Z' },
      { status: 'in_progress', conclusion: null, created_at: '2025-03-03T03:00:00Z' },
    ]);
    const client = createGitHubClient({ token: TOKEN, baseUrl: api.url, retries: 0 });
    const { data } = await client.rest.actions.listWorkflowRuns({
      owner: OWNER,
      repo: REPO,
      workflow_id: 'backup.yml',
      status: 'completed',
      per_page: 10,
    });
    expect(data.total_count).toBe(2);
    expect(data.workflow_runs.map((r) => r.conclusion)).toEqual(['failure', 'success']);
    await expect(
      client.rest.actions.listWorkflowRuns({ owner: OWNER, repo: REPO, workflow_id: 'nope.yml' }),
    ).rejects.toMatchObject({ status: 404 });
  });
});

describe('issue bodies, for quoting', () => {
  it('prints the bodies the tests produced', () => {
    expect(bodies.size).toBe(2);
    for (const [key, body] of bodies) console.log(`\n===== ${key} =====\n${body}\n===== end =====`);
  });
});
