// age as Node streams: the header from header.ts, then the payload through the sealer or
// opener of payload.ts (OpenSSL's ChaCha20-Poly1305), wired so an input error fails them.
import type { Readable } from 'node:stream';
import { headerDecrypter, newHeader, readHeader } from './header.js';
import type { DecryptionSettings, EncryptionSettings } from './keys.js';
import { PayloadOpener, PayloadSealer, payloadKey } from './payload.js';

/**
 * Encrypts a stream into the age format (readable by the `age` CLI): the header from
 * age-encryption, the payload sealed by OpenSSL's ChaCha20-Poly1305 (payload.ts).
 */
export async function encryptStream(
  settings: EncryptionSettings,
  input: Readable,
): Promise<Readable> {
  const { head, key } = await newHeader(settings);
  const sealer = new PayloadSealer(key, head);
  input.on('error', (e) => sealer.destroy(e));
  input.pipe(sealer);
  return sealer;
}

/**
 * Decrypts an age stream. The header is read and checked (a key that matches, the MAC)
 * before this resolves, so a wrong key fails here, before any plaintext is produced.
 * The header is age-encryption's work; the payload is opened by OpenSSL's
 * ChaCha20-Poly1305 (payload.ts).
 */
export async function decryptStream(
  settings: DecryptionSettings,
  input: Readable,
): Promise<Readable> {
  const d = headerDecrypter(settings);
  const { header, nonce, rest } = await readHeader(input);
  const fileKey = await d.decryptHeader(header);
  const opener = new PayloadOpener(payloadKey(fileKey, nonce));
  input.on('error', (e) => opener.destroy(e));
  if (rest.length > 0) opener.write(rest);
  input.pipe(opener);
  return opener;
}
