import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { Destination, RunningUpload, StoredObject } from '../destination.js';
import { bucketMissing, bucketUnreachable, withoutSecret } from '../messages.js';
import type { UploadShape } from '../part-size.js';
import type { DestinationSettings } from '../settings.js';
import { createS3Client } from './client.js';
import { purgeObjects } from './delete.js';
import { describeS3Error, diagnoseS3Error, isNoSuchBucket, isNoSuchKey } from './errors.js';
import { etagOf, uploadStream } from './multipart.js';

/** A bucket at an S3-compatible store (Backblaze B2, Cloudflare R2, AWS, MinIO, s3rver). */
class S3Destination implements Destination {
  private readonly Bucket: string;

  constructor(
    readonly settings: DestinationSettings,
    private readonly client: S3Client,
  ) {
    this.Bucket = settings.bucket;
  }

  async check(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.Bucket }));
    } catch (e) {
      if (isNoSuchBucket(e)) throw bucketMissing(this.settings);
      throw bucketUnreachable(this.settings, this.describeError(e));
    }
  }

  upload(key: string, body: Readable, shape: UploadShape, contentType: string): RunningUpload {
    return uploadStream(
      this.client,
      { Bucket: this.Bucket, Key: key, ContentType: contentType },
      body,
      shape,
    );
  }

  async put(key: string, body: Uint8Array | string, contentType: string) {
    const out = await this.client.send(
      new PutObjectCommand({ Bucket: this.Bucket, Key: key, Body: body, ContentType: contentType }),
    );
    return { etag: etagOf(out.ETag) };
  }

  async get(key: string): Promise<Readable> {
    const out = await this.client.send(new GetObjectCommand({ Bucket: this.Bucket, Key: key }));
    return out.Body as Readable;
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    let token: string | undefined;
    do {
      const out = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.Bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const o of out.Contents ?? [])
        if (o.Key) yield { key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified };
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  }

  async remove(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.Bucket, Key: key }));
  }

  purge(request: Parameters<Destination['purge']>[0]) {
    return purgeObjects(this.client, this.Bucket, request);
  }

  describeError(e: unknown): string {
    return withoutSecret(describeS3Error(e), this.settings);
  }

  isNotFound(e: unknown): boolean {
    return isNoSuchKey(e);
  }

  diagnose(e: unknown) {
    return diagnoseS3Error(e);
  }
}

/** The S3 destination; a test may hand in its own client. */
export function createS3Destination(
  settings: DestinationSettings,
  client: S3Client = createS3Client(settings),
): Destination {
  return new S3Destination(settings, client);
}
