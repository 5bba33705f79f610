// The age v1 header (https://age-encryption.org/v1, "Header"): the magic line, one stanza
// per recipient wrapping the file key (or the one scrypt stanza of a passphrase), and the
// MAC line "--- <HMAC>", followed by the 16-byte payload nonce. age-encryption builds the
// stanzas and the MAC (Encrypter.encrypt) and checks them (Decrypter.decryptHeader); this
// file gets a header written with the file key in hand, and reads one off a stream.
import { createCipheriv, createDecipheriv, randomBytes, scrypt } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Decrypter, Encrypter, type Identity, type Recipient, Stanza } from 'age-encryption';
import type { DecryptionSettings, EncryptionSettings } from './keys.js';
import { payloadKey, TAG } from './payload.js';

/** Length of the payload nonce that follows the header. */
export const NONCE = 16;

/**
 * The age header and payload nonce for `settings`, and the payload key. age-encryption
 * writes the header (one stanza per recipient, or the scrypt stanza, and the MAC): it
 * encrypts an empty file, whose output is header ‖ 16-byte nonce ‖ the empty last chunk
 * (a 16-byte tag), and a recipient of ours that adds no stanza hands over the file key.
 */
export async function newHeader(
  settings: EncryptionSettings,
): Promise<{ head: Buffer; key: Buffer }> {
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

/*
 * Passphrases: both directions derive the scrypt key with Node's scrypt (OpenSSL, on
 * libuv's thread pool, so the event loop keeps running), in the two classes below, which
 * write and read exactly age-encryption's scrypt stanza.
 *
 * - Encrypting (NodeScryptRecipient) always writes log2(N) = 18 (N = 2^18, r = 8, p = 1:
 *   age's default work factor, what `age -p` writes). age-encryption's own passphrase
 *   mode cannot be used here: Encrypter.setPassphrase refuses any other recipient, and
 *   the capturing recipient of newHeader, which hands over the file key for the native
 *   payload sealer, is one. Ours adds the same stanza as age-encryption's, and the capture
 *   adds none, so the scrypt stanza is still the only one in the header, as age requires.
 * - Decrypting (NodeScryptIdentity) takes the work factor the stanza names, up to 20
 *   (1 GiB), and refuses a higher one ("scrypt work factor is too high") and a scrypt
 *   stanza that is not alone in the header — age-encryption's ScryptIdentity's rules and
 *   messages — so pg-dr reads what `age -p` or another tool wrote, not only its own 18.
 *   It replaces Decrypter.addPassphrase, whose JavaScript scrypt (@noble/hashes) blocks
 *   the event loop for about 3 s per object here, against 0.4 s natively.
 */
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

/** The highest scrypt work factor read (log2 N): 2^20 needs 1 GiB, as in age-encryption. */
const MAX_SCRYPT_LOG_N = 20;

/** age's scrypt identity (passphrase mode), with Node's scrypt: see the note above. */
class NodeScryptIdentity implements Identity {
  constructor(private readonly passphrase: string) {}

  async unwrapFileKey(stanzas: Stanza[]): Promise<Uint8Array | null> {
    for (const s of stanzas) {
      if (s.args[0] !== 'scrypt') continue;
      if (stanzas.length !== 1) throw Error('scrypt recipient is not the only one in the header');
      const [, saltText = '', logNText = ''] = s.args;
      const salt = Buffer.from(saltText, 'base64');
      if (
        s.args.length !== 3 ||
        !/^[1-9][0-9]*$/.test(logNText) ||
        !/^[A-Za-z0-9+/]{22}$/.test(saltText) ||
        salt.toString('base64').replace(/=+$/, '') !== saltText
      )
        throw Error('invalid scrypt stanza');
      const logN = Number(logNText);
      if (logN > MAX_SCRYPT_LOG_N) throw Error('scrypt work factor is too high');
      if (s.body.length !== 32) throw Error('invalid stanza');
      const key = await deriveKey(this.passphrase, salt, logN);
      const fileKey = openFileKey(key, s.body);
      if (fileKey !== null) return fileKey;
    }
    return null;
  }
}

/** scrypt(passphrase, "age-encryption.org/v1/scrypt" ‖ salt, N = 2^logN, r = 8, p = 1). */
function deriveKey(passphrase: string, salt: Buffer, logN: number): Promise<Buffer> {
  const label = Buffer.from('age-encryption.org/v1/scrypt');
  const N = 2 ** logN;
  return new Promise<Buffer>((ok, fail) =>
    scrypt(
      passphrase,
      Buffer.concat([label, salt]),
      32,
      // scrypt needs 128 · r · N bytes; a little more for OpenSSL's own bookkeeping.
      { N, r: 8, p: 1, maxmem: 128 * 8 * N + 32 * 2 ** 20 },
      (err, k) => (err ? fail(err) : ok(k)),
    ),
  );
}

/** The file key a scrypt stanza's body wraps, or null when the passphrase is not the one. */
function openFileKey(key: Buffer, body: Uint8Array): Uint8Array | null {
  const d = createDecipheriv('chacha20-poly1305', key, Buffer.alloc(12), { authTagLength: TAG });
  d.setAuthTag(body.subarray(body.length - TAG));
  try {
    return Buffer.concat([d.update(body.subarray(0, body.length - TAG)), d.final()]);
  } catch {
    return null;
  }
}

/**
 * What opens a header for `settings` (its decryptHeader checks the MAC and returns the
 * file key). A passphrase goes through NodeScryptIdentity: see the note above.
 */
export function headerDecrypter(settings: DecryptionSettings): Decrypter {
  const d = new Decrypter();
  if (settings.mode === 'passphrase') d.addIdentity(new NodeScryptIdentity(settings.passphrase));
  else for (const i of settings.identities) d.addIdentity(i);
  return d;
}

/** Longest header read before giving up: many recipients, post-quantum ones included. */
const MAX_HEADER = 1024 * 1024;
const MAGIC = Buffer.from('age-encryption.org/v1\n');
const MAC_LINE = Buffer.from('\n--- ');

/** Reads the header and the payload nonce off `input`; `rest` is what followed them. */
export async function readHeader(
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
