/**
 * Signed backups: a stolen bucket key cannot plant a backup that is chosen, verified,
 * restored, counted or deleted, once readers know the trusted public keys.
 */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newBackupId } from '../../src/manifest/id.js';
import { createSeededDatabase, tableRowCounts, tempDir } from '../harness/fixtures.js';
import { leasePostgres } from '../harness/lease.js';
import { plantComplete } from '../harness/plant.js';
import type { PgCluster } from '../harness/postgres.js';
import { destinationInputs, runPgDr } from '../harness/run.js';
import { type S3Pair, startS3Pair } from '../harness/s3.js';
import { ed25519KeyPair, opensshSign, opensshVerifies } from '../harness/ssh-keys.js';

let pg: PgCluster;
let s3: S3Pair;
let dir: string;
let signingKey: string;
let publicKey: string;
let identity: string;
let genuine: string;
let forged: string;
let source: Record<string, number>;

const destinations = () => destinationInputs(s3.primary, s3.secondary);
const trust = () => ({ 'trusted-signers': publicKey });

beforeAll(async () => {
  [pg, s3] = await Promise.all([leasePostgres({ name: 'signatures' }), startS3Pair()]);
  source = await createSeededDatabase(pg, 'app');
  dir = await tempDir('signatures');
  const pair = ed25519KeyPair(dir, 'key');
  signingKey = pair.privateKey;
  publicKey = pair.publicKey;
  identity = await generateX25519Identity();
  const b = await runPgDr({
    command: 'backup',
    'database-url': pg.url('app'),
    'age-recipients': await identityToRecipient(identity),
    'signing-key': signingKey,
    ...destinations(),
  });
  expect(b.failed).toBeUndefined();
  genuine = b.outputs['backup-id'] as string;
  // What a stolen key for b2 can do: a complete-looking, newer backup, unsigned.
  forged = newBackupId(new Date(Date.now() + 5 * 60 * 1000));
  await plantComplete(s3.primary, 'pgdr-primary', 'disaster_recovery/', forged);
});

afterAll(async () => {
  await Promise.all([pg?.stop(), s3?.stop()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('signed backups', () => {
  it('each manifest has an SSH signature that stock OpenSSH verifies, and a one-byte change fails', async () => {
    for (const [server, bucket] of [
      [s3.primary, 'pgdr-primary'],
      [s3.secondary, 'pgdr-secondary'],
    ] as const) {
      const manifest = await server.getObject(bucket, `disaster_recovery/${genuine}/manifest.json`);
      const sig = await server.getObject(bucket, `disaster_recovery/${genuine}/manifest.json.sig`);
      expect(JSON.parse(manifest.toString()).signedBy).toBe(
        publicKey.split(' ').slice(0, 2).join(' '),
      );
      expect(opensshVerifies(dir, sig, manifest, publicKey)).toBe(true);
      const changed = Buffer.from(manifest);
      changed[20] = (changed[20] as number) ^ 1;
      expect(opensshVerifies(dir, sig, changed, publicKey)).toBe(false);
    }
  });

  it('without trusted-signers the planted backup would be latest, and pg-dr says backups are not authenticated', async () => {
    const l = await runPgDr({ command: 'list', format: 'json', ...destinations() });
    expect(JSON.parse(l.outputs.report as string).backups[0]).toMatchObject({
      id: forged,
      complete: true,
    });
    const v = await runPgDr({ command: 'verify', ...destinations() });
    expect(v.log).toMatch(/Backups are not authenticated/);
  });

  it('with trusted-signers the planted backup is never latest, never restored, and named', async () => {
    const l = await runPgDr({ command: 'list', format: 'json', ...trust(), ...destinations() });
    const listed = JSON.parse(l.outputs.report as string).backups as {
      id: string;
      complete: boolean;
      destinations: { problem: string | null }[];
    }[];
    expect(listed.find((b) => b.id === forged)).toMatchObject({ complete: false });
    expect(listed.find((b) => b.id === forged)?.destinations[0]?.problem).toMatch(
      /untrusted: no signature \(manifest\.json\.sig is missing\)/,
    );
    const v = await runPgDr({
      command: 'verify',
      'signing-key': signingKey,
      ...trust(),
      ...destinations(),
    });
    expect(v.failed).toBeUndefined();
    expect(v.outputs['backup-id']).toBe(genuine);
    expect(v.log).not.toMatch(/not authenticated/);
    // The verification records are signed too.
    expect(
      (
        await s3.secondary.listKeys('pgdr-secondary', `disaster_recovery/${genuine}/verifications/`)
      ).some((k) => k.endsWith('.json.sig')),
    ).toBe(true);
    const r = await runPgDr({
      command: 'restore',
      'database-url': pg.url('restored'),
      'age-identity': identity,
      ...trust(),
      ...destinations(),
    });
    expect(r.failed).toBeUndefined();
    expect(r.outputs['backup-id']).toBe(genuine);
    expect(await tableRowCounts(pg, 'restored')).toEqual(source);
    const f = await runPgDr({
      command: 'restore',
      'backup-id': forged,
      'database-url': pg.url('never'),
      'age-identity': identity,
      ...trust(),
      ...destinations(),
    });
    expect(f.failed).toMatch(
      new RegExp(`Backup ${forged} is incomplete everywhere: b2: untrusted: no signature`),
    );
  });

  it('a signature by another key, or over other bytes, is untrusted too', async () => {
    const thief = ed25519KeyPair(dir, 'thief');
    const other = newBackupId(new Date(Date.now() + 6 * 60 * 1000));
    await plantComplete(s3.primary, 'pgdr-primary', 'disaster_recovery/', other);
    const manifest = await s3.primary.getObject(
      'pgdr-primary',
      `disaster_recovery/${other}/manifest.json`,
    );
    await writeFile(join(dir, 'm'), manifest);
    await s3.primary.putObject(
      'pgdr-primary',
      `disaster_recovery/${other}/manifest.json.sig`,
      Buffer.from(opensshSign(thief, join(dir, 'm'))),
    );
    // The genuine signature moved onto the forged manifest.
    await s3.primary.putObject(
      'pgdr-primary',
      `disaster_recovery/${forged}/manifest.json.sig`,
      await s3.primary.getObject('pgdr-primary', `disaster_recovery/${genuine}/manifest.json.sig`),
    );
    const l = await runPgDr({ command: 'list', format: 'json', ...trust(), ...destinations() });
    const problem = (id: string) =>
      (
        JSON.parse(l.outputs.report as string).backups as {
          id: string;
          destinations: { problem: string }[];
        }[]
      ).find((b) => b.id === id)?.destinations[0]?.problem;
    expect(problem(other)).toBe('untrusted: signed by a key that is not in trusted-signers');
    expect(problem(forged)).toBe(
      'untrusted: the signature does not match the content (altered after signing)',
    );
  });

  it('prune neither counts nor deletes what it cannot trust', async () => {
    const p = await runPgDr({
      command: 'prune',
      'keep-last': '1',
      'keep-daily': '0',
      'keep-weekly': '0',
      'keep-monthly': '0',
      'keep-yearly': '0',
      ...trust(),
      ...destinations(),
    });
    expect(p.failed).toBeUndefined();
    const report = JSON.parse(p.outputs.report as string);
    const b2 = new Map(
      (report.prune ?? report).destinations[0].backups.map(
        (b: { id: string; reasons: string[] }) => [b.id, b.reasons],
      ),
    );
    expect(b2.get(genuine)).toContain('newest');
    expect(String(b2.get(forged))).toMatch(/damaged or tampered/);
    const keys = await s3.primary.listKeys('pgdr-primary', 'disaster_recovery/');
    expect(keys.some((k) => k.includes(genuine))).toBe(true);
    expect(keys.some((k) => k.includes(forged))).toBe(true);
  });
});
