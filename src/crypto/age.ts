import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { Decrypter, Encrypter, identityToRecipient } from 'age-encryption';
import { InputError } from '../errors.js';

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

function encrypter(settings: EncryptionSettings): Encrypter {
  const e = new Encrypter();
  if (settings.mode === 'passphrase') e.setPassphrase(settings.passphrase);
  else for (const r of settings.recipients) e.addRecipient(r);
  return e;
}

/** Encrypts a stream into the age format (readable by the `age` CLI). */
export async function encryptStream(
  settings: EncryptionSettings,
  input: Readable,
): Promise<Readable> {
  const web = Readable.toWeb(input) as unknown as ReadableStream<Uint8Array>;
  const out = await encrypter(settings).encrypt(web);
  return Readable.fromWeb(out as unknown as WebReadableStream<Uint8Array>);
}

/** Encrypts a small buffer (the manifest never is; the config bundle may be). */
export async function encryptBuffer(
  settings: EncryptionSettings,
  data: Uint8Array,
): Promise<Uint8Array> {
  return encrypter(settings).encrypt(data);
}

/**
 * Decrypts an age stream. The header is read before this resolves, so a wrong key
 * fails here, before any plaintext is produced.
 */
export async function decryptStream(
  settings: DecryptionSettings,
  input: Readable,
): Promise<Readable> {
  const d = new Decrypter();
  if (settings.mode === 'passphrase') d.addPassphrase(settings.passphrase);
  else for (const i of settings.identities) d.addIdentity(i);
  const web = Readable.toWeb(input) as unknown as ReadableStream<Uint8Array>;
  const out = await d.decrypt(web);
  return Readable.fromWeb(out as unknown as WebReadableStream<Uint8Array>);
}
