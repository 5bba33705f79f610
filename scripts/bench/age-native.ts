// An experiment, not product code: the age v1 format written with Node's own crypto
// (OpenSSL's ChaCha20-Poly1305, HKDF, X25519) instead of the JavaScript implementation,
// to measure what a native payload cipher would lift. The output is checked with the
// `age` CLI by the benchmark, so it is the real format.
//
// Format (age-encryption.org/v1): header with one X25519 stanza per recipient and an
// HMAC, a 16-byte nonce, then the payload in 64 KiB chunks sealed with ChaCha20-Poly1305,
// nonce = 11-byte big-endian chunk counter || last-chunk flag.
import {
  createCipheriv,
  createHmac,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
} from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

const CHUNK = 64 * 1024;
const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';

/** The 32-byte X25519 public key of an `age1…` recipient (bech32, checksum not checked). */
function decodeRecipient(r: string): Buffer {
  const data = r.slice(r.lastIndexOf('1') + 1, -6);
  let acc = 0;
  let bits = 0;
  const out: number[] = [];
  for (const ch of data) {
    const v = CHARSET.indexOf(ch);
    if (v < 0) throw new Error('bad bech32 character');
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 0xff);
    }
  }
  if (out.length !== 32) throw new Error('not an X25519 recipient');
  return Buffer.from(out);
}

const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');
const hkdf = (ikm: Buffer, salt: Buffer, info: string) =>
  Buffer.from(hkdfSync('sha256', ikm, salt, info, 32));

function seal(key: Buffer, nonce: Buffer, plain: Buffer): Buffer[] {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  const body = c.update(plain);
  c.final();
  return [body, c.getAuthTag()];
}

function x25519Stanza(recipient: string, fileKey: Buffer): string {
  const theirs = decodeRecipient(recipient);
  const eph = generateKeyPairSync('x25519');
  const share = Buffer.from(eph.publicKey.export({ format: 'jwk' }).x as string, 'base64url');
  const publicKey = createPublicKey({
    key: { kty: 'OKP', crv: 'X25519', x: theirs.toString('base64url') },
    format: 'jwk',
  });
  const shared = diffieHellman({ privateKey: eph.privateKey, publicKey });
  const wrapKey = hkdf(shared, Buffer.concat([share, theirs]), 'age-encryption.org/v1/X25519');
  const body = Buffer.concat(seal(wrapKey, Buffer.alloc(12), fileKey));
  return `-> X25519 ${b64(share)}\n${b64(body)}\n`;
}

/** A Transform writing the age format for `recipients`, payload sealed by node:crypto. */
export function nativeAgeEncrypt(recipients: readonly string[]): Transform {
  const fileKey = randomBytes(16);
  let header = 'age-encryption.org/v1\n';
  for (const r of recipients) header += x25519Stanza(r, fileKey);
  header += '---';
  const mac = createHmac('sha256', hkdf(fileKey, Buffer.alloc(0), 'header'))
    .update(header)
    .digest();
  const nonce = randomBytes(16);
  const payloadKey = hkdf(fileKey, nonce, 'payload');
  const chunkNonce = Buffer.alloc(12);
  let counter = 0n;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let started = false;

  const next = (last: boolean): Buffer => {
    chunkNonce.writeBigUInt64BE(counter, 3); // 11-byte counter: top 3 bytes stay 0
    chunkNonce[11] = last ? 1 : 0;
    counter++;
    return chunkNonce;
  };
  const take = (n: number): Buffer => {
    const all =
      pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending, pendingBytes);
    const head = all.subarray(0, n);
    const rest = all.subarray(n);
    pending = rest.length > 0 ? [rest] : [];
    pendingBytes = rest.length;
    return head;
  };
  return new Transform({
    highWaterMark: 1024 * 1024,
    transform(chunk: Buffer, _e, cb: TransformCallback) {
      if (!started) {
        started = true;
        this.push(Buffer.from(`${header} ${b64(mac)}\n`));
        this.push(nonce);
      }
      pending.push(chunk);
      pendingBytes += chunk.length;
      // Keep at least one byte back: the last chunk must be flagged, even a full one.
      const out: Buffer[] = [];
      while (pendingBytes > CHUNK) out.push(...seal(payloadKey, next(false), take(CHUNK)));
      if (out.length > 0) this.push(Buffer.concat(out));
      cb();
    },
    flush(cb: TransformCallback) {
      if (!started) {
        this.push(Buffer.from(`${header} ${b64(mac)}\n`));
        this.push(nonce);
      }
      this.push(Buffer.concat(seal(payloadKey, next(true), take(pendingBytes))));
      cb();
    },
  });
}
