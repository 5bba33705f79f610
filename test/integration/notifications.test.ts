/**
 * Reaching a person outside GitHub issues. `heartbeat-url`: a dead man's switch,
 * healthchecks.io style — a local HTTP receiver stands for the service: it sees `/start`,
 * then `<url>` or `/fail`, in that order; a ping that fails is retried once and is only a
 * warning. `alert-webhook-url`: a chat webhook — the same receiver sees one POST when an
 * alert opens and one when it recovers, none while it persists. The URLs (secrets) are
 * never in the log or the outputs.
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { pingUrl } from '../../src/alerts/heartbeat.js';
import { webhookPayload } from '../../src/alerts/webhook.js';
import { ageKeyPair, createSeededDatabase, tempDir, writeTree } from '../harness/fixtures.js';
import { type FakeGitHubApi, startGitHubApi } from '../harness/github-api.js';
import { leasePostgres } from '../harness/lease.js';
import type { PgCluster } from '../harness/postgres.js';
import { destinationInputs, type RunOutcome, runPgDr } from '../harness/run.js';
import { type S3Pair, startS3Pair } from '../harness/s3.js';
import { requireBinary } from '../harness/tools.js';

interface Ping {
  readonly method: string;
  readonly path: string;
  readonly body: string;
}

let pg: PgCluster;
let s3: S3Pair;
let work: string;
let recipient: string;
let receiver: Server;
let port: number;
let pings: Ping[] = [];
/** What the receiver answers. */
let answer: 'ok' | 'error' = 'ok';
const CHECK = randomUUID();

beforeAll(async () => {
  requireBinary('zstd');
  [pg, s3] = await Promise.all([leasePostgres({ name: 'heartbeat' }), startS3Pair()]);
  await createSeededDatabase(pg, 'app');
  work = await tempDir('heartbeat');
  await writeTree(join(work, 'ws'), { 'docker-compose.yml': 'services: {}\n' });
  ({ recipient } = await ageKeyPair());
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      pings.push({ method: req.method ?? '', path: req.url ?? '', body });
      res.statusCode = answer === 'ok' ? 200 : 500;
      res.end(answer === 'ok' ? 'OK' : 'boom');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  port = (receiver.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise((r) => receiver?.close(r));
  await Promise.all([pg?.stop(), s3?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

beforeEach(() => {
  pings = [];
  answer = 'ok';
});

const url = (p = port) => `http://127.0.0.1:${p}/ping/${CHECK}`;

function backup(extra: Record<string, string> = {}) {
  return runPgDr(
    {
      command: 'backup',
      'database-url': pg.url('app'),
      'age-recipients': recipient,
      'heartbeat-url': url(),
      ...destinationInputs(s3.primary, s3.secondary),
      ...extra,
    },
    { GITHUB_WORKSPACE: join(work, 'ws') },
  );
}

function expectNoSecret(run: RunOutcome) {
  const seen = [run.log, JSON.stringify(run.outputs), run.failed ?? ''].join('\n');
  expect(seen).not.toContain(CHECK);
}

describe('heartbeat-url', () => {
  it('pings /start, then the URL itself, when the backup succeeds', async () => {
    const run = await backup();
    expect(run.failed).toBeUndefined();
    expect(run.outputs.status).toBe('ok');
    expect(pings.map((p) => `${p.method} ${p.path}`)).toEqual([
      `POST /ping/${CHECK}/start`,
      `POST /ping/${CHECK}`,
    ]);
    expect(run.log).not.toMatch(/heartbeat/);
    expectNoSecret(run);
  });

  it('pings /start, then /fail with the reason, when the backup fails', async () => {
    const run = await backup({ 'database-url': pg.url('no_such_database') });
    expect(run.failed).toBeDefined();
    expect(pings.map((p) => p.path)).toEqual([`/ping/${CHECK}/start`, `/ping/${CHECK}/fail`]);
    expect(pings[1]?.body).toMatch(/^pg-dr backup failed: .*no_such_database/);
    expectNoSecret(run);
  });

  it('retries a failed ping once, warns with the status and never the URL, and the backup stands', async () => {
    answer = 'error';
    const run = await backup();
    expect(run.failed).toBeUndefined();
    expect(run.outputs.status).toBe('ok');
    expect(pings.map((p) => p.path)).toEqual([
      `/ping/${CHECK}/start`,
      `/ping/${CHECK}/start`,
      `/ping/${CHECK}`,
      `/ping/${CHECK}`,
    ]);
    expect(run.log).toContain('heartbeat: the start ping was not delivered (HTTP 500)');
    expect(run.log).toContain('heartbeat: the success ping was not delivered (HTTP 500)');
    expectNoSecret(run);
  });

  it('a receiver that is down is a warning, not a failure', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const dead = (closed.address() as { port: number }).port;
    await new Promise((r) => closed.close(r));
    const run = await backup({ 'heartbeat-url': url(dead) });
    expect(run.failed).toBeUndefined();
    expect(run.log).toContain(
      'heartbeat: the success ping was not delivered (could not connect (ECONNREFUSED))',
    );
    expectNoSecret(run);
  });

  it('refuses a URL that is not http(s), naming the input and not the value', async () => {
    const secret = `ftp://hc.example/${CHECK}`;
    const run = await backup({ 'heartbeat-url': secret });
    expect(run.failed).toMatch(/'heartbeat-url'.*http:\/\/ or https:\/\//);
    expect(pings).toEqual([]);
    expectNoSecret(run);
  });

  it('adds /start and /fail to the path and keeps a query', () => {
    expect(pingUrl('https://hc-ping.com/abc/', 'start')).toBe('https://hc-ping.com/abc/start');
    expect(pingUrl('https://hc-ping.com/abc', 'success')).toBe('https://hc-ping.com/abc');
    expect(pingUrl('https://x.example/p/key/slug?create=1', 'fail')).toBe(
      'https://x.example/p/key/slug/fail?create=1',
    );
  });
});

describe('alert-webhook-url', () => {
  const TOKEN = 'ghs_webhooktest';
  let api: FakeGitHubApi;

  beforeAll(async () => {
    api = await startGitHubApi({ token: TOKEN, owner: 'acme', repo: 'platform' });
  });
  afterAll(async () => {
    await api?.stop();
  });

  const hook = () => `http://127.0.0.1:${port}/hooks/${CHECK}`;
  const withFeed = (extra: Record<string, string>) =>
    runPgDr(
      {
        command: 'backup',
        'database-url': pg.url('app'),
        'age-recipients': recipient,
        'github-token': TOKEN,
        'alert-webhook-url': hook(),
        ...destinationInputs(s3.primary, s3.secondary),
        ...extra,
      },
      {
        GITHUB_WORKSPACE: join(work, 'ws'),
        GITHUB_REPOSITORY: 'acme/platform',
        GITHUB_API_URL: api.url,
      },
    );
  const hooks = () =>
    pings
      .filter((p) => p.path === `/hooks/${CHECK}`)
      .map((p) => JSON.parse(p.body) as { text: string; content: string });

  it('posts when an alert opens and when it recovers, not while it persists', async () => {
    const failing = { 'database-url': pg.url('no_such_database') };
    const first = await withFeed(failing);
    expect(first.failed).toBeDefined();
    expect(hooks()).toHaveLength(1);
    const [opened] = hooks();
    expect(opened?.text).toMatch(/^🔴 pg-dr alert: .*— http/);
    expect(opened?.content).toBe(opened?.text);
    // The same failure again: the issue is updated quietly, no message.
    await withFeed(failing);
    expect(hooks()).toHaveLength(1);
    const ok = await withFeed({});
    expect(ok.failed).toBeUndefined();
    expect(hooks()).toHaveLength(2);
    expect(hooks()[1]?.text).toMatch(/^✅ pg-dr recovered \(backup-failed\): /);
    for (const r of [first, ok]) expectNoSecret(r);
  });

  it('assigns a new alert issue and names the mentions once, in its first comment only', async () => {
    const failing = {
      'database-url': pg.url('no_such_database'),
      'alert-assignees': 'alice, @bob',
      'alert-mentions': '@acme/oncall, carol',
      'alert-labels': 'pg-dr-mentions',
    };
    await withFeed(failing);
    const issue = api.state.issues.find(
      (i) => i.state === 'open' && i.labels.includes('pg-dr-mentions'),
    );
    expect(issue?.assignees).toEqual(['alice', 'bob']);
    expect(issue?.comments.map((c) => c.body)).toEqual([
      expect.stringMatching(
        /^@acme\/oncall @carol: a new pg-dr alert needs a person — pg-dr: the backup of no_such_database failed$/,
      ),
    ]);
    // The same failure again: the issue is updated, nobody is named again.
    await withFeed(failing);
    expect(issue?.comments.filter((c) => c.body.includes('@carol'))).toHaveLength(1);
    await withFeed({ 'alert-labels': 'pg-dr-mentions' });
    expect(issue?.state).toBe('closed');
  });

  it('refuses an assignee or a mention that is not a GitHub login or team', async () => {
    const bad = await withFeed({ 'alert-assignees': 'alice, not a login' });
    expect(bad.failed).toMatch(/Invalid 'alert-assignees': "not a login" is not a GitHub login/);
    const team = await withFeed({ 'alert-assignees': 'acme/oncall' });
    expect(team.failed).toMatch(/Invalid 'alert-assignees'/);
    const mention = await withFeed({ 'alert-mentions': '@acme/on call' });
    expect(mention.failed).toMatch(/Invalid 'alert-mentions': "@acme\/on call"/);
  });

  it('without a working issue feed, still posts the alert, and a failed delivery is a warning', async () => {
    answer = 'error';
    const run = await runPgDr(
      {
        command: 'backup',
        'database-url': pg.url('no_such_database'),
        'age-recipients': recipient,
        'alert-webhook-url': hook(),
        ...destinationInputs(s3.primary, s3.secondary),
      },
      { GITHUB_WORKSPACE: join(work, 'ws') },
    );
    expect(run.failed).toBeDefined();
    // Retried once.
    expect(hooks()).toHaveLength(2);
    expect(hooks()[0]?.text).toMatch(/no GitHub issue: skipped/);
    expect(run.log).toContain('alert webhook: not delivered (HTTP 500)');
    expectNoSecret(run);
  });

  it('one payload for Slack and Discord: text and content, markup and mentions defused', () => {
    const body = JSON.parse(webhookPayload('db <!channel> @everyone & co')) as Record<
      string,
      unknown
    >;
    expect(body.text).toBe('db &lt;!channel&gt; @everyone &amp; co');
    expect(body.content).toBe(body.text);
    expect(body.allowed_mentions).toEqual({ parse: [] });
  });
});
