/**
 * The one place S3 errors are read: an SDK exception, or one entry of a DeleteObjects
 * response's `Errors`. Nothing outside `src/storage/s3/` looks at codes or HTTP statuses.
 */

interface ErrorShape {
  readonly code: string;
  readonly message: string;
  readonly status: number | undefined;
}

function shapeOf(e: unknown): ErrorShape {
  const err = (e ?? {}) as {
    name?: string;
    Code?: string;
    code?: string;
    message?: string;
    Message?: string;
    $metadata?: { httpStatusCode?: number };
  };
  return {
    code: err.Code ?? err.code ?? err.name ?? 'Error',
    message: err.message ?? err.Message ?? '',
    status: err.$metadata?.httpStatusCode,
  };
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

/** One refused entry of a DeleteObjects response: `Code: Message`. */
export function describeBatchEntry(e: unknown): string {
  const s = shapeOf(e);
  return `${s.code}${s.message && s.message !== s.code ? `: ${s.message}` : ''}`;
}

/** The object (or its version) does not exist. */
export function isNoSuchKey(e: unknown): boolean {
  const s = shapeOf(e);
  return s.status === 404 || (e as { name?: string } | null)?.name === 'NoSuchKey';
}

/** HeadBucket's answer for a bucket that does not exist. */
export function isNoSuchBucket(e: unknown): boolean {
  const name = (e as { name?: string } | null)?.name;
  return shapeOf(e).status === 404 || name === 'NotFound' || name === 'NoSuchBucket';
}

const LOCK_WORDS = /retention|legal[ -]?hold|object[ -]?lock|\blocked\b|\bworm\b/i;

/** Object lock (retention or legal hold) refused a delete. */
export function isLockRefusal(e: unknown): boolean {
  const s = shapeOf(e);
  if (s.code === 'ObjectLocked') return true;
  return (
    (s.code === 'AccessDenied' || s.code === 'InvalidRequest') && LOCK_WORDS.test(`${s.message}`)
  );
}

/** Batch errors after which DeleteObjects is given up for per-object DeleteObject. */
const BATCH_UNSUPPORTED = new Set(['MissingContentMD5', 'NotImplemented', 'InvalidRequest']);
/** Backblaze B2 refuses the SDK's flexible-checksum headers on DeleteObjects with InvalidArgument. */
const UNSUPPORTED_HEADER = /unsupported header|checksum/i;

/** The store does not take DeleteObjects as sent: delete one object at a time instead. */
export function isBatchUnsupported(e: unknown): boolean {
  const s = shapeOf(e);
  return (
    BATCH_UNSUPPORTED.has(s.code) ||
    s.status === 501 ||
    (s.code === 'InvalidArgument' && UNSUPPORTED_HEADER.test(s.message))
  );
}
