import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDatabase, tableRowCounts } from '../harness/fixtures.js';
import { type PgCluster, startPostgres } from '../harness/postgres.js';
import { destinationInputs, runPgDr } from '../harness/run.js';
import { PRIMARY_BUCKET, type S3Pair, startS3Pair } from '../harness/s3.js';
import { requireBinary } from '../harness/tools.js';

/**
 * The restore runbook's manual path (docs/runbook.md, Path B), run exactly as written: every
 * `sh` block between the runbook-test markers, in order, in one bash, against a real backup
 * made by pg-dr — with the AWS CLI, jq, sha256sum, age, zstd, pg_restore and psql, and no
 * pg-dr code at all. If the page and the backups drift apart, this fails.
 */
const RUNBOOK = 'docs/runbook.md';

/** The shell blocks between `<!-- runbook-test:begin … -->` and `<!-- runbook-test:end -->`. */
function runbookScript(markdown: string): string {
  const begin = markdown.indexOf('<!-- runbook-test:begin');
  const end = markdown.indexOf('<!-- runbook-test:end -->');
  if (begin < 0 || end < begin) throw new Error(`${RUNBOOK}: runbook-test markers not found`);
  const section = markdown.slice(begin, end);
  const blocks = [...section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1] ?? '');
  if (blocks.length === 0) throw new Error(`${RUNBOOK}: no sh block between the markers`);
  return blocks.join('\n');
}

const WORKSPACE_FILES: Record<string, string> = {
  'docker-compose.yml': 'services:\n  app:\n    image: app:1\n',
  'deploy/release.sh': '#!/bin/sh\necho deploy\n',
};

let pg: PgCluster;
let s3: S3Pair;
let work: string;
let identity: string;
let keyFile: string;
let script: string;
let source: Record<string, number>;
let olderId: string;
let newestId: string;

async function backup(ws: string): Promise<string> {
  const r = await runPgDr(
    {
      command: 'backup',
      'database-url': pg.url('app'),
      'age-recipients': await identityToRecipient(identity),
      ...destinationInputs(s3.primary, s3.secondary),
    },
    { GITHUB_WORKSPACE: ws },
  );
  expect(r.failed).toBeUndefined();
  return r.outputs['backup-id'] as string;
}

/** Runs the runbook's blocks with the operator's variables set, in a fresh folder. */
async function followRunbook(vars: Record<string, string>) {
  const cwd = await mkdtemp(join(work, 'operator-'));
  // Asynchronous: the S3 servers run in this process and must keep answering meanwhile.
  const result = await execa('bash', ['-c', `set -euo pipefail\n${script}`], {
    cwd,
    reject: false,
    stdin: 'ignore',
    timeout: 120_000,
    extendEnv: false,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      LANG: 'C.UTF-8',
      // What the operator sets before the tested blocks (docs/runbook.md, "Set the variables").
      AWS_ACCESS_KEY_ID: s3.primary.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.primary.secretAccessKey,
      ENDPOINT: s3.primary.endpoint,
      REGION: s3.primary.region,
      BUCKET: PRIMARY_BUCKET,
      PREFIX: 'disaster_recovery/',
      AGE_KEY_FILE: keyFile,
      ...vars,
    },
  });
  const status = result.exitCode ?? null;
  const { stdout, stderr } = result;
  return { status, stdout, stderr, cwd, output: `${stdout}\n${stderr}` };
}

beforeAll(async () => {
  for (const tool of ['aws', 'jq', 'sha256sum', 'age', 'zstd', 'pg_restore', 'psql'])
    requireBinary(tool);
  script = runbookScript(await readFile(RUNBOOK, 'utf8'));
  [pg, s3] = await Promise.all([startPostgres({ name: 'runbook' }), startS3Pair()]);
  await pg.createDatabase('app');
  source = await seedDatabase(pg, 'app');
  work = await mkdtemp(join(tmpdir(), 'pg-dr-runbook-'));
  const ws = join(work, 'workspace');
  for (const [f, body] of Object.entries(WORKSPACE_FILES)) {
    await mkdir(join(ws, f, '..'), { recursive: true });
    await writeFile(join(ws, f), body);
  }
  identity = await generateX25519Identity();
  keyFile = join(work, 'key.txt');
  // As age-keygen writes it: comment lines, then the secret key.
  await writeFile(
    keyFile,
    `# created: 2026-11-26T00:00:00Z\n# public key: ${await identityToRecipient(identity)}\n${identity}\n`,
    { mode: 0o600 },
  );

  olderId = await backup(ws);
  // One more row after the first backup: restoring that one (ID=…) must not have it.
  await pg.query('app', "INSERT INTO public.audit_log (message) VALUES ('after the first backup')");
  newestId = await backup(ws);
  source = { ...source, 'public.audit_log': 1 };

  // Decoys the "newest complete backup" pattern must skip: a newer backup still in flight (no
  // manifest), and a newer complete-looking backup of another database under a deeper prefix.
  const inFlight = 'disaster_recovery/29991231T235959Z-ffffff/database.dump.zst.age';
  await s3.primary.putObject(PRIMARY_BUCKET, inFlight, Buffer.from('partial upload'));
  const manifest = await s3.primary.getObject(
    PRIMARY_BUCKET,
    `disaster_recovery/${newestId}/manifest.json`,
  );
  await s3.primary.putObject(
    PRIMARY_BUCKET,
    'disaster_recovery/billing/29991231T235959Z-eeeeee/manifest.json',
    manifest,
  );
});

afterAll(async () => {
  await Promise.all([pg?.stop(), s3?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

describe('docs/runbook.md, Path B (no pg-dr)', () => {
  it('has the manual commands between its markers', () => {
    for (const command of ['aws s3', 'sha256sum -c', 'age -d', 'zstd -d', 'pg_restore', 'psql'])
      expect(script).toContain(command);
  });

  it('restores the newest complete backup with aws, age, zstd and pg_restore, row counts equal', async () => {
    const target = await pg.createDatabase('restored_newest');
    const run = await followRunbook({ TARGET_URL: target });
    expect(run.status, run.output).toBe(0);
    expect(run.stdout).toContain(`Restoring backup ${newestId}`);
    expect(run.stdout).not.toContain('MISMATCH');
    expect(await tableRowCounts(pg, 'restored_newest')).toEqual(source);
    expect(await tableRowCounts(pg, 'restored_newest')).toEqual(await tableRowCounts(pg, 'app'));
    // The platform's files came back byte for byte.
    for (const [f, body] of Object.entries(WORKSPACE_FILES))
      expect(await readFile(join(run.cwd, `pg-dr-restore-${newestId}`, 'config', f), 'utf8')).toBe(
        body,
      );
  });

  it('restores an older backup when ID is set', async () => {
    const target = await pg.createDatabase('restored_older');
    const run = await followRunbook({ TARGET_URL: target, ID: olderId });
    expect(run.status, run.output).toBe(0);
    expect(run.stdout).toContain(`Restoring backup ${olderId}`);
    expect(await tableRowCounts(pg, 'restored_older')).toEqual({
      ...source,
      'public.audit_log': 0,
    });
  });

  it('stops at the checksum step when a stored byte changed, before touching the target', async () => {
    const key = `disaster_recovery/${newestId}/database.dump.zst.age`;
    const original = await s3.primary.getObject(PRIMARY_BUCKET, key);
    const altered = Buffer.from(original);
    const at = Math.floor(altered.length / 2);
    altered[at] = (altered[at] ?? 0) ^ 0x01;
    await s3.primary.putObject(PRIMARY_BUCKET, key, altered);
    try {
      const target = await pg.createDatabase('restored_tampered');
      const run = await followRunbook({ TARGET_URL: target });
      expect(run.status).not.toBe(0);
      expect(run.stdout).toMatch(/database\.dump\.zst\.age: FAILED/);
      expect(run.stdout).not.toContain('Tables in the target');
      expect(await tableRowCounts(pg, 'restored_tampered')).toEqual({});
    } finally {
      await s3.primary.putObject(PRIMARY_BUCKET, key, original);
    }
  });

  it('refuses a target that already has tables', async () => {
    const run = await followRunbook({ TARGET_URL: pg.url('app') });
    expect(run.status).not.toBe(0);
    expect(run.stdout).toMatch(/Tables in the target: [1-9]\d* \(must be 0\)/);
    expect(run.stderr).not.toContain('pg_restore:');
    expect(await tableRowCounts(pg, 'app')).toEqual(source);
  });
});
