/**
 * `check` (preflight) against real components: two s3rver buckets behind B2 and R2
 * profiles, a leased PostgreSQL, a loopback sshd, the local GitHub API, and a webhook and
 * a heartbeat receiver (plain HTTP servers that record what they got). A correct set-up
 * gives every row ✓, leaves nothing in either bucket and takes no backup; each broken part
 * on its own gives its own ✗ with its fix, and the other rows stay as they were.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckRow } from '../../src/check/row.js';
import { readLockBudget } from '../../src/postgres/locks.js';
import { openSession } from '../../src/postgres/session.js';
import { COUNT_BATCH } from '../../src/postgres/snapshot.js';
import { parseDatabaseUrl } from '../../src/postgres/url.js';
import { type HttpFaultProxy, startHttpFaultProxy } from '../harness/faults.js';
import { ageKeyPair, createSeededDatabase, tempDir, writeTree } from '../harness/fixtures.js';
import { type FakeGitHubApi, startGitHubApi } from '../harness/github-api.js';
import { leasePostgres } from '../harness/lease.js';
import type { PgCluster } from '../harness/postgres.js';
import { destinationInputs, type RunOutcome, runPgDr } from '../harness/run.js';
import { PRIMARY_BUCKET, type S3Pair, SECONDARY_BUCKET, startS3Pair } from '../harness/s3.js';
import { ed25519KeyPair, type KeyPair } from '../harness/ssh-keys.js';
import { foreignKnownHostsLine, type SshdServer, startSshd } from '../harness/sshd.js';
import { requireBinary } from '../harness/tools.js';

interface Received {
  readonly method: string;
  readonly path: string;
  readonly body: string;
}

/** A plain HTTP receiver: records every request, answers `status()`. */
async function receiver(): Promise<{
  server: Server;
  url: string;
  got: Received[];
  status: { code: number };
}> {
  const got: Received[] = [];
  const status = { code: 200 };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      got.push({ method: req.method ?? '', path: req.url ?? '', body });
      res.statusCode = status.code;
      res.end(status.code < 300 ? 'OK' : 'boom');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  return { server, url: `http://127.0.0.1:${port}`, got, status };
}

let pg: PgCluster;
let s3: S3Pair;
let b2: HttpFaultProxy;
let r2: HttpFaultProxy;
let gh: FakeGitHubApi;
let bastion: SshdServer;
let work: string;
let hook: Awaited<ReturnType<typeof receiver>>;
let beat: Awaited<ReturnType<typeof receiver>>;
let age: { identity: string; recipient: string };
let signing: KeyPair;
let otherSigning: KeyPair;
const token = `ghs_${randomBytes(18).toString('hex')}`;
const HOOK_SECRET = `T0/B0/${randomBytes(12).toString('hex')}`;
const BEAT_SECRET = randomBytes(16).toString('hex');
const ROLE_PASSWORD = `pw-${randomBytes(9).toString('hex')}`;

beforeAll(async () => {
  requireBinary('zstd');
  [pg, s3, bastion] = await Promise.all([
    leasePostgres({ name: 'check' }),
    startS3Pair(),
    startSshd(),
  ]);
  [b2, r2] = await Promise.all([
    startHttpFaultProxy({ target: { port: s3.primary.port }, profile: 'b2' }),
    startHttpFaultProxy({ target: { port: s3.secondary.port }, profile: 'r2' }),
  ]);
  gh = await startGitHubApi({ token, owner: 'acme', repo: 'platform' });
  gh.seedRuns('dr-backup.yml', [{ conclusion: 'success' }]);
  gh.seedRuns('dr-monitor.yml', [{ conclusion: 'success' }]);
  [hook, beat] = await Promise.all([receiver(), receiver()]);
  await createSeededDatabase(pg, 'app');
  work = await tempDir('check');
  await writeTree(join(work, 'ws'), { 'docker-compose.yml': 'services: {}\n' });
  age = await ageKeyPair();
  signing = ed25519KeyPair(work, 'signing');
  otherSigning = ed25519KeyPair(work, 'other');
}, 120_000);

afterAll(async () => {
  await Promise.all([
    pg?.stop(),
    s3?.stop(),
    b2?.stop(),
    r2?.stop(),
    gh?.stop(),
    bastion?.stop(),
    new Promise((r) => hook?.server.close(r)),
    new Promise((r) => beat?.server.close(r)),
  ]);
  if (work) await rm(work, { recursive: true, force: true });
});

const env = () => ({
  GITHUB_REPOSITORY: 'acme/platform',
  GITHUB_API_URL: gh.url,
  GITHUB_WORKSPACE: join(work, 'ws'),
});

/** A complete, correct set-up; `extra` breaks one part of it. */
function inputs(extra: Record<string, string> = {}): Record<string, string> {
  return {
    command: 'check',
    prefix: 'prod/',
    ...destinationInputs(
      { ...s3.primary, endpoint: b2.endpoint },
      { ...s3.secondary, endpoint: r2.endpoint },
    ),
    'database-url': pg.url('app'),
    'age-recipients': age.recipient,
    'age-identity': age.identity,
    'signing-key': signing.privateKey,
    'trusted-signers': signing.publicKey,
    'github-token': token,
    'backup-workflow': 'dr-backup.yml',
    'alert-webhook-url': `${hook.url}/services/${HOOK_SECRET}`,
    'heartbeat-url': `${beat.url}/ping/${BEAT_SECRET}`,
    ...extra,
  };
}

const rowsOf = (r: RunOutcome): CheckRow[] =>
  (JSON.parse(r.outputs.report as string) as { rows: CheckRow[] }).rows;

/** The one row whose name matches, failing the test when there is none or several. */
function row(r: RunOutcome, name: RegExp): CheckRow {
  const found = rowsOf(r).filter((x) => name.test(x.check));
  expect(found.map((x) => x.check)).toHaveLength(1);
  return found[0] as CheckRow;
}

/** Every row failed is one of `names`, each of them failed, and the step failed. */
function failsOnly(r: RunOutcome, ...names: RegExp[]): CheckRow[] {
  const failed = rowsOf(r).filter((x) => x.state === 'fail');
  for (const f of failed)
    expect(
      names.some((n) => n.test(f.check)),
      f.check,
    ).toBe(true);
  for (const n of names)
    expect(
      failed.some((f) => n.test(f.check)),
      String(n),
    ).toBe(true);
  expect(r.outputs.status).toBe('failed');
  expect(r.failed).toMatch(/check\(s\) failed/);
  for (const f of failed) expect(f.fix, f.check).toBeTruthy();
  return failed;
}

function noSecretIn(r: RunOutcome): void {
  const text = `${r.log}\n${JSON.stringify(r.outputs)}\n${JSON.stringify(r.tables)}`;
  for (const s of [
    HOOK_SECRET,
    BEAT_SECRET,
    token,
    pg.password,
    ROLE_PASSWORD,
    s3.primary.secretAccessKey,
  ])
    if (s.length >= 6) expect(text).not.toContain(s);
  expect(text).not.toContain('AGE-SECRET-KEY-1');
  expect(text).not.toContain('PRIVATE KEY');
}

async function bucketKeys(): Promise<string[][]> {
  return Promise.all([
    s3.primary.listKeys(PRIMARY_BUCKET),
    s3.secondary.listKeys(SECONDARY_BUCKET),
  ]);
}

describe('a correct set-up', () => {
  it('every row ✓, exit 0; nothing left in either bucket, no backup taken, list unchanged', async () => {
    // One real backup first, so "list still shows what it showed" means something.
    const backup = await runPgDr(
      { ...inputs({ command: 'backup' }), 'backup-workflow': '' },
      env(),
    );
    expect(backup.failed).toBeUndefined();
    const before = await bucketKeys();
    const listed = await runPgDr({ ...inputs({ command: 'list' }) }, env());
    hook.got.length = 0;
    beat.got.length = 0;
    b2.requests.length = 0;
    r2.requests.length = 0;

    const r = await runPgDr(inputs(), env());
    expect(r.failed).toBeUndefined();
    expect(r.outputs.status).toBe('ok');
    const rows = rowsOf(r);
    expect(rows.filter((x) => x.state !== 'ok').map((x) => `${x.check}: ${x.detail}`)).toEqual([]);
    expect(rows.map((x) => x.check)).toEqual([
      `b2: bucket "pgdr-primary" at ${new URL(b2.endpoint).host}`,
      'b2: write, read and delete a 5,243,904-byte probe (2 parts)',
      `r2: bucket "pgdr-secondary" at ${new URL(r2.endpoint).host}`,
      'r2: write, read and delete a 5,243,904-byte probe (2 parts)',
      'database: connection and server version',
      'database: pg_dump and pg_restore',
      'database: the role can read what pg_dump reads',
      'database: row security',
      'database: roles (globals) the backup records',
      'database: lock budget',
      'age: encryption keys',
      'signing key and trusted signers',
      'GitHub: the token can read issues (alerts)',
      "GitHub: 'backup-workflow' found",
      "alert webhook ('alert-webhook-url')",
      "heartbeat ('heartbeat-url')",
    ]);
    // The probe went the way a backup's objects go: a multipart upload of two parts.
    for (const p of [b2, r2]) {
      const lines = p.requests.map(
        (q) =>
          `${q.method} ${q.url.replace(/\?.*/, '')}${/[?&]uploads/.test(q.url) ? '?uploads' : ''}${/[?&]partNumber=/.test(q.url) ? '?part' : ''}${/[?&]uploadId=/.test(q.url) && q.method === 'POST' ? '?complete' : ''}`,
      );
      expect(lines.filter((l) => /^POST .*\?uploads$/.test(l))).toHaveLength(1);
      expect(lines.filter((l) => /^PUT .*\?part$/.test(l))).toHaveLength(2);
      expect(lines.filter((l) => /\?complete$/.test(l))).toHaveLength(1);
      expect(
        p.requests.every((q) => q.injected === null),
        'no B2/R2 quirk refused a request',
      ).toBe(true);
    }
    expect(await bucketKeys()).toEqual(before);
    const again = await runPgDr({ ...inputs({ command: 'list' }) }, env());
    expect(again.outputs.report).toEqual(listed.outputs.report);
    // The webhook got one labelled test message; the heartbeat only /log (its state unchanged).
    expect(hook.got).toHaveLength(1);
    expect(JSON.parse(hook.got[0]?.body ?? '{}').text).toBe(
      'pg-dr check: test message from acme/platform, nothing is wrong.',
    );
    expect(beat.got.map((g) => g.path)).toEqual([`/ping/${BEAT_SECRET}/log`]);
    expect(r.tables[0]?.title).toMatch(/^pg-dr check: ✓ no check failed \(16 rows\)/);
    noSecretIn(r);
  });

  it('reaches the database through the SSH tunnel when ssh-* are set', async () => {
    const r = await runPgDr(
      inputs({
        'ssh-host': `${bastion.host}:${bastion.port}`,
        'ssh-user': bastion.user,
        'ssh-private-key': bastion.privateKey,
        'ssh-known-hosts': bastion.knownHosts,
      }),
      env(),
    );
    expect(r.failed).toBeUndefined();
    expect(row(r, /connection/).detail).toMatch(/through the SSH tunnel via/);
    expect(row(r, /lock budget/).state).toBe('ok');
  });

  it('a bastion whose host key is not the one pinned: the connection ✗ names the SSH inputs', async () => {
    const r = await runPgDr(
      inputs({
        'ssh-host': `${bastion.host}:${bastion.port}`,
        'ssh-user': bastion.user,
        'ssh-private-key': bastion.privateKey,
        'ssh-known-hosts': await foreignKnownHostsLine(bastion.host, bastion.port),
      }),
      env(),
    );
    const [f] = failsOnly(r, /connection/);
    expect(f?.detail).toMatch(/^SSH tunnel via .*host key/i);
    expect(f?.fix).toMatch(/'ssh-known-hosts'/);
    expect(row(r, /lock budget/)).toMatchObject({ state: 'skipped' });
    noSecretIn(r);
  });

  it('skips (⚪) what is not set, naming the input, and still passes', async () => {
    const r = await runPgDr(
      {
        command: 'check',
        prefix: 'prod/',
        ...destinationInputs(s3.primary, null),
        'github-token': '',
      },
      env(),
    );
    expect(r.failed).toBeUndefined();
    const states = rowsOf(r).map((x) => `${x.state} ${x.check}`);
    expect(states.filter((s) => s.startsWith('ok'))).toHaveLength(2);
    expect(row(r, /connection/)).toMatchObject({
      state: 'skipped',
      detail: "'database-url' is not set",
    });
    expect(row(r, /^age/).detail).toMatch(/'age-recipients'/);
    expect(row(r, /webhook/).detail).toMatch(/'alert-webhook-url' is not set/);
    expect(row(r, /heartbeat/).detail).toMatch(/'heartbeat-url' is not set/);
    expect(row(r, /backup-workflow/).detail).toMatch(/'backup-workflow' is not set/);
  });
});

describe('a leftover probe', () => {
  it('is never a backup nor an untrusted object for list, monitor and prune', async () => {
    const key = 'leftover/pg-dr-check/20261130T120000Z-abcdef/probe.bin';
    await Promise.all([
      s3.primary.putObject(PRIMARY_BUCKET, key, randomBytes(64)),
      s3.secondary.putObject(SECONDARY_BUCKET, key, randomBytes(64)),
    ]);
    const base = {
      prefix: 'leftover/',
      ...destinationInputs(s3.primary, s3.secondary),
      'trusted-signers': signing.publicKey,
      'github-token': '',
    };
    const list = await runPgDr({ command: 'list', ...base }, env());
    expect(list.failed).toBeUndefined();
    expect((list.outputs.report as string).includes('pg-dr-check')).toBe(false);
    const monitor = await runPgDr({ command: 'monitor', ...base }, env());
    const rows = JSON.parse(monitor.outputs.report as string) as {
      findings?: { key: string; state: string }[];
    };
    expect(JSON.stringify(rows)).not.toContain('pg-dr-check');
    expect(monitor.log).not.toContain('pg-dr-check');
    const prune = await runPgDr(
      { command: 'prune', ...base, 'keep-last': '1', 'dry-run': 'true' },
      env(),
    );
    expect(prune.failed).toBeUndefined();
    expect(`${prune.outputs.report}${prune.log}`).not.toContain('pg-dr-check');
    expect(await s3.primary.listKeys(PRIMARY_BUCKET, 'leftover/')).toEqual([key]);
    // And check counts it (and leaves it alone) instead of tripping over it.
    const c = await runPgDr({ ...inputs({ prefix: 'leftover/' }) }, env());
    expect(c.failed).toBeUndefined();
    expect(row(c, /^b2: bucket/).detail).toMatch(
      /1 probe object\(s\) left by an interrupted check/,
    );
  });
});

describe('each broken part on its own', () => {
  it('a wrong access key id: that destination ✗, naming the input', async () => {
    const r = await runPgDr(inputs({ 'secondary-access-key-id': 'NOTAKEY123' }), env());
    const [f] = failsOnly(r, /^r2: bucket/);
    expect(row(r, /^r2: write/)).toMatchObject({ state: 'skipped' });
    expect(f?.detail).toMatch(/ListObjectsV2 failed: InvalidAccessKeyId/);
    expect(f?.fix).toMatch(/set 'secondary-access-key-id'/);
    noSecretIn(r);
  });

  it('a bucket that does not exist', async () => {
    const r = await runPgDr(inputs({ 'primary-bucket': 'no-such-bucket' }), env());
    const [f] = failsOnly(r, /^b2: bucket/);
    expect(f?.detail).toMatch(/NoSuchBucket/);
    expect(f?.fix).toMatch(/Create the bucket "no-such-bucket".*or set 'primary-bucket'/);
  });

  it('a destination that refuses writes: the operation named, the permission to add', async () => {
    b2.failRequests({ status: 403, match: /^(PUT|POST) / });
    try {
      const r = await runPgDr(inputs(), env());
      const [f] = failsOnly(r, /^b2: write/);
      expect(row(r, /^b2: bucket/).state).toBe('ok');
      expect(f?.detail).toMatch(/^write: CreateMultipartUpload failed: AccessDenied \(HTTP 403\)/);
      expect(f?.fix).toMatch(/may not CreateMultipartUpload.*s3:PutObject/);
    } finally {
      b2.clearFailures();
    }
    expect(await s3.primary.listKeys(PRIMARY_BUCKET, 'prod/pg-dr-check/')).toEqual([]);
  });

  it('a wrong database password, and a host nothing listens on', async () => {
    const wrong = new URL(pg.url('app'));
    wrong.password = 'not-the-password';
    const r = await runPgDr(inputs({ 'database-url': wrong.toString() }), env());
    const [f] = failsOnly(r, /connection/);
    expect(f?.detail).toMatch(/password authentication failed/);
    expect(f?.fix).toMatch(/user and password in 'database-url'/);
    expect(row(r, /lock budget/)).toMatchObject({ state: 'skipped' });
    noSecretIn(r);

    const dead = new URL(pg.url('app'));
    dead.port = '9';
    const d = await runPgDr(inputs({ 'database-url': dead.toString() }), env());
    const [g] = failsOnly(d, /connection/);
    expect(g?.detail).toMatch(/refused/i);
    expect(g?.fix).toMatch(/host and port in 'database-url'/);
  });

  it('a role without SELECT on one table, and a table whose row security it cannot bypass', async () => {
    await pg.query('postgres', `CREATE ROLE checker LOGIN PASSWORD '${ROLE_PASSWORD}'`);
    await pg.createDatabase('priv');
    await pg.query(
      'priv',
      `CREATE TABLE public.open_table (id int); CREATE TABLE public.secret_table (id int);
       CREATE TABLE public.tenant_rows (id int, tenant text);
       ALTER TABLE public.tenant_rows ENABLE ROW LEVEL SECURITY;
       GRANT SELECT ON public.open_table, public.tenant_rows TO checker`,
    );
    const url = new URL(pg.url('priv'));
    url.username = 'checker';
    url.password = ROLE_PASSWORD;
    const r = await runPgDr(inputs({ 'database-url': url.toString() }), env());
    const failed = failsOnly(r, /can read what pg_dump reads/, /row security/);
    expect(failed[0]?.detail).toMatch(/1 relation\(s\) without SELECT: public\.secret_table/);
    expect(failed[0]?.fix).toMatch(/^GRANT SELECT ON public\.secret_table TO checker /);
    expect(failed[1]?.detail).toMatch(/public\.tenant_rows/);
    expect(failed[1]?.fix).toMatch(/ALTER ROLE checker BYPASSRLS/);
    // Not a superuser: no password hashes — a warning, as the backup gives, not a ✗.
    expect(row(r, /roles/).state).toBe('warn');
    noSecretIn(r);

    // Granted and bypassing: both rows turn ✓.
    await pg.query('priv', 'GRANT SELECT ON public.secret_table TO checker');
    await pg.query('postgres', 'ALTER ROLE checker BYPASSRLS');
    const fixed = await runPgDr(inputs({ 'database-url': url.toString() }), env());
    expect(fixed.failed).toBeUndefined();

    // A large object it may not read: pg_dump reads every one.
    await pg.query('priv', 'SELECT lo_create(0)');
    const lo = await runPgDr(inputs({ 'database-url': url.toString() }), env());
    const [l] = failsOnly(lo, /can read what pg_dump reads/);
    expect(l?.detail).toMatch(/role checker: 1 large object\(s\) it may not read/);
  });

  it('a lock budget too small for the tables pg_dump would lock', async () => {
    await pg.createDatabase('crowded');
    const session = await openSession(parseDatabaseUrl('database-url', pg.url('crowded')));
    const [{ v } = { v: 0 }] = await session.rows<{ v: number }>(
      "SELECT current_setting('server_version_num')::int AS v",
    );
    const empty = await readLockBudget(session, v, COUNT_BATCH);
    await session.close();
    // Just past the limit: the catalogs (160) and one count batch (200) come on top.
    const tables = empty.limit - 160 - 200 + 20;
    for (let i = 0; i < tables; i += 500)
      await pg.query(
        'crowded',
        `DO $$ BEGIN FOR i IN ${i}..${Math.min(i + 499, tables - 1)} LOOP
           EXECUTE format('CREATE TABLE t_%s (id int)', i);
         END LOOP; END $$`,
      );
    const r = await runPgDr(inputs({ 'database-url': pg.url('crowded') }), env());
    const [f] = failsOnly(r, /lock budget/);
    expect(f?.detail).toMatch(/Not enough lock slots for pg_dump/);
    expect(f?.fix).toMatch(/Raise max_locks_per_transaction to \d+/);
    await pg.query('postgres', 'DROP DATABASE crowded');
  }, 180_000);

  it('an age identity that opens none of the recipients', async () => {
    const other = await ageKeyPair();
    const r = await runPgDr(inputs({ 'age-identity': other.identity }), env());
    const [f] = failsOnly(r, /^age/);
    expect(f?.detail).toMatch(/opens none of the 1 recipient/);
    expect(f?.fix).toMatch(/The pair does not match/);
    noSecretIn(r);
  });

  it('a passphrase: a round trip', async () => {
    const r = await runPgDr(
      inputs({ 'age-recipients': '', 'age-identity': '', passphrase: 'correct horse battery' }),
      env(),
    );
    expect(r.failed).toBeUndefined();
    expect(row(r, /^age/).detail).toMatch(/passphrase: a probe encrypted and decrypted/);
  });

  it('a signing key that is not among the trusted signers', async () => {
    const r = await runPgDr(inputs({ 'trusted-signers': otherSigning.publicKey }), env());
    const [f] = failsOnly(r, /^signing/);
    expect(f?.detail).toContain(signing.publicKey.split(' ').slice(0, 2).join(' '));
    expect(f?.fix).toMatch(/Add ".*" as a line of 'trusted-signers'/);
    noSecretIn(r);
  });

  it('a token the API refuses (403)', async () => {
    gh.failNext(403, Number.POSITIVE_INFINITY, /\/issues/);
    try {
      const r = await runPgDr(inputs(), env());
      const [f] = failsOnly(r, /can read issues/);
      expect(f?.detail).toMatch(/HTTP 403/);
      expect(f?.fix).toMatch(/permissions: issues: write/);
      expect(row(r, /backup-workflow/).state).toBe('ok');
    } finally {
      gh.clearFailures();
    }
  });

  it('a mistyped backup-workflow: the files found are listed', async () => {
    const r = await runPgDr(inputs({ 'backup-workflow': 'dr-bakup.yml' }), env());
    const [f] = failsOnly(r, /backup-workflow/);
    expect(f?.detail).toMatch(/no workflow "dr-bakup.yml" in acme\/platform/);
    expect(f?.fix).toBe(
      "Set 'backup-workflow' to the backup workflow's file name; found: dr-backup.yml, dr-monitor.yml.",
    );
  });

  it('a webhook and a heartbeat receiver answering 500: the status, never the URL', async () => {
    hook.status.code = 500;
    beat.status.code = 500;
    hook.got.length = 0;
    beat.got.length = 0;
    try {
      const r = await runPgDr(inputs(), env());
      const [w, h] = failsOnly(r, /webhook/, /heartbeat/);
      expect(w?.detail).toMatch(/not delivered: HTTP 500/);
      expect(h?.detail).toMatch(/not reachable: HTTP 500/);
      noSecretIn(r);
      // Each got what it should, retried once: the labelled test message, and /log only.
      expect(hook.got.length).toBeGreaterThanOrEqual(1);
      for (const g of hook.got)
        expect(JSON.parse(g.body).text).toBe(
          'pg-dr check: test message from acme/platform, nothing is wrong.',
        );
      expect(beat.got.length).toBeGreaterThanOrEqual(1);
      expect(beat.got.every((g) => g.path === `/ping/${BEAT_SECRET}/log`)).toBe(true);
    } finally {
      hook.status.code = 200;
      beat.status.code = 200;
    }
  });

  it('a heartbeat service without /log (404) is ✓: reachable, nothing sent that changes its state', async () => {
    beat.status.code = 404;
    try {
      const r = await runPgDr(inputs(), env());
      expect(r.failed).toBeUndefined();
      expect(row(r, /heartbeat/).detail).toBe(
        'reachable; the service has no /log endpoint, nothing sent that changes its state',
      );
    } finally {
      beat.status.code = 200;
    }
  });

  it('a webhook and a heartbeat that never answer: ✗ "no answer in time" with the default bounds, the rest unaffected', async () => {
    const hung = createServer(() => {
      // Reads the request, never answers.
    });
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(hung.address() as { port: number }).port}`;
    try {
      const r = await runPgDr(
        inputs({
          'alert-webhook-url': `${url}/hook/${HOOK_SECRET}`,
          'heartbeat-url': `${url}/${BEAT_SECRET}`,
        }),
        env(),
      );
      const [w, h] = failsOnly(r, /webhook/, /heartbeat/);
      expect(w?.detail).toBe('the test message was not delivered: no answer in time');
      expect(h?.detail).toBe('not reachable: no answer in time');
      noSecretIn(r);
    } finally {
      hung.closeAllConnections();
      await new Promise((r) => hung.close(r));
    }
  }, 60_000);

  it('an endpoint nothing listens on: that destination ✗, naming the endpoint input', async () => {
    const r = await runPgDr(inputs({ 'primary-endpoint': 'http://127.0.0.1:9' }), env());
    const [f] = failsOnly(r, /^b2: bucket/);
    expect(f?.detail).toMatch(/^ListObjectsV2 failed: .*ECONNREFUSED/);
    expect(f?.fix).toMatch(/^Check 'primary-endpoint' \(127\.0\.0\.1:9\)/);
    expect(row(r, /^b2: write/)).toMatchObject({ state: 'skipped' });
  }, 120_000);

  it('a database that accepts the connection and never answers: ✗ within the default connect_timeout', async () => {
    const sockets: Socket[] = [];
    const silent = createNetServer((socket) => {
      // Accepts, never speaks.
      sockets.push(socket);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const dead = new URL(pg.url('app'));
    dead.port = String((silent.address() as { port: number }).port);
    try {
      const r = await runPgDr(inputs({ 'database-url': dead.toString() }), env());
      const [f] = failsOnly(r, /connection/);
      expect(f?.detail).toMatch(/: no answer within 20 s \(connect_timeout\)$/);
      expect(f?.fix).toMatch(/host and port in 'database-url'/);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((r) => silent.close(r));
    }
  }, 120_000);

  it('a GitHub API that answers 500 to everything: ✗ "GitHub API unavailable" with the real back-off, not a hang', async () => {
    gh.failNext(500, Number.POSITIVE_INFINITY);
    try {
      const r = await runPgDr(inputs(), env());
      const failed = failsOnly(r, /can read issues/, /backup-workflow/);
      for (const f of failed) expect(f.detail).toMatch(/^GitHub API unavailable/);
      expect(failed[0]?.fix).toMatch(/Run the check again later/);
    } finally {
      gh.clearFailures();
    }
  }, 120_000);
});
