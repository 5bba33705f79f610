// age keys as pg-dr takes them: recipients (public keys) to encrypt for, identities
// (secret keys) to decrypt with, or a passphrase; parsed from the action's inputs.
import { Encrypter, identityToRecipient } from 'age-encryption';
import { InputError } from '../../errors.js';

/** How backups are encrypted: public keys (recommended) or a passphrase (age scrypt). */
export type EncryptionSettings =
  | { readonly mode: 'recipients'; readonly recipients: readonly string[] }
  | { readonly mode: 'passphrase'; readonly passphrase: string };

/** How backups are decrypted (verify, restore). */
export type DecryptionSettings =
  | { readonly mode: 'identities'; readonly identities: readonly string[] }
  | { readonly mode: 'passphrase'; readonly passphrase: string };

const RECIPIENT = /^age1[02-9ac-hj-np-z]{58,}$/;
const IDENTITY = /^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/;

/** Splits `age-recipients` on newlines, commas and spaces; `#` starts a comment line. */
export function parseRecipients(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const l = line.trim();
    if (l === '' || l.startsWith('#')) continue;
    for (const r of l.split(/[\s,]+/)) {
      if (r === '') continue;
      if (!RECIPIENT.test(r)) {
        // Never echo anything that could be a secret key, however it is wrapped.
        const shown = /SECRET|KEY-1/i.test(r)
          ? '(looks like a secret key: not shown; backup needs only public keys)'
          : `"${r.slice(0, 80)}"`;
        throw new InputError(
          'age-recipients',
          `Invalid 'age-recipients': ${shown}. Expected age X25519 public keys (age1 followed by 58 characters), as printed by 'age-keygen -y'.`,
        );
      }
      // The library is the final judge of the checksum.
      try {
        new Encrypter().addRecipient(r);
      } catch {
        throw new InputError(
          'age-recipients',
          `Invalid 'age-recipients': "${r}" fails its checksum. Expected an age public key.`,
        );
      }
      out.push(r);
    }
  }
  return [...new Set(out)];
}

/** Secret keys from `age-identity`: one per line; `#` comment lines (as age-keygen writes) skipped. */
export function parseIdentities(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const l = line.trim();
    if (l === '' || l.startsWith('#')) continue;
    if (!IDENTITY.test(l)) {
      throw new InputError(
        'age-identity',
        "Invalid 'age-identity': a line is not an age secret key (value not shown). Expected lines like AGE-SECRET-KEY-1… as written by age-keygen.",
      );
    }
    out.push(l);
  }
  if (out.length === 0)
    throw new InputError(
      'age-identity',
      "Invalid 'age-identity': no AGE-SECRET-KEY-1… line found.",
    );
  return out;
}

/** The public keys of secret keys, to tell which recipient an identity belongs to. */
export async function recipientsOf(identities: readonly string[]): Promise<string[]> {
  return Promise.all(identities.map((i) => identityToRecipient(i)));
}
