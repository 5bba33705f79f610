/**
 * The fixes `check` gives for a destination's failures: the kind of refusal read from the
 * S3 error (storage/s3/errors.ts), then words for B2, R2 and other stores (check/destination.ts).
 */
import { describe, expect, it } from 'vitest';
import { fixFor } from '../../src/check/destination.js';
import { createDestination, type FailureKind } from '../../src/storage/destination.js';
import { diagnoseS3Error, OPERATION } from '../../src/storage/s3/errors.js';

const settings = (endpoint: string, role: 'primary' | 'secondary' = 'primary') => ({
  name: 'x',
  role,
  endpoint,
  region: 'auto',
  bucket: 'acme-dr',
  accessKeyId: 'id',
  secretAccessKey: 'secret-key-value',
  forcePathStyle: true,
});

/** An SDK-shaped error, tagged with its operation as the client does. */
function sdkError(name: string, status: number | undefined, operation?: string, code?: string) {
  const e = Object.assign(new Error(`${name} message`), {
    name,
    ...(code ? { code } : {}),
    $metadata: status ? { httpStatusCode: status } : {},
  });
  if (operation) Object.defineProperty(e, OPERATION, { value: operation });
  return e;
}

describe('diagnoseS3Error', () => {
  it.each<[string, ReturnType<typeof sdkError>, FailureKind]>([
    ['unknown key id', sdkError('InvalidAccessKeyId', 403, 'ListObjectsV2'), 'unknown-key'],
    ['bad secret', sdkError('SignatureDoesNotMatch', 403, 'ListObjectsV2'), 'bad-signature'],
    ['no bucket', sdkError('NoSuchBucket', 404, 'ListObjectsV2'), 'no-bucket'],
    ['no bucket (HEAD: no body)', sdkError('NotFound', 404, 'HeadBucket'), 'no-bucket'],
    ['denied', sdkError('AccessDenied', 403, 'PutObject'), 'denied'],
    ['redirected', sdkError('PermanentRedirect', 301, 'ListObjectsV2'), 'wrong-endpoint'],
    ['refused', sdkError('Error', undefined, 'ListObjectsV2', 'ECONNREFUSED'), 'unreachable'],
    ['no key', sdkError('NoSuchKey', 404, 'GetObject'), 'not-found'],
    ['other', sdkError('InternalError', 500, 'GetObject'), 'other'],
  ])('%s', (_what, e, kind) => {
    expect(diagnoseS3Error(e)).toEqual({ kind, operation: e[OPERATION as never] ?? null });
  });

  it('an error without the client tag has no operation', () => {
    expect(diagnoseS3Error(sdkError('AccessDenied', 403))).toEqual({
      kind: 'denied',
      operation: null,
    });
  });
});

describe('fixFor', () => {
  const b2 = createDestination(settings('https://s3.us-west-004.backblazeb2.com'));
  const r2 = createDestination(settings('https://abc.r2.cloudflarestorage.com', 'secondary'));
  const other = createDestination(settings('https://minio.example:9000'));

  it('names the B2 capability each operation needs', () => {
    const cap = (operation: string) => fixFor(b2, { kind: 'denied', operation });
    expect(cap('CreateMultipartUpload')).toMatch(/capability writeFiles/);
    expect(cap('UploadPart')).toMatch(/capability writeFiles/);
    expect(cap('GetObject')).toMatch(/capability readFiles/);
    expect(cap('DeleteObjects')).toMatch(/capability deleteFiles/);
    expect(cap('ListObjectsV2')).toMatch(/capability listFiles/);
    expect(cap('PutObject')).toMatch(/listFiles, readFiles, writeFiles and deleteFiles/);
  });

  it('R2: the token permission; other stores: the IAM action', () => {
    expect(fixFor(r2, { kind: 'denied', operation: 'PutObject' })).toMatch(/Object Read & Write/);
    expect(fixFor(other, { kind: 'denied', operation: 'PutObject' })).toMatch(/s3:PutObject/);
    expect(fixFor(other, { kind: 'denied', operation: 'DeleteObject' })).toMatch(
      /s3:DeleteObject and s3:DeleteObjectVersion/,
    );
  });

  it('names the input to change, never the secret', () => {
    expect(fixFor(r2, { kind: 'unknown-key', operation: null })).toMatch(
      /set 'secondary-access-key-id' to the API token's Access Key ID/,
    );
    expect(fixFor(b2, { kind: 'bad-signature', operation: null })).toMatch(
      /'primary-secret-access-key'.*'primary-region' \(B2: the region in the endpoint/,
    );
    expect(fixFor(b2, { kind: 'no-bucket', operation: null })).toMatch(
      /Create the bucket "acme-dr" at s3\.us-west-004\.backblazeb2\.com, or set 'primary-bucket'/,
    );
    expect(fixFor(r2, { kind: 'unreachable', operation: null })).toMatch(
      /^Check 'secondary-endpoint'/,
    );
    for (const kind of [
      'unknown-key',
      'bad-signature',
      'no-bucket',
      'denied',
      'wrong-endpoint',
      'unreachable',
      'other',
    ] as const)
      expect(fixFor(b2, { kind, operation: 'PutObject' })).not.toContain('secret-key-value');
  });
});
