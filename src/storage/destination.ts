import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { InputError } from '../errors.js';
import { createS3Client, type DestinationSettings } from './client.js';
import type { UploadShape } from './part-size.js';

export interface StoredObject {
  readonly key: string;
  readonly size: number;
  readonly lastModified: Date | undefined;
}

export interface RunningUpload {
  /** Resolves with the ETag once the object is fully stored. */
  readonly done: Promise<{ etag: string }>;
  /** Bytes acknowledged by the server so far. */
  uploadedBytes(): number;
  abort(): Promise<void>;
}

/** An S3-compatible bucket, behind the operations pg-dr needs. */
export interface Destination {
  readonly settings: DestinationSettings;
  /** The S3 client itself, for operations beyond this interface (versioned deletes). */
  readonly client: S3Client;
  /** Fails with an InputError when the bucket does not exist, a plain error when unreachable. */
  check(): Promise<void>;
  upload(key: string, body: Readable, shape: UploadShape, contentType: string): RunningUpload;
  put(key: string, body: Uint8Array | string, contentType: string): Promise<{ etag: string }>;
  get(key: string): Promise<Readable>;
  list(prefix: string): AsyncIterable<StoredObject>;
  remove(key: string): Promise<void>;
}

/** A short, secret-free reason from an SDK error: code, HTTP status, message. */
export function describeS3Error(e: unknown): string {
  const err = e as {
    name?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
    code?: string;
  };
  const status = err.$metadata?.httpStatusCode;
  const code = err.code ?? err.name ?? 'Error';
  const msg =
    err.message && err.message !== code && err.message !== 'UnknownError' ? `: ${err.message}` : '';
  return `${code}${status ? ` (HTTP ${status})` : ''}${msg}`;
}

export function createDestination(
  settings: DestinationSettings,
  client: S3Client = createS3Client(settings),
): Destination {
  const Bucket = settings.bucket;
  return {
    settings,
    client,
    async check() {
      try {
        await client.send(new HeadBucketCommand({ Bucket }));
      } catch (e) {
        const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        if (
          status === 404 ||
          (e as { name?: string }).name === 'NotFound' ||
          (e as { name?: string }).name === 'NoSuchBucket'
        ) {
          throw new InputError(
            `${settings.role}-bucket`,
            `Invalid '${settings.role}-bucket': bucket "${Bucket}" does not exist at ${new URL(settings.endpoint).host}. Expected an existing bucket.`,
          );
        }
        throw new Error(`${settings.name}: cannot reach bucket "${Bucket}": ${describeS3Error(e)}`);
      }
    },
    upload(key, body, shape, contentType) {
      const upload = new Upload({
        client,
        params: { Bucket, Key: key, Body: body, ContentType: contentType },
        partSize: shape.partSize,
        queueSize: shape.queueSize,
        leavePartsOnError: false,
      });
      let uploaded = 0;
      upload.on('httpUploadProgress', (p) => {
        if (typeof p.loaded === 'number') uploaded = p.loaded;
      });
      const done = upload
        .done()
        .then((out) => ({ etag: String(out.ETag ?? '').replace(/"/g, '') }));
      return {
        done,
        uploadedBytes: () => uploaded,
        abort: () => upload.abort().catch(() => undefined),
      };
    },
    async put(key, body, contentType) {
      const out = await client.send(
        new PutObjectCommand({ Bucket, Key: key, Body: body, ContentType: contentType }),
      );
      return { etag: String(out.ETag ?? '').replace(/"/g, '') };
    },
    async get(key) {
      const out = await client.send(new GetObjectCommand({ Bucket, Key: key }));
      return out.Body as Readable;
    },
    async *list(prefix) {
      let token: string | undefined;
      do {
        const out = await client.send(
          new ListObjectsV2Command({ Bucket, Prefix: prefix, ContinuationToken: token }),
        );
        for (const o of out.Contents ?? [])
          if (o.Key) yield { key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified };
        token = out.IsTruncated ? out.NextContinuationToken : undefined;
      } while (token);
    },
    async remove(key) {
      await client.send(new DeleteObjectCommand({ Bucket, Key: key }));
    },
  };
}
