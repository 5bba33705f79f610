import type { FailureDiagnosis } from '../destination.js';

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

/** Where the client records the operation a failure came from (see client.ts). */
export const OPERATION = Symbol('pg-dr.s3-operation');

const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'TimeoutError',
  'RequestTimeout',
]);

/** Codes S3-compatible stores answer for a request sent to the wrong endpoint or region. */
const WRONG_ENDPOINT = new Set([
  'PermanentRedirect',
  'AuthorizationHeaderMalformed',
  'IncorrectEndpoint',
  'InvalidRegion',
  'IllegalLocationConstraintException',
]);

/** Which kind of refusal an SDK error is, and of which operation (client.ts tags it). */
export function diagnoseS3Error(e: unknown): FailureDiagnosis {
  const s = shapeOf(e);
  const err = (e ?? {}) as { code?: string; [OPERATION]?: string };
  const operation = err[OPERATION] ?? null;
  const code = err.code && UNREACHABLE.has(err.code) ? err.code : s.code;
  const kind = (() => {
    if (code === 'InvalidAccessKeyId') return 'unknown-key' as const;
    if (code === 'SignatureDoesNotMatch') return 'bad-signature' as const;
    if (code === 'NoSuchBucket' || (operation === 'HeadBucket' && s.status === 404))
      return 'no-bucket' as const;
    if (code === 'AccessDenied' || code === 'Forbidden' || s.status === 403)
      return 'denied' as const;
    if (WRONG_ENDPOINT.has(code) || s.status === 301) return 'wrong-endpoint' as const;
    if (UNREACHABLE.has(code)) return 'unreachable' as const;
    if (code === 'NoSuchKey' || s.status === 404) return 'not-found' as const;
    return 'other' as const;
  })();
  return { kind, operation };
}
