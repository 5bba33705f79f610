/** The wording every destination kind shares, so they all fail the same way. */
import { InputError } from '../errors.js';
import type { DestinationSettings } from './settings.js';

/** What `check()` throws when the bucket does not exist, naming the input to fix. */
export function bucketMissing(settings: DestinationSettings): InputError {
  return new InputError(
    `${settings.role}-bucket`,
    `Invalid '${settings.role}-bucket': bucket "${settings.bucket}" does not exist at ${new URL(settings.endpoint).host}. Expected an existing bucket.`,
  );
}

/** What `check()` throws when the bucket cannot be reached. */
export function bucketUnreachable(settings: DestinationSettings, why: string): Error {
  return new Error(`${settings.name}: cannot reach bucket "${settings.bucket}": ${why}`);
}

/** `text` with the secret key blotted out, should a store ever echo it. */
export function withoutSecret(text: string, settings: DestinationSettings): string {
  const secret = settings.secretAccessKey;
  return secret.length > 0 ? text.split(secret).join('***') : text;
}
