/**
 * Every command against S3 stores with the quirks of the real providers: the primary
 * behind the fault proxy in its B2 profile (any `x-amz-checksum-*`,
 * `x-amz-sdk-checksum-algorithm` or `x-amz-checksum-mode` header → 400 InvalidArgument, as
 * Backblaze B2 answers) and the secondary behind it in its R2 profile (a multipart upload
 * whose non-final parts differ in size → 400 InvalidPart, as Cloudflare R2 answers); then
 * prune against stores without DeleteObjects (501 NotImplemented).
 *
 * The database holds 10 MiB of random bytes so the dump is uploaded in several parts.
 * The first tests prove the proxy really enforces each profile.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HttpFaultProxy, startHttpFaultProxy } from '../harness/faults.js';
import { ageKeyPair, createSeededDatabase, tableRowCounts, tempDir } from '../harness/fixtures.js';
import { type FakeGitHubApi, startGitHubApi } from '../harness/github-api.js';
import { leasePostgres } from '../harness/lease.js';
import type { PgCluster } from '../harness/postgres.js';
import { destinationInputs, type RunOutcome, runPgDr } from '../harness/run.js';
import { PRIMARY_BUCKET, type S3Pair, SECONDARY_BUCKET, startS3Pair } from '../harness/s3.js';
import { requireBinary } from '../harness/tools.js';

const TOKEN = 'ghs_profilesSuiteToken0123456789abcdefAB';
const MiB = 1024 * 1024;

let pg: PgCluster;
let s3: S3Pair;
let api: FakeGitHubApi;
let b2: HttpFaultProxy;
let r2: HttpFaultProxy;
let work: string;
let workspace: string;
let identity: string;
let recipient: string;
let source: Record<string, number>;
/** The first backup, made under both profiles. */
let firstId: string;

beforeAll(async () => {
  requireBinary('zstd');
  [pg, s3, api] = await Promise.all([
    leasePostgres({ name: 's3-profiles' }),
    startS3Pair(),
    startGitHubApi({ token: TOKEN, owner: 'acme', repo: 'platform' }),
  ]);
  await createSeededDatabase(pg, 'app');
  await pg.query('app', 'CREATE TABLE public.blobs (id serial PRIMARY KEY, data bytea NOT NULL)');
  for (let i = 0; i < 10; i++)
    await pg.query('app', 'INSERT INTO public.blobs (data) VALUES ($1)', [randomBytes(MiB)]);
  source = await tableRowCounts(pg, 'app');
  [b2, r2] = await Promise.all([
    startHttpFaultProxy({ target: { port: s3.primary.port }, profile: 'b2' }),
    startHttpFaultProxy({ target: { port: s3.secondary.port }, profile: 'r2' }),
  ]);
  work = await tempDir('s3-profiles');
  workspace = join(work, 'ws');
  await mkdir(workspace, { recursive: true });
  await writeFile(join(workspace, 'docker-compose.yml'), 'services: {}\n');
  ({ identity, recipient } = await ageKeyPair());
});

afterAll(async () => {
  await Promise.all([b2?.stop(), r2?.stop()]);
  await Promise.all([pg?.stop(), s3?.stop(), api?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

/** Inputs of every command: the primary through the B2 proxy, the secondary through R2's. */
function destinations(): Record<string, string> {
  return destinationInputs(
    { ...s3.primary, endpoint: b2.endpoint },
    { ...s3.secondary, endpoint: r2.endpoint },
  );
}

function env(): Record<string, string> {
  return {
    GITHUB_WORKSPACE: workspace,
    GITHUB_REPOSITORY: 'acme/platform',
    GITHUB_API_URL: api.url,
  };
}

async function pgdr(inputs: Record<string, string>): Promise<RunOutcome> {
  const r = await runPgDr({ ...destinations(), ...inputs }, env());
  expect(r.failed, r.log).toBeUndefined();
  return r;
}

async function backup(): Promise<string> {
  const r = await pgdr({
    command: 'backup',
    'database-url': pg.url('app'),
    'age-recipients': recipient,
  });
  expect(r.outputs.status).toBe('ok');
  return r.outputs['backup-id'] as string;
}

/** A client as a careless tool would build it: the SDK's default checksums. */
function defaultClient(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: s3.primary.accessKeyId, secretAccessKey: 'any' },
    maxAttempts: 1,
  });
}

/** A client with checksums only when required (what pg-dr builds). */
function plainClient(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: s3.primary.accessKeyId, secretAccessKey: 'any' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
  });
}

async function errorOf(p: Promise<unknown>): Promise<{ name: string; status: number | undefined }> {
  try {
    await p;
  } catch (e) {
    const err = e as { name: string; $metadata?: { httpStatusCode?: number } };
    return { name: err.name, status: err.$metadata?.httpStatusCode };
  }
  throw new Error('expected the request to be refused');
}

/** A multipart upload of parts of these sizes; resolves when complete. */
async function multipart(client: S3Client, key: string, sizes: number[]): Promise<void> {
  const Bucket = SECONDARY_BUCKET;
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key: key }));
  const parts = [];
  for (const [i, size] of sizes.entries()) {
    const out = await client.send(
      new UploadPartCommand({
        Bucket,
        Key: key,
        UploadId,
        PartNumber: i + 1,
        Body: Buffer.alloc(size, i),
      }),
    );
    parts.push({ PartNumber: i + 1, ETag: out.ETag });
  }
  await client.send(
    new CompleteMultipartUploadCommand({
      Bucket,
      Key: key,
      UploadId,
      MultipartUpload: { Parts: parts },
    }),
  );
}

describe('the fault proxy enforces the provider profiles', () => {
  it('B2: a request with the SDK default checksum headers is refused (400 InvalidArgument)', async () => {
    const c = defaultClient(b2.endpoint);
    expect(
      await errorOf(
        c.send(new PutObjectCommand({ Bucket: PRIMARY_BUCKET, Key: 'probe', Body: 'x' })),
      ),
    ).toEqual({ name: 'InvalidArgument', status: 400 });
    expect(
      await errorOf(c.send(new GetObjectCommand({ Bucket: PRIMARY_BUCKET, Key: 'probe' }))),
    ).toEqual({ name: 'InvalidArgument', status: 400 });
    expect(b2.requests.filter((q) => q.injected === 'b2')).toHaveLength(2);
    // The same request without them passes.
    await plainClient(b2.endpoint).send(
      new PutObjectCommand({ Bucket: PRIMARY_BUCKET, Key: 'probe', Body: 'x' }),
    );
    expect(await s3.primary.listKeys(PRIMARY_BUCKET)).toEqual(['probe']);
    await s3.primary.client().send(
      new DeleteObjectsCommand({
        Bucket: PRIMARY_BUCKET,
        Delete: { Objects: [{ Key: 'probe' }] },
      }),
    );
  });

  it('R2: a multipart upload whose non-final parts differ in size is refused; equal parts pass', async () => {
    const c = plainClient(r2.endpoint);
    expect(await errorOf(multipart(c, 'probe-unequal', [5 * MiB, 6 * MiB, 1024]))).toEqual({
      name: 'InvalidPart',
      status: 400,
    });
    await multipart(c, 'probe-equal', [5 * MiB, 5 * MiB, 1024]);
    expect(await s3.secondary.listKeys(SECONDARY_BUCKET)).toEqual(['probe-equal']);
  });

  it('no-batch-delete: DeleteObjects is answered 501 NotImplemented', async () => {
    r2.noBatchDelete = true;
    try {
      expect(
        await errorOf(
          plainClient(r2.endpoint).send(
            new DeleteObjectsCommand({
              Bucket: SECONDARY_BUCKET,
              Delete: { Objects: [{ Key: 'probe-equal' }] },
            }),
          ),
        ),
      ).toEqual({ name: 'NotImplemented', status: 501 });
    } finally {
      r2.noBatchDelete = false;
    }
    await plainClient(r2.endpoint).send(
      new DeleteObjectsCommand({
        Bucket: SECONDARY_BUCKET,
        Delete: { Objects: [{ Key: 'probe-equal' }] },
      }),
    );
    expect(await s3.secondary.listKeys(SECONDARY_BUCKET)).toEqual([]);
  });
});

describe('every command, primary in the B2 profile and secondary in the R2 profile', () => {
  it('backup: complete at both, the dump in several parts, no refused request', async () => {
    const b2Before = b2.requests.length;
    const r2Before = r2.requests.length;
    firstId = await backup();
    for (const [server, bucket] of [
      [s3.primary, PRIMARY_BUCKET],
      [s3.secondary, SECONDARY_BUCKET],
    ] as const)
      expect(await server.listKeys(bucket, `disaster_recovery/${firstId}/`)).toContain(
        `disaster_recovery/${firstId}/manifest.json`,
      );
    const b2Requests = b2.requests.slice(b2Before);
    const r2Requests = r2.requests.slice(r2Before);
    expect(b2Requests.filter((q) => q.injected)).toEqual([]);
    expect(r2Requests.filter((q) => q.injected)).toEqual([]);
    // The dump went up as a multipart upload: several parts, completed at R2.
    const parts = r2Requests.filter((q) => q.method === 'PUT' && /[?&]partNumber=/.test(q.url));
    expect(parts.length).toBeGreaterThanOrEqual(2);
    expect(
      r2Requests.filter(
        (q) => q.method === 'POST' && /[?&]uploadId=/.test(q.url) && q.status === 200,
      ),
    ).toHaveLength(1);
  });

  it('list: the backup, complete at both', async () => {
    const r = await pgdr({ command: 'list', format: 'json' });
    const report = JSON.parse(r.outputs.report as string);
    expect(report.unreachable).toEqual({});
    const b = report.backups.find((x: { id: string }) => x.id === firstId);
    expect(b).toMatchObject({ complete: true });
    expect(
      b.destinations.map((d: { name: string; complete: boolean }) => [d.name, d.complete]),
    ).toEqual([
      ['b2', true],
      ['r2', true],
    ]);
  });

  it.each(['checksum', 'decrypt', 'restore'] as const)(
    'verify at level %s: ok at both',
    async (level) => {
      const drill = level === 'restore' ? await pg.createDatabase('drill') : '';
      const r = await pgdr({
        command: 'verify',
        'backup-id': firstId,
        'verify-level': level,
        ...(level === 'checksum' ? {} : { 'age-identity': identity }),
        ...(level === 'restore' ? { 'drill-database-url': drill } : {}),
      });
      expect(r.outputs.status).toBe('ok');
      const report = JSON.parse(r.outputs.report as string);
      expect(
        report.verifications.map((v: { destination: string; ok: boolean }) => [
          v.destination,
          v.ok,
        ]),
      ).toEqual([
        ['b2', true],
        ['r2', true],
      ]);
      if (level === 'restore')
        expect(report.verifications[0].drill).toMatchObject({
          ok: true,
          tables: Object.keys(source).length,
          mismatches: [],
        });
    },
  );

  it.each(['b2', 'r2'] as const)('restore from %s: every row back', async (from) => {
    const database = `restored_from_${from}`;
    const target = await pg.createDatabase(database);
    const r = await pgdr({
      command: 'restore',
      'backup-id': firstId,
      'restore-from': from,
      'database-url': target,
      'age-identity': identity,
      'config-dir': join(work, `config-${from}`),
    });
    expect(JSON.parse(r.outputs.report as string)).toMatchObject({
      ok: true,
      restoredFrom: from,
      mismatches: [],
    });
    expect(await tableRowCounts(pg, database)).toEqual(source);
  });

  it('monitor: every check ok, no alert opened', async () => {
    const r = await pgdr({ command: 'monitor' });
    const report = JSON.parse(r.outputs.report as string);
    expect(r.outputs.status, JSON.stringify(report.checks, null, 2)).toBe('ok');
    expect(report.checks.filter((c: { state: string }) => c.state === 'alert')).toEqual([]);
    expect(report.storage.b2.backups).toBeGreaterThanOrEqual(1);
    expect(report.storage.r2.backups).toBeGreaterThanOrEqual(1);
    expect(api.state.issues.filter((i) => i.state === 'open')).toEqual([]);
  });
});

describe('prune under the profiles', () => {
  /** Keeps only the newest backup by policy (the rails keep the only verified one too). */
  const PRUNE = {
    command: 'prune',
    'keep-last': '1',
    'keep-daily': '0',
    'keep-weekly': '0',
    'keep-monthly': '0',
    'keep-yearly': '0',
  };

  interface PruneRun {
    report: {
      ok: boolean;
      destinations: { destination: string; backups: { id: string; result: string }[] }[];
    };
    doomed: string;
    newest: string;
  }
  let first: PruneRun;

  /** Two more backups, then prune: the middle one goes (the first is the only verified one). */
  async function backupsThenPrune(): Promise<PruneRun> {
    const doomed = await backup();
    const newest = await backup();
    const r = await runPgDr({ ...destinations(), ...PRUNE }, env());
    return { report: JSON.parse(r.outputs.report as string), doomed, newest };
  }

  async function expectPruned(run: PruneRun, destination: 'b2' | 'r2'): Promise<void> {
    const at = run.report.destinations.find((d) => d.destination === destination);
    const results = Object.fromEntries((at?.backups ?? []).map((b) => [b.id, b.result]));
    expect(results[run.doomed], JSON.stringify(at, null, 2)).toBe('deleted');
    expect(results[run.newest]).toBe('kept');
    expect(results[firstId]).toBe('kept');
    const [server, bucket] =
      destination === 'b2'
        ? [s3.primary, PRIMARY_BUCKET]
        : ([s3.secondary, SECONDARY_BUCKET] as const);
    expect(await server.listKeys(bucket, `disaster_recovery/${run.doomed}/`)).toEqual([]);
    expect(await server.listKeys(bucket, `disaster_recovery/${run.newest}/`)).toContain(
      `disaster_recovery/${run.newest}/manifest.json`,
    );
  }

  it('prune deletes at the R2-profile destination (DeleteObjects)', async () => {
    first = await backupsThenPrune();
    await expectPruned(first, 'r2');
  });

  // BUG (src/storage/s3/errors.ts, BATCH_UNSUPPORTED): the SDK sends DeleteObjects with
  // x-amz-sdk-checksum-algorithm + x-amz-checksum-crc32 even with WHEN_REQUIRED (the call
  // requires a checksum); B2 answers 400 InvalidArgument "Unsupported header …", which is
  // not among the codes that fall back to single deletes, so every object but the
  // manifest stays and prune reports "delete failed".
  it('prune deletes at the B2-profile destination', async () => {
    await expectPruned(first, 'b2');
    expect(first.report.ok).toBe(true);
  });

  it('without DeleteObjects (501 NotImplemented at both): prune falls back to single deletes', async () => {
    b2.noBatchDelete = true;
    r2.noBatchDelete = true;
    // The B2 header rule would refuse the batch call first (see the bug above): here the
    // store's only quirk is the missing DeleteObjects.
    b2.setProfile(null);
    try {
      const before = { b2: b2.requests.length, r2: r2.requests.length };
      const run = await backupsThenPrune();
      await expectPruned(run, 'b2');
      await expectPruned(run, 'r2');
      for (const [proxy, from] of [
        [b2, before.b2],
        [r2, before.r2],
      ] as const) {
        const seen = proxy.requests.slice(from);
        expect(seen.filter((q) => q.injected === 'no-batch-delete').length).toBeGreaterThan(0);
        expect(
          seen.filter((q) => q.method === 'DELETE' && q.status === 204).length,
        ).toBeGreaterThanOrEqual(2);
      }
    } finally {
      b2.noBatchDelete = false;
      r2.noBatchDelete = false;
      b2.setProfile('b2');
    }
  });
});
