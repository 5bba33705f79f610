import { S3Client } from '@aws-sdk/client-s3';
import { InputError } from '../errors.js';

/** One S3-compatible destination, as configured by the `primary-*` / `secondary-*` inputs. */
export interface DestinationSettings {
  /** Shown in manifests, reports and alerts, e.g. `b2`. */
  readonly name: string;
  /** Which input prefix configured it (`primary` or `secondary`), for error messages. */
  readonly role: 'primary' | 'secondary';
  readonly endpoint: string;
  readonly region: string;
  readonly bucket: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly forcePathStyle: boolean;
  /** A request with no byte moving for this long is abandoned (and retried). */
  readonly idleTimeoutMs?: number;
}

/** Default of `storage-timeout-seconds`. */
export const DEFAULT_IDLE_TIMEOUT_MS = 120_000;

/** Checks an endpoint input: an http(s) URL without credentials or a path. */
export function parseEndpoint(input: string, value: string): string {
  const expected = 'Expected an http(s) URL such as https://s3.us-west-004.backblazeb2.com.';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    const shown = value.includes('@') ? '(not shown: it may hold credentials)' : `"${value}"`;
    throw new InputError(input, `Invalid '${input}': ${shown}. ${expected}`);
  }
  if (url.username || url.password)
    throw new InputError(
      input,
      `Invalid '${input}': credentials in the URL. Use the access key inputs.`,
    );
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new InputError(input, `Invalid '${input}': "${value}". ${expected}`);
  return url.origin;
}

/** Backblaze B2's region is in its endpoint host; R2 and others take `auto`. */
export function defaultRegion(endpoint: string): string {
  const m = /^s3\.([a-z0-9-]+)\.backblazeb2\.com$/.exec(new URL(endpoint).hostname);
  return m?.[1] ?? 'auto';
}

/**
 * The one place S3 clients are made. Checksums only WHEN_REQUIRED: B2 rejects the SDK's
 * default checksum headers and s3rver silently corrupts streamed bodies with them.
 * Standard retries cover 500/503 and throttling. Without a socket timeout the SDK waits
 * forever on a server that accepted a request and went quiet; the fan-out, paced by the
 * slower destination, would then stall the healthy one with it.
 */
export function createS3Client(d: DestinationSettings): S3Client {
  return new S3Client({
    endpoint: d.endpoint,
    region: d.region,
    forcePathStyle: d.forcePathStyle,
    credentials: { accessKeyId: d.accessKeyId, secretAccessKey: d.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 6,
    retryMode: 'standard',
    // Options for the SDK's own NodeHttpHandler. socketTimeout is an idle timeout (no
    // byte in either direction), so a slow but moving upload is never cut.
    requestHandler: {
      connectionTimeout: Math.min(15_000, d.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS),
      socketTimeout: d.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    },
  });
}
