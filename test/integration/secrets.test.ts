/**
 * No secret leaks, anywhere a person or a machine can read: the suite's scenarios (backup,
 * verify with decrypt and a restore drill, restore, list, prune, monitor, failing backups,
 * a backup through an SSH tunnel) run with distinctive secret values — a database password
 * full of URL-special characters, two S3 secret keys (s3rver checks only the access key id,
 * so any secret signs), a passphrase, an age secret key, an SSH private key, a GitHub
 * token — and every place is scanned for each secret, raw, URL-encoded and line by line:
 *
 * - stdout and stderr: the built action (`dist/index.js`, as the runner starts it, with
 *   INPUT_* variables) for the backups, the built CLI (`dist/cli/index.js`) for a list and
 *   a failing backup, the log of every in-process run — outside `::add-mask::` lines;
 * - the job summary file and the GITHUB_OUTPUT file of the action runs, and the outputs,
 *   failure message and summary tables (as text and as markdown) of the in-process runs;
 * - every manifest and verification record in both buckets;
 * - the audit files (manifest.json, report.json), captured from disk by a stand-in for the
 *   Actions results service the moment the artifact upload starts;
 * - every issue, comment and request body the local GitHub API received.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SummaryTable, tableToMarkdown, tableToText } from '../../src/report/host.js';
import { createSeededDatabase, tempDir } from '../harness/fixtures.js';
import { type FakeGitHubApi, startGitHubApi } from '../harness/github-api.js';
import { leasePostgres } from '../harness/lease.js';
import { requireBuilt } from '../harness/node.js';
import type { PgCluster } from '../harness/postgres.js';
import { destinationInputs, type RunOutcome, runPgDr } from '../harness/run.js';
import { PRIMARY_BUCKET, type S3Pair, SECONDARY_BUCKET, startS3Pair } from '../harness/s3.js';
import { type SshdServer, startSshd } from '../harness/sshd.js';
import { requireBinary } from '../harness/tools.js';

const OWNER = 'acme';
const REPO = 'platform';
const DB_USER = 'pgdr_secret_user';

/** The secrets, by name; filled in beforeAll (the age key and the SSH key are generated). */
const SECRETS = {
  'database password': `Db#SECRET/pw:${randomBytes(4).toString('hex')}@%?&=+ ü`,
  'primary S3 secret key': `S3primarySECRET${randomBytes(12).toString('hex')}`,
  'secondary S3 secret key': `S3secondarySECRET/${randomBytes(12).toString('base64url')}`,
  passphrase: `correct horse SECRET battery ${randomBytes(4).toString('hex')}`,
  'GitHub token': `ghs_SECRETtoken${randomBytes(12).toString('hex')}`,
  'age secret key': '',
  'SSH private key': '',
  // Set once the receiver listens: http://127.0.0.1:<port>/…SECRET… (the path is the secret).
  'heartbeat URL': '',
  'webhook URL': '',
};
type SecretName = keyof typeof SECRETS;

let pg: PgCluster;
let s3: S3Pair;
let api: FakeGitHubApi;
let sshd: SshdServer;
let results: ResultsService;
/** Stands for healthchecks.io and a chat webhook; answers 500, so the failure paths log too. */
let receiver: Server;
const received: string[] = [];
let work: string;
let workspace: string;
let runnerTemp: string;
let recipient: string;
let ageBackupId: string;
let passphraseBackupId: string;

/** Everything scanned: where it came from, and its text. */
const places: { where: string; text: string }[] = [];
function scanLater(where: string, text: string | undefined): void {
  if (text !== undefined && text !== '') places.push({ where, text });
}

beforeAll(async () => {
  requireBinary('zstd');
  [pg, s3, sshd] = await Promise.all([
    leasePostgres({ name: 'secrets' }),
    startS3Pair(),
    startSshd(),
  ]);
  SECRETS['SSH private key'] = sshd.privateKey;
  const identity = await generateX25519Identity();
  SECRETS['age secret key'] = identity;
  recipient = await identityToRecipient(identity);
  api = await startGitHubApi({ token: SECRETS['GitHub token'], owner: OWNER, repo: REPO });
  const literal = SECRETS['database password'].replaceAll("'", "''");
  await pg.query('postgres', `CREATE ROLE ${DB_USER} LOGIN SUPERUSER PASSWORD '${literal}'`);
  await createSeededDatabase(pg, 'app');
  work = await tempDir('secrets');
  workspace = join(work, 'ws');
  runnerTemp = join(work, 'runner-temp');
  await mkdir(join(workspace, 'deploy'), { recursive: true });
  await mkdir(runnerTemp, { recursive: true });
  await writeFile(join(workspace, 'docker-compose.yml'), 'services:\n  db:\n    image: postgres\n');
  results = await startResultsService([runnerTemp]);
  receiver = createServer((req, res) => {
    received.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => {
      res.statusCode = 500;
      res.end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  const at = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
  SECRETS['heartbeat URL'] = `${at}/ping/SECRET${randomBytes(12).toString('hex')}`;
  SECRETS['webhook URL'] = `${at}/hooks/SECRET/${randomBytes(12).toString('base64url')}`;
  // @actions/artifact reads these from process.env (the in-process runs share it).
  process.env.ACTIONS_RUNTIME_TOKEN = results.runtimeToken;
  process.env.ACTIONS_RESULTS_URL = results.url;
});

afterAll(async () => {
  await new Promise((r) => receiver?.close(r));
  delete process.env.ACTIONS_RUNTIME_TOKEN;
  delete process.env.ACTIONS_RESULTS_URL;
  await Promise.all([pg?.stop(), s3?.stop(), sshd?.stop(), api?.stop(), results?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

/** `postgresql://pgdr_secret_user:<password, encoded>@127.0.0.1:<port>/<db>` */
function dbUrl(database = 'app', port = pg.port): string {
  return `postgresql://${DB_USER}:${encodeURIComponent(SECRETS['database password'])}@127.0.0.1:${port}/${database}`;
}

function destinations(): Record<string, string> {
  return destinationInputs(
    { ...s3.primary, secretAccessKey: SECRETS['primary S3 secret key'] },
    { ...s3.secondary, secretAccessKey: SECRETS['secondary S3 secret key'] },
  );
}

/** The GitHub context of a run: the alert feed, the repository, the audit artifact. */
function githubEnv(): Record<string, string> {
  return {
    GITHUB_WORKSPACE: workspace,
    GITHUB_REPOSITORY: `${OWNER}/${REPO}`,
    GITHUB_API_URL: api.url,
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_RUN_ID: '4242',
    GITHUB_ACTIONS: 'true',
    ACTIONS_RUNTIME_TOKEN: results.runtimeToken,
    ACTIONS_RESULTS_URL: results.url,
    RUNNER_TEMP: runnerTemp,
  };
}

/** Runs in-process and queues every text a person could read for the scan. */
async function inProcess(name: string, inputs: Record<string, string>): Promise<RunOutcome> {
  // What reaches the process's own stdout/stderr meanwhile (@actions/core inside the
  // artifact client writes there) is captured and scanned as well.
  const seen = { stdout: '', stderr: '' };
  const writes = { stdout: process.stdout.write, stderr: process.stderr.write };
  for (const s of ['stdout', 'stderr'] as const)
    process[s].write = ((chunk: string | Uint8Array) => {
      seen[s] += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      return true;
    }) as typeof process.stdout.write;
  let r: RunOutcome;
  try {
    r = await runPgDr({ 'github-token': SECRETS['GitHub token'], ...inputs }, githubEnv());
  } finally {
    process.stdout.write = writes.stdout;
    process.stderr.write = writes.stderr;
  }
  scanLater(`${name}: process stdout`, seen.stdout);
  scanLater(`${name}: process stderr`, seen.stderr);
  scanLater(`${name}: log (stderr)`, r.log);
  scanLater(`${name}: failure message`, r.failed);
  for (const [k, v] of Object.entries(r.outputs)) scanLater(`${name}: output ${k}`, v);
  scanTables(name, r.tables);
  return r;
}

function scanTables(name: string, tables: readonly SummaryTable[]): void {
  for (const t of tables) {
    scanLater(`${name}: table "${t.title}" as text (CLI stdout)`, tableToText(t));
    scanLater(`${name}: table "${t.title}" as markdown (job summary)`, tableToMarkdown(t));
  }
}

interface ActionRun {
  exitCode: number | undefined;
  stdout: string;
  outputs: string;
}

/** `node dist/index.js` as the runner starts an action step. */
async function asAction(name: string, inputs: Record<string, string>): Promise<ActionRun> {
  const dir = await mkdtemp(join(work, 'action-'));
  const outputFile = join(dir, 'output');
  const summaryFile = join(dir, 'summary');
  await writeFile(outputFile, '');
  await writeFile(summaryFile, '');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? dir,
    CI: 'true',
    GITHUB_OUTPUT: outputFile,
    GITHUB_STEP_SUMMARY: summaryFile,
    GITHUB_EVENT_NAME: 'schedule',
    ...githubEnv(),
  };
  for (const [k, v] of Object.entries({ 'github-token': SECRETS['GitHub token'], ...inputs }))
    env[`INPUT_${k.toUpperCase()}`] = v;
  const r = await execa(process.execPath, [requireBuilt('dist/index.js')], {
    cwd: workspace,
    env,
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
  });
  const visible = r.stdout
    .split('\n')
    .filter((l) => !l.startsWith('::add-mask::'))
    .join('\n');
  const outputs = await readFile(outputFile, 'utf8');
  scanLater(`${name}: stdout (without ::add-mask:: lines)`, visible);
  scanLater(`${name}: stderr`, r.stderr);
  scanLater(`${name}: GITHUB_OUTPUT`, outputs);
  scanLater(`${name}: GITHUB_STEP_SUMMARY`, await readFile(summaryFile, 'utf8'));
  return { exitCode: r.exitCode, stdout: r.stdout, outputs };
}

/** `node dist/cli/index.js <command>`, inputs as PG_DR_* variables. */
async function asCli(name: string, inputs: Record<string, string>) {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? work,
    ...githubEnv(),
    GITHUB_ACTIONS: '',
  };
  for (const [k, v] of Object.entries({ 'github-token': SECRETS['GitHub token'], ...inputs }))
    env[`PG_DR_${k.replace(/-/g, '_').toUpperCase()}`] = v;
  const r = await execa(
    process.execPath,
    [requireBuilt('dist/cli/index.js'), inputs.command as string],
    { env, extendEnv: false, reject: false, cwd: workspace },
  );
  scanLater(`${name}: CLI stdout`, r.stdout);
  scanLater(`${name}: CLI stderr`, r.stderr);
  return r;
}

/** The forms a secret must never appear in: raw, URL-encoded, and each line of 8+ characters. */
function forms(secret: string): string[] {
  const out = new Set([secret, secret.trim(), encodeURIComponent(secret)]);
  // A URL that holds a secret leaks by its path alone, too.
  if (/^https?:\/\//.test(secret)) out.add(new URL(secret).pathname);
  for (const line of secret.split('\n')) {
    const l = line.trim();
    // PEM armour lines (the BEGIN/END OPENSSH PRIVATE KEY lines) are public boilerplate.
    if (l.length >= 8 && !/^-----[A-Z ]+-----$/.test(l)) {
      out.add(l);
      out.add(encodeURIComponent(l));
    }
  }
  return [...out].filter((f) => f.length >= 8);
}

const sshInputs = () => ({
  'ssh-host': `${sshd.host}:${sshd.port}`,
  'ssh-user': sshd.user,
  'ssh-private-key': SECRETS['SSH private key'],
  'ssh-known-hosts': sshd.knownHosts,
});

describe('secrets: the scenarios', () => {
  it('backup (the action, dist/index.js), encrypted to an age recipient', async () => {
    const r = await asAction('action backup', {
      command: 'backup',
      'database-url': dbUrl(),
      'age-recipients': recipient,
      ...destinations(),
    });
    expect(r.exitCode, r.stdout).toBe(0);
    ageBackupId = /backup-id<<(\S+)\n([^\n]+)\n/.exec(r.outputs)?.[2] ?? '';
    expect(ageBackupId).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{6}$/);
    // Every secret it was given was masked, the password in its raw and encoded forms too.
    const masks = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('::add-mask::'))
      .map((l) => l.slice('::add-mask::'.length).replace(/%25/g, '%'));
    for (const secret of [
      SECRETS['database password'],
      encodeURIComponent(SECRETS['database password']),
      SECRETS['primary S3 secret key'],
      SECRETS['secondary S3 secret key'],
      SECRETS['GitHub token'],
    ])
      expect(masks).toContain(secret);
  });

  it('backup with a passphrase (in-process)', async () => {
    const r = await inProcess('backup (passphrase)', {
      command: 'backup',
      'database-url': dbUrl(),
      passphrase: SECRETS.passphrase,
      ...destinations(),
    });
    expect(r.failed, r.log).toBeUndefined();
    passphraseBackupId = r.outputs['backup-id'] as string;
  });

  it('backup through an SSH tunnel', async () => {
    const r = await inProcess('backup (tunnel)', {
      command: 'backup',
      'database-url': dbUrl(),
      'age-recipients': recipient,
      ...sshInputs(),
      ...destinations(),
    });
    expect(r.failed, r.log).toBeUndefined();
    expect(r.log).toMatch(/SSH tunnel up/);
  });

  it('verify: decrypt with the passphrase, and a restore drill with the age key', async () => {
    const d = await inProcess('verify decrypt (passphrase)', {
      command: 'verify',
      'backup-id': passphraseBackupId,
      'verify-level': 'decrypt',
      passphrase: SECRETS.passphrase,
      ...destinations(),
    });
    expect(d.outputs.status, d.log).toBe('ok');
    await pg.createDatabase('drill');
    const v = await inProcess('verify restore drill (age key)', {
      command: 'verify',
      'backup-id': ageBackupId,
      'verify-level': 'restore',
      'age-identity': SECRETS['age secret key'],
      'drill-database-url': dbUrl('drill'),
      ...destinations(),
    });
    expect(v.outputs.status, v.log).toBe('ok');
  });

  it('restore', async () => {
    await pg.createDatabase('restored');
    const r = await inProcess('restore', {
      command: 'restore',
      'backup-id': ageBackupId,
      'database-url': dbUrl('restored'),
      'age-identity': SECRETS['age secret key'],
      'config-dir': join(work, 'restored-config'),
      ...destinations(),
    });
    expect(r.outputs.status, r.log).toBe('ok');
  });

  it('list, in-process and through the CLI', async () => {
    const r = await inProcess('list', { command: 'list', format: 'json', ...destinations() });
    expect(r.failed, r.log).toBeUndefined();
    const cli = await asCli('list', { command: 'list', format: 'json', ...destinations() });
    expect(cli.exitCode, cli.stderr).toBe(0);
  });

  it('monitor, with a failing backup workflow (an alert opened)', async () => {
    api.seedRuns('dr-backup.yml', [
      { conclusion: 'failure' },
      { conclusion: 'failure' },
      { conclusion: 'success' },
    ]);
    const r = await inProcess('monitor', {
      command: 'monitor',
      'backup-workflow': 'dr-backup.yml',
      ...destinations(),
    });
    expect(r.failed, r.log).toBeUndefined();
    expect(api.state.issues.some((i) => i.body?.includes('key=low-success-rate'))).toBe(true);
  });

  it('failing backups: database unreachable (action, CLI), a malformed URL, a secret key as recipient, a wrong bastion key', async () => {
    const closed = await execa('node', [
      '-e',
      "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})",
    ]);
    const deadPort = Number(closed.stdout.trim());
    const a = await asAction('action backup (database unreachable)', {
      command: 'backup',
      'database-url': dbUrl('app', deadPort),
      'age-recipients': recipient,
      'heartbeat-url': SECRETS['heartbeat URL'],
      'alert-webhook-url': SECRETS['webhook URL'],
      ...destinations(),
    });
    expect(a.exitCode).not.toBe(0);
    expect(
      api.state.issues.some((i) => i.state === 'open' && i.body?.includes('key=backup-failed')),
    ).toBe(true);
    const c = await asCli('backup (database unreachable)', {
      command: 'backup',
      'database-url': dbUrl('app', deadPort),
      passphrase: SECRETS.passphrase,
      'heartbeat-url': SECRETS['heartbeat URL'],
      'alert-webhook-url': SECRETS['webhook URL'],
      ...destinations(),
    });
    expect(c.exitCode).toBe(1);
    const malformed = await inProcess('backup (malformed URL)', {
      command: 'backup',
      'database-url': `postgresql://${DB_USER}:${SECRETS['database password']}@127.0.0.1:port/app`,
      'age-recipients': recipient,
      ...destinations(),
    });
    expect(malformed.failed).toMatch(/'database-url'/);
    const swapped = await inProcess('backup (secret key as recipient)', {
      command: 'backup',
      'database-url': dbUrl(),
      'age-recipients': SECRETS['age secret key'],
      ...destinations(),
    });
    expect(swapped.failed).toMatch(/'age-recipients'/);
    const other = await startSshd();
    try {
      const wrongKey = await inProcess('backup (bastion key refused)', {
        command: 'backup',
        'database-url': dbUrl(),
        'age-recipients': recipient,
        ...sshInputs(),
        // The bastion does not know this client key: authentication fails.
        'ssh-host': `${other.host}:${other.port}`,
        'ssh-known-hosts': other.knownHosts,
      });
      expect(wrongKey.failed).toBeDefined();
    } finally {
      await other.stop();
    }
  });

  it('prune (deletes the older backups)', async () => {
    const r = await inProcess('prune', {
      command: 'prune',
      'keep-last': '1',
      'keep-daily': '0',
      'keep-weekly': '0',
      'keep-monthly': '0',
      'keep-yearly': '0',
      ...destinations(),
    });
    expect(r.failed, r.log).toBeUndefined();
    expect(r.outputs.report).toMatch(/"deleted"/);
  });
});

describe('secrets: the scan', () => {
  it('finds no secret in any place a person or a machine reads', async () => {
    // The buckets: every manifest and verification record (what prune left, too).
    let bucketDocs = 0;
    for (const [server, bucket] of [
      [s3.primary, PRIMARY_BUCKET],
      [s3.secondary, SECONDARY_BUCKET],
    ] as const) {
      for (const key of await server.listKeys(bucket)) {
        if (!key.endsWith('.json')) continue;
        scanLater(`${bucket}/${key}`, (await server.getObject(bucket, key)).toString('utf8'));
        bucketDocs++;
      }
    }
    // The audit files, as the artifact upload found them on disk.
    for (const f of results.captured) scanLater(`audit file ${f.name}`, f.text);
    // The alert feed: issues, comments, and every request body GitHub received.
    for (const i of api.state.issues) {
      scanLater(`issue #${i.number} title`, i.title);
      scanLater(`issue #${i.number} body`, i.body ?? '');
      for (const c of i.comments) scanLater(`issue #${i.number} comment ${c.id}`, c.body);
    }
    for (const [n, q] of api.requests.entries())
      scanLater(`GitHub API request ${n} ${q.method} ${q.path}`, stringsOf(q.body).join('\n'));

    const hits: string[] = [];
    for (const [name, secret] of Object.entries(SECRETS) as [SecretName, string][]) {
      expect(secret.length, name).toBeGreaterThanOrEqual(16);
      for (const form of forms(secret))
        for (const p of places)
          if (p.text.includes(form)) hits.push(`${name} (${form.slice(0, 12)}…) in ${p.where}`);
    }
    console.log(
      `[secrets] ${hits.length} secret hits in ${places.length} places scanned ` +
        `(${Object.keys(SECRETS).length} secrets; ${bucketDocs} bucket documents, ` +
        `${results.captured.length} audit files, ${api.state.issues.length} issues, ` +
        `${api.requests.length} GitHub API requests)`,
    );
    // The scan has something to find: these places did see real data.
    expect(bucketDocs).toBeGreaterThanOrEqual(4);
    expect(results.captured.map((f) => f.name)).toEqual(
      expect.arrayContaining(['manifest.json', 'report.json']),
    );
    expect(api.state.issues.length).toBeGreaterThanOrEqual(2);
    // The heartbeat and the webhook were used (and failed: their warnings were scanned).
    expect(received.filter((r) => r.startsWith('POST /ping/')).length).toBeGreaterThanOrEqual(4);
    expect(received.filter((r) => r.startsWith('POST /hooks/')).length).toBeGreaterThanOrEqual(1);
    expect(hits).toEqual([]);
  });

  it('the scan finds a secret where there is one (a test that cannot fail is a defect)', () => {
    const where = places.find((p) => p.where.includes('stdout'));
    expect(where).toBeDefined();
    const planted = [
      { where: 'planted', text: `x ${encodeURIComponent(SECRETS['database password'])} y` },
    ];
    const lines = SECRETS['SSH private key'].split('\n').filter((l) => l.length > 40);
    planted.push({ where: 'planted line', text: `…${lines[1]}…` });
    const found = planted.filter((p) =>
      Object.values(SECRETS).some((s) => forms(s).some((f) => p.text.includes(f))),
    );
    expect(found).toHaveLength(2);
  });
});

/** Every string inside a parsed JSON value. */
function stringsOf(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(stringsOf);
  if (value && typeof value === 'object') return Object.values(value).flatMap(stringsOf);
  return [];
}

interface ResultsService {
  readonly url: string;
  /** A JWT with the `Actions.Results` scope @actions/artifact looks for. */
  readonly runtimeToken: string;
  /** Files of each audit upload, read from disk when the upload began. */
  readonly captured: { name: string; text: string }[];
  stop(): Promise<void>;
}

/**
 * A stand-in for the Actions results service: on CreateArtifact it reads the audit files
 * pg-dr has just written under RUNNER_TEMP (pg-dr-audit-*), then refuses the upload (400),
 * which pg-dr reports as a warning.
 */
async function startResultsService(tempDirs: readonly string[]): Promise<ResultsService> {
  const captured: { name: string; text: string }[] = [];
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', async () => {
      if (req.url?.endsWith('/CreateArtifact')) {
        for (const dir of tempDirs) {
          for (const sub of await readdir(dir)) {
            if (!sub.startsWith('pg-dr-audit-')) continue;
            for (const name of await readdir(join(dir, sub)))
              captured.push({ name, text: await readFile(join(dir, sub, name), 'utf8') });
          }
        }
      }
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code: 'invalid_argument', msg: 'stand-in: not stored' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const runtimeToken = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({
    scp: 'Actions.ExampleScope Actions.Results:ce7f54c7-61c7-4aae-887f-30da475f5f1a:ca395085-040a-526b-2ce8-bdc85f692774',
  })}.c2lnbmF0dXJl`;
  return {
    url: `http://127.0.0.1:${address.port}/`,
    runtimeToken,
    captured,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
