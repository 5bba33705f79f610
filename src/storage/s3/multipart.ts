import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { RunningUpload } from '../destination.js';
import { InFlightControl } from '../in-flight.js';
import type { UploadShape } from '../part-size.js';

export interface ObjectParams {
  readonly Bucket: string;
  readonly Key: string;
  readonly ContentType: string;
}

interface Part {
  readonly data: Buffer;
  /** No byte follows it. */
  readonly last: boolean;
}

/**
 * Cuts a stream into parts of exactly `partSize` bytes (the last may be shorter; Cloudflare
 * R2 requires every other part to be the same size). Reads only when asked, so at most one
 * part is filling while the others are in flight. Each part's buffer comes from `alloc`
 * (a part size long), so the caller can hand back the buffers of parts already stored.
 */
export async function* partsOf(
  body: Readable,
  partSize: number,
  alloc: () => Buffer = () => Buffer.allocUnsafe(partSize),
): AsyncGenerator<Part> {
  let part = alloc();
  let filled = 0;
  const it = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let pending: Buffer | null = null;
  for (;;) {
    const chunk: Buffer | undefined = pending ?? (await it.next()).value;
    pending = null;
    if (chunk === undefined) {
      yield { data: part.subarray(0, filled), last: true };
      return;
    }
    const n = Math.min(chunk.length, partSize - filled);
    chunk.copy(part, filled, 0, n);
    filled += n;
    if (n < chunk.length) pending = chunk.subarray(n);
    if (filled < partSize) continue;
    if (!pending) {
      const next = await it.next();
      if (next.done) {
        yield { data: part, last: true };
        return;
      }
      pending = next.value;
    }
    yield { data: part, last: false };
    part = alloc();
    filled = 0;
  }
}

/**
 * Streams `body` to one object: a single PutObject when it fits in one part, else a
 * multipart upload whose parts in flight follow the link (InFlightControl). Nothing is
 * stored unless the body ends cleanly; on any failure or abort the multipart upload is
 * aborted so no parts are left behind. (lib-storage's Upload fixes its parts in flight when
 * it starts; fitting them to a long path needs them to change during the upload.)
 */
export function uploadStream(
  client: S3Client,
  params: ObjectParams,
  body: Readable,
  shape: UploadShape,
): RunningUpload {
  const upload = new PartUpload(client, params, body, shape);
  const done = upload.run().catch(async (e: unknown) => {
    await upload.abortParts();
    throw e;
  });
  // The caller may never await done when it aborts; the rejection is still handled here.
  done.catch(() => undefined);
  let aborting: Promise<void> | null = null;
  return {
    done,
    uploadedBytes: () => upload.uploaded,
    abort: () => {
      aborting ??= (async () => {
        upload.cancel.abort();
        body.destroy();
        await done.catch(() => undefined);
        await upload.abortParts();
      })();
      return aborting;
    },
  };
}

class PartUpload {
  readonly cancel = new AbortController();
  uploaded = 0;
  private readonly control: InFlightControl;
  private uploadId: string | undefined;
  private failure: unknown = null;
  /**
   * Buffers of parts already stored, filled again for the next parts: the memory is
   * (parts in flight + 1) × part size, not whatever garbage the collector has not freed yet.
   */
  private readonly spare: Buffer[] = [];
  /** Part buffers made and not let go: at most the parts allowed in flight + 1 kept. */
  private buffers = 0;

  constructor(
    private readonly client: S3Client,
    private readonly params: ObjectParams,
    private readonly body: Readable,
    private readonly shape: UploadShape,
  ) {
    this.control = new InFlightControl(shape.queueSize, shape.maxInFlight);
  }

  private get opts() {
    return { abortSignal: this.cancel.signal };
  }

  async run(): Promise<{ etag: string; partsInFlight: number }> {
    const { partSize } = this.shape;
    const parts = partsOf(this.body, partSize, () => this.spare.pop() ?? this.newBuffer());
    const first = await parts.next();
    if (first.done) throw new Error('the upload stream yielded nothing');
    const { data } = first.value;
    if (first.value.last) {
      const out = await this.client.send(
        new PutObjectCommand({ ...this.params, Body: data, ContentLength: data.length }),
        this.opts,
      );
      this.uploaded = data.length;
      return { etag: etagOf(out.ETag), partsInFlight: 1 };
    }
    const created = await this.client.send(
      new CreateMultipartUploadCommand(this.params),
      this.opts,
    );
    this.uploadId = created.UploadId;
    if (!this.uploadId) throw new Error('the store returned no UploadId');
    const done = await this.sendParts(first.value, parts);
    if (this.cancel.signal.aborted) throw new Error('upload aborted');
    const out = await this.client.send(
      new CompleteMultipartUploadCommand({
        ...bucketKey(this.params),
        UploadId: this.uploadId,
        MultipartUpload: { Parts: done },
      }),
      this.opts,
    );
    this.uploadId = undefined;
    return { etag: etagOf(out.ETag), partsInFlight: this.control.peak };
  }

  private newBuffer(): Buffer {
    this.buffers++;
    return Buffer.allocUnsafe(this.shape.partSize);
  }

  /** Keeps a stored part's buffer for the next part, unless the limit went down since. */
  private release(buffer: Buffer): void {
    if (this.buffers > this.control.limit + 1) this.buffers--;
    else this.spare.push(buffer);
  }

  /** Aborts the multipart upload, if one was started and not completed; never rejects. */
  async abortParts(): Promise<void> {
    const id = this.uploadId;
    if (!id) return;
    this.uploadId = undefined;
    await this.client
      .send(new AbortMultipartUploadCommand({ ...bucketKey(this.params), UploadId: id }))
      .catch(() => undefined);
  }

  /** Stops every part: one failed for good (after the client's retries) or the body did. */
  private fail(e: unknown): void {
    this.failure ??= e;
    this.cancel.abort();
  }

  /** Uploads every part, at most control.limit at once; resolves with them in order. */
  private async sendParts(first: Part, rest: AsyncGenerator<Part>) {
    const done: { PartNumber: number; ETag: string }[] = [];
    const inFlight = new Set<Promise<void>>();
    let part: Part | undefined = first;
    for (let number = 1; part && this.failure === null; number++) {
      while (inFlight.size >= this.control.limit && this.failure === null) {
        this.control.stalled();
        await Promise.race(inFlight);
      }
      if (this.failure !== null) break;
      const p: Promise<void> = this.sendPart(number, part, done).finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (part.last) break;
      // The body failing (the dump died, the run was cancelled) means nothing may complete.
      part = await rest.next().then(
        (r) => r.value,
        (e: unknown) => void this.fail(e),
      );
    }
    await Promise.all(inFlight);
    if (this.failure !== null) throw this.failure;
    return done.sort((a, b) => a.PartNumber - b.PartNumber);
  }

  private async sendPart(
    PartNumber: number,
    part: Part,
    done: { PartNumber: number; ETag: string }[],
  ): Promise<void> {
    const level = this.control.limit;
    const t0 = Date.now();
    try {
      const out = await this.client.send(
        new UploadPartCommand({
          ...bucketKey(this.params),
          UploadId: this.uploadId,
          PartNumber,
          Body: part.data,
          ContentLength: part.data.length,
        }),
        this.opts,
      );
      done.push({ PartNumber, ETag: etagOf(out.ETag) });
      this.uploaded += part.data.length;
      this.control.finished(part.data.length, Date.now() - t0, level);
      // The request is answered: the client no longer reads the body (a retry happens inside send).
      if (!part.last) this.release(part.data);
    } catch (e) {
      this.fail(e);
    }
  }
}

const bucketKey = (p: ObjectParams) => ({ Bucket: p.Bucket, Key: p.Key });

export const etagOf = (raw: string | undefined): string => String(raw ?? '').replace(/"/g, '');
