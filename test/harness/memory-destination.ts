import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkPurgeRequest, type DeleteReport } from '../../src/storage/delete.js';
import type {
  Destination,
  DestinationSettings,
  RunningUpload,
  StoredObject,
} from '../../src/storage/destination.js';
import { bucketMissing, bucketUnreachable, withoutSecret } from '../../src/storage/messages.js';

/** An error of the in-memory store, shaped like an S3 one: a code and an HTTP status. */
export class MemoryStoreError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = code;
  }
}

interface MemoryObject {
  readonly data: Buffer;
  readonly contentType: string;
  readonly lastModified: Date;
}

/** Buckets held in memory, and the one secret key they accept. */
export class MemoryStore {
  readonly buckets = new Map<string, Map<string, MemoryObject>>();
  constructor(
    bucketNames: readonly string[] = ['dr'],
    readonly secretAccessKey = 'secret',
  ) {
    for (const b of bucketNames) this.buckets.set(b, new Map());
  }
}

export interface MemoryDestinationOptions {
  /** The upload fails (InternalError, HTTP 500) once it has read this many bytes. */
  readonly failAfter?: number;
  /** Shared with other destinations; by default one of its own holding the bucket. */
  readonly store?: MemoryStore;
  /** Replaces fields of the default settings (bucket `dr`, secret `secret`). */
  readonly settings?: Partial<DestinationSettings>;
}

/** What a test can look at besides the bucket. */
export interface MemoryState {
  /** An upload was aborted. */
  aborted: boolean;
  /** Bytes the uploads read. */
  received: number;
  /** Content type of the last upload. */
  contentType: string;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * A destination held in memory, a full `Destination` that passes the contract suite
 * (test/harness/destination-contract.ts). Unversioned: `purge` is plain deletes.
 */
export function memoryDestination(name: string, options: MemoryDestinationOptions = {}) {
  const store = options.store ?? new MemoryStore([options.settings?.bucket ?? 'dr']);
  const settings: DestinationSettings = {
    name,
    role: 'primary',
    endpoint: `https://${name}.example.com`,
    region: 'auto',
    bucket: 'dr',
    accessKeyId: 'id',
    secretAccessKey: 'secret',
    forcePathStyle: true,
    ...options.settings,
  };
  const state: MemoryState = { aborted: false, received: 0, contentType: '' };

  /** The bucket, once the request is allowed; throws as the store would. */
  const bucket = (): Map<string, MemoryObject> => {
    if (settings.secretAccessKey !== store.secretAccessKey)
      throw new MemoryStoreError(
        'SignatureDoesNotMatch',
        403,
        'The request signature we calculated does not match the signature you provided.',
      );
    const b = store.buckets.get(settings.bucket);
    if (!b) throw new MemoryStoreError('NoSuchBucket', 404, 'The specified bucket does not exist');
    return b;
  };
  const save = (key: string, data: Buffer, contentType: string) => {
    bucket().set(key, { data, contentType, lastModified: new Date() });
    return { etag: sha256(data).slice(0, 32) };
  };

  const destination: Destination = {
    settings,
    async check() {
      try {
        bucket();
      } catch (e) {
        if (e instanceof MemoryStoreError && e.code === 'NoSuchBucket')
          throw bucketMissing(settings);
        throw bucketUnreachable(settings, destination.describeError(e));
      }
    },
    upload(key, body, _shape, contentType): RunningUpload {
      state.contentType = contentType;
      let aborted = false;
      let abort = () => undefined as unknown;
      const stopped = new Promise<never>((_, reject) => {
        abort = () => reject(new MemoryStoreError('AbortError', 0, 'Upload aborted.'));
      });
      const read = (async () => {
        bucket();
        const parts: Buffer[] = [];
        for await (const c of body) {
          parts.push(c as Buffer);
          state.received += (c as Buffer).length;
          if (options.failAfter !== undefined && state.received >= options.failAfter)
            throw new MemoryStoreError('InternalError', 500, 'We encountered an internal error.');
          await sleep(0);
        }
        if (aborted) throw new MemoryStoreError('AbortError', 0, 'Upload aborted.');
        return save(key, Buffer.concat(parts), contentType);
      })();
      const done = Promise.race([read, stopped]);
      done.catch(() => undefined);
      return {
        done,
        uploadedBytes: () => state.received,
        async abort() {
          aborted = true;
          state.aborted = true;
          abort();
        },
      };
    },
    async put(key, body, contentType) {
      return save(key, Buffer.from(body), contentType);
    },
    async get(key) {
      const o = bucket().get(key);
      if (!o) throw new MemoryStoreError('NoSuchKey', 404, 'The specified key does not exist.');
      return Readable.from([o.data]);
    },
    async *list(prefix): AsyncIterable<StoredObject> {
      const b = bucket();
      for (const key of [...b.keys()].filter((k) => k.startsWith(prefix)).sort()) {
        const o = b.get(key);
        if (o) yield { key, size: o.data.length, lastModified: o.lastModified };
      }
    },
    async remove(key) {
      bucket().delete(key);
    },
    async purge(request): Promise<DeleteReport> {
      checkPurgeRequest(request);
      const b = bucket();
      const keys = [...new Set([request.first, ...request.keys])];
      for (const k of keys) b.delete(k);
      return { deleted: keys, locked: [], failed: [], skipped: [], versioned: false, notes: [] };
    },
    describeError(e) {
      const text =
        e instanceof MemoryStoreError
          ? `${e.code}${e.status ? ` (HTTP ${e.status})` : ''}: ${e.message}`
          : String((e as Error)?.message ?? e);
      return withoutSecret(text, settings);
    },
    isNotFound(e) {
      return e instanceof MemoryStoreError && e.code === 'NoSuchKey';
    },
    diagnose(e) {
      const code = e instanceof MemoryStoreError ? e.code : '';
      if (code === 'NoSuchBucket') return { kind: 'no-bucket', operation: null };
      if (code === 'NoSuchKey') return { kind: 'not-found', operation: null };
      return { kind: 'other', operation: null };
    },
  };
  return { destination, stored: new StoredView(store, settings.bucket), state, store };
}

/** The objects of one bucket, as a map of their bytes (what the replicate tests look at). */
class StoredView {
  constructor(
    private readonly store: MemoryStore,
    private readonly bucket: string,
  ) {}
  private get objects() {
    return this.store.buckets.get(this.bucket) ?? new Map<string, MemoryObject>();
  }
  get size(): number {
    return this.objects.size;
  }
  has(key: string): boolean {
    return this.objects.has(key);
  }
  get(key: string): Buffer | undefined {
    return this.objects.get(key)?.data;
  }
}
