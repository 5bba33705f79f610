/**
 * What a destination is: a bucket behind the few operations pg-dr needs, each kind
 * interpreting its own errors (`describeError`, `isNotFound`). Nothing above
 * `src/storage/` knows which kind it holds; `s3/` is the one kind today, and every kind
 * passes the same contract suite (test/harness/destination-contract.ts).
 */
import type { Readable } from 'node:stream';
import type { DeleteReport, PurgeRequest } from './delete.js';
import type { UploadShape } from './part-size.js';
import { createS3Destination } from './s3/destination.js';
import type { DestinationSettings } from './settings.js';

export type { DestinationSettings } from './settings.js';

export interface StoredObject {
  readonly key: string;
  readonly size: number;
  readonly lastModified: Date | undefined;
}

/**
 * What kind of refusal a store's failure is, so a caller can say what to fix without
 * reading the store's codes: the key id is unknown, the signature (secret key or region)
 * does not match, the bucket does not exist, the key may not do this operation, the
 * endpoint cannot be reached or is the wrong one, the object is not there, or anything else.
 */
export type FailureKind =
  | 'unknown-key'
  | 'bad-signature'
  | 'no-bucket'
  | 'denied'
  | 'unreachable'
  | 'wrong-endpoint'
  | 'not-found'
  | 'other';

export interface FailureDiagnosis {
  readonly kind: FailureKind;
  /** The store operation that failed, when known (`PutObject`, `UploadPart`, …). */
  readonly operation: string | null;
}

export interface RunningUpload {
  /**
   * Resolves with the ETag once the object is fully stored, and with the most parts that
   * were in flight at once when the kind fits them to the link.
   */
  readonly done: Promise<{ etag: string; partsInFlight?: number }>;
  /** Bytes acknowledged by the server so far. */
  uploadedBytes(): number;
  /** Stops the upload; no object is left behind. Never rejects. */
  abort(): Promise<void>;
}

/** A bucket, behind the operations pg-dr needs. */
export interface Destination {
  readonly settings: DestinationSettings;
  /** Fails with an InputError when the bucket does not exist, a plain error when unreachable. */
  check(): Promise<void>;
  /** Streams `body` to `key` in parts of `shape`; nothing is stored unless `body` ends cleanly. */
  upload(key: string, body: Readable, shape: UploadShape, contentType: string): RunningUpload;
  put(key: string, body: Uint8Array | string, contentType: string): Promise<{ etag: string }>;
  /** The object's bytes; rejects (`isNotFound` true) when there is no such key. */
  get(key: string): Promise<Readable>;
  /** Every object whose key starts with `prefix`, in key order, all pages. */
  list(prefix: string): AsyncIterable<StoredObject>;
  /** A plain delete (in a versioned bucket it only hides the object); a missing key is no error. */
  remove(key: string): Promise<void>;
  /** Deletes a folder's objects for good, every version of them; see {@link PurgeRequest}. */
  purge(request: PurgeRequest): Promise<DeleteReport>;
  /** A short reason for a failure of one of the calls above, for people; never holds the secret key. */
  describeError(e: unknown): string;
  /** The failure says the key (or the version) does not exist. */
  isNotFound(e: unknown): boolean;
  /** Which kind of refusal a failure of one of the calls above is, and of which operation. */
  diagnose(e: unknown): FailureDiagnosis;
}

/** The S3-compatible destination of one `primary-*` / `secondary-*` set of inputs. */
export function createDestination(settings: DestinationSettings): Destination {
  return createS3Destination(settings);
}
