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
