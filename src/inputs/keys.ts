import type { DecryptionSettings, EncryptionSettings } from '../crypto/age.js';
import { parseIdentities, parseRecipients } from '../crypto/age.js';
import {
  parseSigningKey,
  parseTrustedSigners,
  type Signer,
  type TrustedSigner,
} from '../crypto/sshsig.js';
import { InputError } from '../errors.js';
import type { InputSource } from './source.js';

/** How a backup is encrypted: `age-recipients` or `passphrase`, exactly one. */
export function parseEncryption(src: InputSource): EncryptionSettings {
  const recipients = src.get('age-recipients').trim();
  const passphrase = src.get('passphrase');
  if (recipients !== '' && passphrase !== '')
    throw new InputError(
      'age-recipients',
      "Both 'age-recipients' and 'passphrase' are set. Expected exactly one of them (age-recipients is recommended).",
    );
  if (recipients === '' && passphrase === '')
    throw new InputError(
      'age-recipients',
      "Neither 'age-recipients' nor 'passphrase' is set. Expected exactly one of them (age-recipients is recommended).",
    );
  if (passphrase !== '') {
    if (passphrase.length < 12)
      throw new InputError(
        'passphrase',
        "Invalid 'passphrase': too short. Expected at least 12 characters.",
      );
    return { mode: 'passphrase', passphrase };
  }
  const list = parseRecipients(recipients);
  if (list.length === 0)
    throw new InputError(
      'age-recipients',
      "Invalid 'age-recipients': no key found. Expected age1… public keys.",
    );
  return { mode: 'recipients', recipients: list };
}

/** How a backup is decrypted: `age-identity` or `passphrase`; when not `required`, null if neither. */
export function parseDecryption(src: InputSource, required: true): DecryptionSettings;
export function parseDecryption(src: InputSource, required: boolean): DecryptionSettings | null;
export function parseDecryption(src: InputSource, required: boolean): DecryptionSettings | null {
  const identity = src.get('age-identity');
  const passphrase = src.get('passphrase');
  if (identity.trim() !== '' && passphrase !== '')
    throw new InputError(
      'age-identity',
      "Both 'age-identity' and 'passphrase' are set. Expected exactly one of them.",
    );
  if (identity.trim() !== '') return { mode: 'identities', identities: parseIdentities(identity) };
  if (passphrase !== '') return { mode: 'passphrase', passphrase };
  if (!required) return null;
  throw new InputError(
    'age-identity',
    "Neither 'age-identity' nor 'passphrase' is set. Expected the age secret key (AGE-SECRET-KEY-1…) or the passphrase the backup was made with.",
  );
}

/** `signing-key`; null: unsigned. */
export function parseSigner(src: InputSource): Signer | null {
  return src.get('signing-key').trim() === '' ? null : parseSigningKey(src.get('signing-key'));
}

/** `trusted-signers`; null: nothing is authenticated. */
export function parseTrusted(src: InputSource): readonly TrustedSigner[] | null {
  return src.get('trusted-signers').trim() === ''
    ? null
    : parseTrustedSigners(src.get('trusted-signers'));
}
