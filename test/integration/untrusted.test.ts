/**
 * Text that pg-dr did not write stays text: a restore drill that fails on a row quotes no
 * row data anywhere (the verification record in the bucket, the summary, the issue), and a
 * hostile verification record planted in the bucket reaches the alert issue inert.
 */
import { randomBytes } from 'node:crypto';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_MANIFEST_BYTES, MAX_RECORD_BYTES } from '../../src/manifest/catalog.js';
import { verificationKey } from '../../src/manifest/verification.js';
import { type FakeGitHubApi, startGitHubApi } from '../harness/github-api.js';
import { leasePostgres } from '../harness/lease.js';
import { plantComplete, plantVerification } from '../harness/plant.js';
import type { PgCluster } from '../harness/postgres.js';
import { destinationInputs, runPgDr } from '../harness/run.js';
import { type S3Pair, startS3Pair } from '../harness/s3.js';

let pg: PgCluster;
let s3: S3Pair;
let gh: FakeGitHubApi;
let identity: string;
let backupId: string;
const token = `ghs_${randomBytes(18).toString('hex')}`;
const ROW_SECRET = 'hunter2-row-secret';
const ROW_EMAIL = 'alice@customer.example';

const ghEnv = () => ({ GITHUB_REPOSITORY: 'acme/platform', GITHUB_API_URL: gh.url });
const destinations = () => destinationInputs(s3.primary, s3.secondary);

beforeAll(async () => {
  [pg, s3] = await Promise.all([leasePostgres({ name: 'untrusted' }), startS3Pair()]);
  gh = await startGitHubApi({ token, owner: 'acme', repo: 'platform' });
  await pg.createDatabase('app');
  // A CHECK constraint whose function changed after the rows were written: the dump is
  // fine, every restore of it fails on the first row, and PostgreSQL's error quotes it.
  await pg.query(
    'app',
    `CREATE FUNCTION ok_email(text) RETURNS boolean IMMUTABLE LANGUAGE sql AS $$ SELECT true $$;
     CREATE TABLE customers (id int PRIMARY KEY, email text CHECK (ok_email(email)), secret text);
     INSERT INTO customers VALUES (1, '${ROW_EMAIL}', '${ROW_SECRET}');
     CREATE OR REPLACE FUNCTION ok_email(text) RETURNS boolean IMMUTABLE LANGUAGE sql AS $$ SELECT false $$;`,
  );
  identity = await generateX25519Identity();
  const b = await runPgDr({
    command: 'backup',
    'database-url': pg.url('app'),
    'age-recipients': await identityToRecipient(identity),
    ...destinations(),
  });
  expect(b.failed).toBeUndefined();
  backupId = b.outputs['backup-id'] as string;
});

afterAll(async () => {
  await Promise.all([pg?.stop(), s3?.stop(), gh?.stop()]);
});

describe('untrusted text', () => {
  it('a drill that fails on a row: the error says why, and no row value leaves the runner', async () => {
    const r = await runPgDr(
      {
        command: 'verify',
        'verify-level': 'restore',
        'age-identity': identity,
        'drill-database-url': pg.url('postgres'),
        'github-token': token,
        ...destinations(),
      },
      ghEnv(),
    );
    expect(r.outputs.status).toBe('failed');
    expect(r.failed).toMatch(
      /violates check constraint "customers_email_check".*\(row data omitted\)/,
    );
    // Told once, as the drill's failure (the stored copy itself is sound).
    expect(r.failed?.match(/violates check constraint/g)).toHaveLength(1);
    expect(r.failed).toMatch(/at b2: restore drill failed: \S+: pg_restore exited with code 1: /);
    const records = await Promise.all(
      (
        await s3.primary.listKeys('pgdr-primary', `disaster_recovery/${backupId}/verifications/`)
      ).map(async (k) => (await s3.primary.getObject('pgdr-primary', k)).toString()),
    );
    expect(records.join('\n')).toMatch(/restore drill failed/);
    const issue = gh.state.issues.find((i) => i.title.includes('verification failed'));
    expect(issue?.body).toMatch(/violates check constraint/);
    for (const [where, text] of [
      ['the failure', r.failed ?? ''],
      ['the summary', JSON.stringify(r.tables)],
      ['the report', r.outputs.report ?? ''],
      ['the records in the bucket', records.join('\n')],
      ['the issue', JSON.stringify(gh.state)],
    ] as const) {
      expect(text, where).not.toContain(ROW_SECRET);
      expect(text, where).not.toContain(ROW_EMAIL);
    }
  });

  it('a hostile verification record reaches the issue as inert text', async () => {
    const hostile =
      '@acme/everyone <img src=x onerror=alert(1)> [reset your key](https://evil.example/x) `x` | y';
    const at = new Date();
    const record = {
      format: 'pg-dr-verification/1',
      backupId,
      destination: 'b2',
      level: 'checksum',
      ok: false,
      startedAt: at.toISOString(),
      durationSeconds: 1,
      tool: { name: 'pg-dr', version: '0.1.0' },
      runUrl: null,
      objects: [],
      archive: null,
      drill: null,
      error: hostile,
    };
    await s3.primary.putObject(
      'pgdr-primary',
      verificationKey('disaster_recovery/', backupId, new Date(at.getTime() + 1000)),
      Buffer.from(JSON.stringify(record)),
    );
    const m = await runPgDr(
      { command: 'monitor', 'github-token': token, ...destinations() },
      ghEnv(),
    );
    expect(m.failed).toBeUndefined();
    const issue = gh.state.issues.find(
      (i) => i.state === 'open' && i.title.includes('latest verification failed'),
    );
    expect(issue, JSON.stringify(gh.state.issues.map((i) => i.title))).toBeDefined();
    const body = issue?.body ?? '';
    expect(body).toContain('&#60;img src=x onerror=alert(1)&#62;');
    expect(body).toContain('&#91;reset your key&#93;');
    for (const raw of [
      '<img',
      '[reset your key]',
      '](https://',
      '@acme/everyone',
      '`x`',
      'https://evil',
    ])
      expect(body).not.toContain(raw);
  });

  it('folders and records dated in the future silence no alert, and are reported', async () => {
    const old = '20261101T020000Z-0a0a0a';
    const planted = '20991231T235959Z-ffffff';
    for (const [server, bucket] of [
      [s3.primary, 'pgdr-primary'],
      [s3.secondary, 'pgdr-secondary'],
    ] as const) {
      await plantComplete(server, bucket, 'stale/', old);
      await plantComplete(server, bucket, 'stale/', planted);
      await plantVerification(server, bucket, 'stale/', old, '2099-12-31T00:00:00.000Z', true);
    }
    const m = await runPgDr(
      { command: 'monitor', prefix: 'stale/', 'github-token': token, ...destinations() },
      ghEnv(),
    );
    expect(m.failed).toBeUndefined();
    const checks = JSON.parse(m.outputs.report as string).checks as {
      key: string;
      state: string;
      detail: string;
    }[];
    const state = (key: string) => checks.find((c) => c.key === key)?.state;
    expect(state('backup-stale')).toBe('alert');
    expect(checks.find((c) => c.key === 'backup-stale')?.detail).toContain(old);
    expect(state('verification-stale')).toBe('alert');
    expect(state('untrusted-objects')).toBe('alert');
    const issue = gh.state.issues.find(
      (i) => i.state === 'open' && i.title.includes('something other than pg-dr'),
    );
    expect(issue?.body).toContain(planted);
    expect(issue?.body).toMatch(/dated in the future/);
  });

  it('two destinations that hold different manifests for one backup: neither is latest, and it is reported', async () => {
    for (const [server, bucket] of [
      [s3.primary, 'pgdr-primary'],
      [s3.secondary, 'pgdr-secondary'],
    ] as const)
      for (const key of await server.listKeys(bucket, `disaster_recovery/${backupId}/`))
        if (!key.includes('/verifications/'))
          await server.putObject(
            bucket,
            key.replace('disaster_recovery/', 'split/'),
            await server.getObject(bucket, key),
          );
    const key = `split/${backupId}/manifest.json`;
    const original = (await s3.secondary.getObject('pgdr-secondary', key)).toString();
    await s3.secondary.putObject(
      'pgdr-secondary',
      key,
      Buffer.from(original.replace('"compression": "zstd"', '"compression":  "zstd"')),
    );
    const l = await runPgDr({
      command: 'list',
      prefix: 'split/',
      format: 'json',
      ...destinations(),
    });
    const listed = JSON.parse(l.outputs.report as string).backups[0];
    expect(listed).toMatchObject({ id: backupId, complete: false });
    expect(listed.destinations[0].problem).toMatch(/the destinations hold different manifests/);
    const r = await runPgDr({
      command: 'restore',
      prefix: 'split/',
      'database-url': pg.url('never_restored'),
      'age-identity': identity,
      ...destinations(),
    });
    expect(r.failed).toMatch(/No complete backup/);
    const m = await runPgDr(
      { command: 'monitor', prefix: 'split/', 'github-token': token, ...destinations() },
      ghEnv(),
    );
    const checks = JSON.parse(m.outputs.report as string).checks as {
      key: string;
      detail: string;
    }[];
    expect(checks.find((c) => c.key === 'untrusted-objects')?.detail).toMatch(
      new RegExp(`${backupId}: the destinations hold different manifests`),
    );
  });

  it('prune keeps a folder whose manifest was overwritten, and raises untrusted-objects for it', async () => {
    const good = '20261120T020000Z-0b0b0b';
    const damaged = '20261110T020000Z-0c0c0c';
    for (const [server, bucket] of [
      [s3.primary, 'pgdr-primary'],
      [s3.secondary, 'pgdr-secondary'],
    ] as const) {
      await plantComplete(server, bucket, 'pruned/', good);
      await plantComplete(server, bucket, 'pruned/', damaged);
      await server.putObject(
        bucket,
        `pruned/${damaged}/manifest.json`,
        Buffer.from('{"not":"a manifest"}'),
      );
    }
    const p = await runPgDr(
      {
        command: 'prune',
        prefix: 'pruned/',
        'keep-last': '1',
        'max-backup-age-hours': '100000',
        'github-token': token,
        ...destinations(),
      },
      ghEnv(),
    );
    expect(p.failed).toBeUndefined();
    const report = JSON.parse(p.outputs.report as string);
    expect(report.untrusted).toEqual([
      expect.stringMatching(new RegExp(`^b2: ${damaged}: manifest unreadable`)),
      expect.stringMatching(new RegExp(`^r2: ${damaged}: manifest unreadable`)),
    ]);
    const issue = gh.state.issues.find(
      (i) => i.state === 'open' && i.title.includes('something other than pg-dr'),
    );
    expect(JSON.stringify(issue)).toContain(damaged);
    // The backup prune kept that pg-dr did write is named as the last good one.
    expect(issue?.body).toMatch(
      new RegExp(
        `### Last good backup\\n\\n\`${good}\`, finished .* stored at \\*\\*b2\\*\\*, \\*\\*r2\\*\\*\\.`,
      ),
    );
    expect(await s3.primary.listKeys('pgdr-primary', `pruned/${damaged}/`)).toContain(
      `pruned/${damaged}/manifest.json`,
    );
  });

  it("a planted manifest or record too large to be pg-dr's makes its backup unreadable, and is never held whole", async () => {
    const prefix = 'oversized/';
    const [big, small] = ['20240101T000000Z-000001', '20240102T000000Z-000002'];
    // `big` at both destinations; `small` at the primary alone (plantComplete writes random
    // objects, and two different manifests for one backup would be a disagreement).
    for (const [server, bucket] of [
      [s3.primary, 'pgdr-primary'],
      [s3.secondary, 'pgdr-secondary'],
    ] as const)
      await plantComplete(server, bucket, prefix, big);
    await plantComplete(s3.primary, 'pgdr-primary', prefix, small);
    await plantVerification(
      s3.primary,
      'pgdr-primary',
      prefix,
      small,
      '2024-01-03T00:00:00.000Z',
      true,
    );
    // One byte over each limit: the manifest of one backup, a verification record of the other.
    const junk = (n: number) => Buffer.alloc(n + 1, 0x7b);
    await s3.primary.putObject(
      'pgdr-primary',
      `${prefix}${big}/manifest.json`,
      junk(MAX_MANIFEST_BYTES),
    );
    const [record] = await s3.primary.listKeys('pgdr-primary', `${prefix}${small}/verifications/`);
    expect(record).toBeDefined();
    await s3.primary.putObject('pgdr-primary', record as string, junk(MAX_RECORD_BYTES));

    const r = await runPgDr({ command: 'list', prefix, ...destinations() });
    expect(r.failed, r.log).toBeUndefined();
    const report = JSON.parse(r.outputs.report as string) as {
      backups: {
        id: string;
        destinations: {
          name: string;
          complete: boolean;
          problem: string | null;
          lastVerification: unknown;
        }[];
      }[];
    };
    const at = (id: string, name: string) =>
      report.backups.find((b) => b.id === id)?.destinations.find((d) => d.name === name);
    expect(at(big, 'b2')?.complete).toBe(false);
    expect(at(big, 'b2')?.problem).toMatch(/manifest unreadable: larger than 67108864 bytes/);
    // The copy at the other destination is untouched and still complete.
    expect(at(big, 'r2')?.complete).toBe(true);
    // The oversized record is passed over like any unreadable one: no verification known there.
    expect(at(small, 'b2')?.complete, JSON.stringify(at(small, 'b2'))).toBe(true);
    expect(at(small, 'b2')?.lastVerification).toBeNull();
  });
});
