import { recipientsOf } from '../crypto/age.js';
import { InputError } from '../errors.js';
import type { RestoreSettings } from '../inputs/parse.js';
import type { Manifest } from '../manifest/schema.js';
import type { ReadBackResult } from '../pipeline/readback.js';

/** What the restore of a logical and of a physical backup share. */

/** `20261130T101500Z`: when the previous database was set aside. */
export function stamp(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

/** A missing, truncated or altered object is worth another destination; a wrong key is not. */
export function fallsBack(r: ReadBackResult): boolean {
  return r.failure !== 'key';
}

/** The backup's encryption and the decryption settings match, before anything is written. */
export async function checkKey(settings: RestoreSettings, manifest: Manifest): Promise<void> {
  const enc = manifest.encryption;
  const dec = settings.decryption;
  if (enc.mode === 'passphrase' && dec.mode !== 'passphrase')
    throw new InputError(
      'passphrase',
      "This backup was encrypted with a passphrase: set 'passphrase', not 'age-identity'.",
    );
  if (enc.mode === 'recipients') {
    if (dec.mode !== 'identities')
      throw new InputError(
        'age-identity',
        `This backup was encrypted to age public keys (${enc.recipients.join(', ')}): set 'age-identity' to a matching secret key.`,
      );
    const mine = await recipientsOf(dec.identities);
    if (!mine.some((r) => enc.recipients.includes(r)))
      throw new InputError(
        'age-identity',
        `Invalid 'age-identity': its public key${mine.length > 1 ? 's' : ''} (${mine.join(', ')}) match${mine.length > 1 ? '' : 'es'} none of the backup's recipients (${enc.recipients.join(', ')}). Expected the secret key of one of them.`,
      );
  }
}
