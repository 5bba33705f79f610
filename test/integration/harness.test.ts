import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEED_ROW_COUNTS, seedDatabase, tableRowCounts } from '../harness/fixtures.js';
import { isPortOpen } from '../harness/ports.js';
import { type PgCluster, startPostgres } from '../harness/postgres.js';
import {
  PRIMARY_BUCKET,
  type S3Pair,
  type S3Server,
  SECONDARY_BUCKET,
  sha256,
  startS3,
  startS3Pair,
} from '../harness/s3.js';
import { hasBinary, requireBinary } from '../harness/tools.js';

describe('postgres harness', () => {
  let cluster: PgCluster;

  beforeAll(async () => {
    cluster = await startPostgres({ name: 'harness' });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('listens on 127.0.0.1 only, with a password that needs URL-encoding', async () => {
    expect(cluster.host).toBe('127.0.0.1');
    expect(cluster.password).toMatch(/[@/%:]/);
    expect(cluster.url()).toContain(encodeURIComponent(cluster.password));
    expect(cluster.url('app')).toMatch(/^postgresql:\/\/postgres:[^@/]+@127\.0\.0\.1:\d+\/app$/);

    const [settings] = await cluster.query<{ listen: string; fsync: string }>(
      'postgres',
      `SELECT current_setting('listen_addresses') AS listen, current_setting('fsync') AS fsync`,
    );
    expect(settings).toEqual({ listen: '127.0.0.1', fsync: 'off' });
  });

  it('accepts the URL (password decoded) and enforces SCRAM for TCP connections', async () => {
    const viaUrl = new pg.Client({ connectionString: cluster.url() });
    await viaUrl.connect();
    try {
      const { rows } = await viaUrl.query<{ user: string; addr: string; version: string }>(
        `SELECT current_user AS user, host(inet_server_addr()) AS addr,
                current_setting('server_version_num') AS version`,
      );
      expect(rows[0]?.user).toBe('postgres');
      expect(rows[0]?.addr).toBe('127.0.0.1');
      expect(Number(rows[0]?.version)).toBeGreaterThanOrEqual(150000);
    } finally {
      await viaUrl.end();
    }

    const rules = await cluster.query<{ auth_method: string }>(
      'postgres',
      `SELECT DISTINCT auth_method FROM pg_hba_file_rules WHERE type = 'host'`,
    );
    expect(rules).toEqual([{ auth_method: 'scram-sha-256' }]);

    const wrong = new pg.Client({
      host: cluster.host,
      port: cluster.port,
      user: cluster.user,
      password: `${cluster.password}x`,
      database: 'postgres',
    });
    await expect(wrong.connect()).rejects.toThrow(/password authentication failed/);
    await wrong.end().catch(() => undefined);
  });

  it('seeds a mixed schema whose counts match an exact recount', async () => {
    await cluster.createDatabase('app');
    const seeded = await seedDatabase(cluster, 'app');
    expect(seeded).toEqual(SEED_ROW_COUNTS);
    expect(seeded['public.orders']).toBe(20_000);
    expect(seeded['public.audit_log']).toBe(0);
    expect(await tableRowCounts(cluster, 'app')).toEqual(seeded);

    const [blobs] = await cluster.query<{ bytes: string; distinct: string }>(
      'app',
      `SELECT sum(octet_length(content))::bigint AS bytes,
              count(DISTINCT content_sha256) AS distinct
         FROM public.attachments`,
    );
    expect(Number(blobs?.bytes)).toBe(64 * 32 * 1024);
    expect(Number(blobs?.distinct)).toBe(64);

    const emoji = await cluster.query<{ n: string }>(
      'app',
      `SELECT count(*) AS n FROM public.customers WHERE name LIKE '%🚀%'`,
    );
    expect(Number(emoji[0]?.n)).toBeGreaterThan(0);

    // The recount really counts: a new row shows up.
    await cluster.query('app', `INSERT INTO public."MixedCase" ("Id", "Value") VALUES ($1, $2)`, [
      1_000,
      'extra',
    ]);
    const recount = await tableRowCounts(cluster, 'app');
    expect(recount['public.MixedCase']).toBe((SEED_ROW_COUNTS['public.MixedCase'] ?? 0) + 1);
  });

  it('stop() shuts the server down and removes its directory, idempotently', async () => {
    const other = await startPostgres({ name: 'stop-test' });
    const baseDir = dirname(other.dataDir);
    expect(await isPortOpen(other.port)).toBe(true);
    expect(existsSync(other.dataDir)).toBe(true);

    await other.stop();
    expect(existsSync(baseDir)).toBe(false);
    expect(await isPortOpen(other.port)).toBe(false);
    await expect(other.stop()).resolves.toBeUndefined();
  });
});

/** `total` random bytes as a Readable of uneven chunks (no known length), plus their sha256. */
function randomStream(total: number): { stream: Readable; digest: () => string } {
  const hash = createHash('sha256');
  let left = total;
  function* chunks(): Generator<Buffer> {
    while (left > 0) {
      const size = Math.min(left, 1 + Math.floor(Math.random() * 256 * 1024));
      const chunk = randomBytes(size);
      hash.update(chunk);
      left -= size;
      yield chunk;
    }
  }
  let hex: string | undefined;
  return {
    stream: Readable.from(chunks()),
    digest: () => {
      hex ??= hash.digest('hex');
      return hex;
    },
  };
}

describe('s3 harness', () => {
  let pair: S3Pair;

  beforeAll(async () => {
    pair = await startS3Pair();
  });
  afterAll(async () => {
    await pair?.stop();
  });

  const servers: ReadonlyArray<[string, () => S3Server, string]> = [
    ['primary', () => pair.primary, PRIMARY_BUCKET],
    ['secondary', () => pair.secondary, SECONDARY_BUCKET],
  ];

  it.each(servers)('%s round-trips streamed uploads byte for byte', async (_, get, bucket) => {
    const server = get();
    expect(server.endpoint).toBe(`http://127.0.0.1:${server.port}`);
    const client = server.client();
    // Above the 5 MiB part size: multipart. Below: a single streamed PutObject.
    for (const [key, size] of [
      ['big/multipart.bin', 5 * 1024 * 1024 + 333_333],
      ['small/single.bin', 1024 * 1024 + 7],
    ] as const) {
      const { stream, digest } = randomStream(size);
      const upload = new Upload({
        client,
        params: { Bucket: bucket, Key: key, Body: stream },
        partSize: 5 * 1024 * 1024,
        queueSize: 2,
      });
      await upload.done();
      const downloaded = await server.getObject(bucket, key);
      expect(downloaded.length).toBe(size);
      expect(sha256(downloaded)).toBe(digest());
    }
    expect(await server.listKeys(bucket, 'big/')).toEqual(['big/multipart.bin']);
    expect(await server.listKeys(bucket, 'small/')).toEqual(['small/single.bin']);
  });

  it.each(servers)(
    '%s stores a streamed PutObject intact (checksum config)',
    async (_, get, bucket) => {
      // With the SDK's default checksums this body goes out aws-chunked and s3rver stores the
      // chunk framing as data: this test fails unless client() sets WHEN_REQUIRED.
      const server = get();
      const size = 3 * 1024 * 1024 + 5;
      const { stream, digest } = randomStream(size);
      await server.client().send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: 'streamed/put.bin',
          Body: stream,
          ContentLength: size,
        }),
      );
      const downloaded = await server.getObject(bucket, 'streamed/put.bin');
      expect(downloaded.length).toBe(size);
      expect(sha256(downloaded)).toBe(digest());
    },
  );

  it('keeps the two servers independent and supports put/list with a prefix', async () => {
    const body = Buffer.from('hello ✓\n');
    await pair.primary.putObject(PRIMARY_BUCKET, 'only-primary/a.txt', body);
    expect(await pair.primary.getObject(PRIMARY_BUCKET, 'only-primary/a.txt')).toEqual(body);
    expect(await pair.primary.listKeys(PRIMARY_BUCKET, 'only-primary/')).toEqual([
      'only-primary/a.txt',
    ]);
    expect(await pair.secondary.listKeys(SECONDARY_BUCKET, 'only-primary/')).toEqual([]);
    expect(pair.primary.port).not.toBe(pair.secondary.port);
    expect(pair.primary.directory).not.toBe(pair.secondary.directory);
  });

  it('stop() closes the port and removes the directory, idempotently', async () => {
    const server = await startS3({ buckets: ['scratch'] });
    await server.putObject('scratch', 'k', Buffer.from('v'));
    expect(await isPortOpen(server.port)).toBe(true);
    expect(existsSync(server.directory)).toBe(true);

    await server.stop();
    expect(existsSync(server.directory)).toBe(false);
    expect(await isPortOpen(server.port)).toBe(false);
    await expect(server.stop()).resolves.toBeUndefined();
  });
});

describe('tool helpers', () => {
  it('finds installed binaries and names the Debian package for missing ones', () => {
    expect(hasBinary('sh')).toBe(true);
    expect(requireBinary('sh')).toMatch(/\/sh$/);
    expect(hasBinary('pg-dr-no-such-binary')).toBe(false);
    expect(() => requireBinary('pg-dr-no-such-binary')).toThrow(/pg-dr-no-such-binary/);
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      expect(() => requireBinary('age')).toThrow(/apt-get install -y age\b/);
      expect(() => requireBinary('pg_restore')).toThrow(/postgresql-client-15/);
    } finally {
      process.env.PATH = path;
    }
  });
});
