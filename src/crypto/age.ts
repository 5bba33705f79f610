import { createCipheriv, randomBytes, scrypt } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Decrypter, Encrypter, identityToRecipient, type Recipient, Stanza } from 'age-encryption';
import { InputError } from '../errors.js';
import { PayloadOpener, PayloadSealer, payloadKey, TAG } from './stream.js';

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

/**
 * The age header and payload nonce for `settings`, and the payload key. age-encryption
 * writes the header (one stanza per recipient, or the scrypt stanza, and the MAC): it
 * encrypts an empty file, whose output is header ‖ 16-byte nonce ‖ the empty last chunk
 * (a 16-byte tag), and a recipient of ours that adds no stanza hands over the file key.
 */
async function openPayload(settings: EncryptionSettings): Promise<{ head: Buffer; key: Buffer }> {
  let fileKey: Uint8Array | null = null;
  const capture: Recipient = {
    wrapFileKey(k: Uint8Array) {
      fileKey = k;
      return [];
    },
  };
  const e = new Encrypter();
  if (settings.mode === 'passphrase') {
    e.addRecipient(new NodeScryptRecipient(settings.passphrase));
  } else {
    for (const r of settings.recipients) e.addRecipient(r);
  }
  e.addRecipient(capture);
  const empty = Buffer.from(await e.encrypt(new Uint8Array(0)));
  const head = empty.subarray(0, empty.length - TAG);
  // The header's last line ("--- <mac>") ends just before the nonce.
  if (fileKey === null || head[head.length - NONCE - 1] !== 0x0a)
    throw new Error('age-encryption did not produce the expected header');
  return { head, key: payloadKey(fileKey, head.subarray(head.length - NONCE)) };
}

const NONCE = 16;
const SCRYPT_LOG_N = 18;

/**
 * age's scrypt recipient (passphrase mode), with Node's scrypt: the same stanza as
 * age-encryption's, in a form that also hands over the file key. N = 2^18, r = 8, p = 1
 * (age's default work factor) needs 256 MiB for the derivation, freed right after.
 */
class NodeScryptRecipient implements Recipient {
  constructor(private readonly passphrase: string) {}

  async wrapFileKey(fileKey: Uint8Array): Promise<Stanza[]> {
    const salt = randomBytes(16);
    const label = Buffer.from('age-encryption.org/v1/scrypt');
    const key = await new Promise<Buffer>((ok, fail) =>
      scrypt(
        this.passphrase,
        Buffer.concat([label, salt]),
        32,
        { N: 2 ** SCRYPT_LOG_N, r: 8, p: 1, maxmem: 300 * 2 ** 20 },
        (err, k) => (err ? fail(err) : ok(k)),
      ),
    );
    const c = createCipheriv('chacha20-poly1305', key, Buffer.alloc(12), { authTagLength: TAG });
    const body = Buffer.concat([c.update(fileKey), c.final(), c.getAuthTag()]);
    return [
      new Stanza(
        ['scrypt', salt.toString('base64').replace(/=+$/, ''), String(SCRYPT_LOG_N)],
        body,
      ),
    ];
  }
}

/**
 * Encrypts a stream into the age format (readable by the `age` CLI): the header from
 * age-encryption, the payload sealed by OpenSSL's ChaCha20-Poly1305 (src/crypto/stream.ts).
 */
export async function encryptStream(
  settings: EncryptionSettings,
  input: Readable,
): Promise<Readable> {
  const { head, key } = await openPayload(settings);
  const sealer = new PayloadSealer(key, head);
  input.on('error', (e) => sealer.destroy(e));
  input.pipe(sealer);
  return sealer;
}

/** Encrypts a small buffer (the manifest never is; the config bundle may be). */
export async function encryptBuffer(
  settings: EncryptionSettings,
  data: Uint8Array,
): Promise<Uint8Array> {
  return encrypter(settings).encrypt(data);
}

/** Longest header read before giving up: many recipients, post-quantum ones included. */
const MAX_HEADER = 1024 * 1024;
const MAGIC = Buffer.from('age-encryption.org/v1\n');
const MAC_LINE = Buffer.from('\n--- ');

/**
 * Decrypts an age stream. The header is read and checked (a key that matches, the MAC)
 * before this resolves, so a wrong key fails here, before any plaintext is produced.
 * The header is age-encryption's work; the payload is opened by OpenSSL's
 * ChaCha20-Poly1305 (src/crypto/stream.ts).
 */
export async function decryptStream(
  settings: DecryptionSettings,
  input: Readable,
): Promise<Readable> {
  const d = new Decrypter();
  if (settings.mode === 'passphrase') d.addPassphrase(settings.passphrase);
  else for (const i of settings.identities) d.addIdentity(i);
  const { header, nonce, rest } = await readHeader(input);
  const fileKey = await d.decryptHeader(header);
  const opener = new PayloadOpener(payloadKey(fileKey, nonce));
  input.on('error', (e) => opener.destroy(e));
  if (rest.length > 0) opener.write(rest);
  input.pipe(opener);
  return opener;
}

/** Reads the header and the payload nonce off `input`; `rest` is what followed them. */
async function readHeader(
  input: Readable,
): Promise<{ header: Buffer; nonce: Buffer; rest: Buffer }> {
  let buf: Buffer = Buffer.alloc(0);
  let headerEnd = -1;
  for (;;) {
    if (headerEnd < 0) {
      if (buf.length >= MAGIC.length && !buf.subarray(0, MAGIC.length).equals(MAGIC))
        throw new Error(
          buf.subarray(0, 10).toString('latin1') === '-----BEGIN'
            ? 'the object is ASCII-armored age: not what pg-dr writes'
            : 'not an age-encryption.org/v1 file',
        );
      const mac = buf.indexOf(MAC_LINE);
      const eol = mac < 0 ? -1 : buf.indexOf(0x0a, mac + MAC_LINE.length);
      if (eol >= 0) headerEnd = eol + 1;
      else if (buf.length > MAX_HEADER)
        throw new Error(`no end of the age header in the first ${MAX_HEADER} bytes`);
    }
    if (headerEnd >= 0 && buf.length >= headerEnd + NONCE) {
      return {
        header: buf.subarray(0, headerEnd),
        nonce: buf.subarray(headerEnd, headerEnd + NONCE),
        rest: buf.subarray(headerEnd + NONCE),
      };
    }
    const chunk = await nextChunk(input);
    if (chunk === null)
      throw new Error(
        `the age file ends after ${buf.length} bytes, inside its ${headerEnd < 0 ? 'header' : 'payload nonce'}`,
      );
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
  }
}

/** The next chunk of a paused readable, or null at its end; rejects on its error. */
function nextChunk(input: Readable): Promise<Buffer | null> {
  const c = input.read() as Buffer | null;
  if (c !== null) return Promise.resolve(c);
  if (input.readableEnded) return Promise.resolve(null);
  if (input.errored) return Promise.reject(input.errored);
  return new Promise((resolve, reject) => {
    const done = () => {
      input.off('readable', onReadable);
      input.off('end', onEnd);
      input.off('error', onError);
    };
    const onReadable = () => {
      const r = input.read() as Buffer | null;
      if (r === null) return;
      done();
      resolve(r);
    };
    const onEnd = () => {
      done();
      resolve(null);
    };
    const onError = (e: Error) => {
      done();
      reject(e);
    };
    input.on('readable', onReadable);
    input.on('end', onEnd);
    input.on('error', onError);
  });
}
