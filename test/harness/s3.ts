import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import S3rver from 's3rver';

/** A local S3-compatible server (s3rver) with its own temp directory. */
export interface S3Server {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  readonly port: number;
  readonly region: string;
  /** s3rver's public default credentials (not a secret). */
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Where s3rver stores buckets and objects. */
  readonly directory: string;
  readonly buckets: readonly string[];
  /** A client configured the way s3rver needs it (path style, checksums only when required). */
  client(): S3Client;
  getObject(bucket: string, key: string): Promise<Buffer>;
  putObject(bucket: string, key: string, body: Buffer): Promise<void>;
  /** Every key in the bucket (all pages), optionally under a prefix, sorted. */
  listKeys(bucket: string, prefix?: string): Promise<string[]>;
  /** Closes the server and removes its directory. Safe to call more than once. */
  stop(): Promise<void>;
}

export interface S3Pair {
  /** Bucket `pgdr-primary`. */
  readonly primary: S3Server;
  /** Bucket `pgdr-secondary`. */
  readonly secondary: S3Server;
  stop(): Promise<void>;
}

export interface StartS3Options {
  buckets: string[];
  /** Label used in the temp directory name. */
  name?: string;
}

export const PRIMARY_BUCKET = 'pgdr-primary';
export const SECONDARY_BUCKET = 'pgdr-secondary';

const ACCESS_KEY_ID = 'S3RVER';
const SECRET_ACCESS_KEY = 'S3RVER';
const REGION = 'us-east-1';

/** sha256 hex of a buffer; handy for byte-for-byte comparisons in tests. */
export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function startS3(opts: StartS3Options): Promise<S3Server> {
  const label = (opts.name ?? 's3').replace(/[^A-Za-z0-9_-]/g, '_');
  const directory = await mkdtemp(join(tmpdir(), `pg-dr-${label}-`));
  const server = new S3rver({
    address: '127.0.0.1',
    // Port 0: the OS picks a free port atomically (no probe-then-bind race).
    port: 0,
    silent: true,
    directory,
    configureBuckets: opts.buckets.map((name) => ({ name })),
  });
  let port: number;
  try {
    ({ port } = await server.run());
  } catch (err) {
    await rm(directory, { recursive: true, force: true });
    throw err;
  }
  const endpoint = `http://127.0.0.1:${port}`;
  const clients: S3Client[] = [];

  const client = (): S3Client => {
    const created = new S3Client({
      endpoint,
      region: REGION,
      credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY },
      forcePathStyle: true,
      // s3rver mishandles aws-chunked bodies with trailing checksums (silently stores
      // corrupted objects for streamed PutObject): only send checksums when required.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    clients.push(created);
    return created;
  };
  let internal: S3Client | undefined;
  const own = (): S3Client => {
    internal ??= client();
    return internal;
  };

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      for (const c of clients) c.destroy();
      server.httpServer?.closeAllConnections();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    })();
    return stopping;
  };

  return {
    endpoint,
    port,
    region: REGION,
    accessKeyId: ACCESS_KEY_ID,
    secretAccessKey: SECRET_ACCESS_KEY,
    directory,
    buckets: [...opts.buckets],
    client,
    async getObject(bucket: string, key: string): Promise<Buffer> {
      const response = await own().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      if (response.Body === undefined) throw new Error(`GetObject ${bucket}/${key}: no body`);
      return Buffer.from(await response.Body.transformToByteArray());
    },
    async putObject(bucket: string, key: string, body: Buffer): Promise<void> {
      await own().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    },
    async listKeys(bucket: string, prefix?: string): Promise<string[]> {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await own().send(
          new ListObjectsV2Command({
            Bucket: bucket,
            ...(prefix === undefined ? {} : { Prefix: prefix }),
            ...(token === undefined ? {} : { ContinuationToken: token }),
          }),
        );
        for (const object of page.Contents ?? []) {
          if (object.Key !== undefined) keys.push(object.Key);
        }
        token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
      } while (token !== undefined);
      return keys.sort();
    },
    stop,
  };
}

/** Two independent servers standing in for the two clouds. */
export async function startS3Pair(): Promise<S3Pair> {
  const [first, second] = await Promise.allSettled([
    startS3({ buckets: [PRIMARY_BUCKET], name: 's3-primary' }),
    startS3({ buckets: [SECONDARY_BUCKET], name: 's3-secondary' }),
  ]);
  // If one fails, do not leave the other running.
  if (first.status === 'rejected') {
    if (second.status === 'fulfilled') await second.value.stop();
    throw first.reason;
  }
  if (second.status === 'rejected') {
    await first.value.stop();
    throw second.reason;
  }
  const primary = first.value;
  const secondary = second.value;
  return {
    primary,
    secondary,
    async stop(): Promise<void> {
      await Promise.all([primary.stop(), secondary.stop()]);
    },
  };
}
