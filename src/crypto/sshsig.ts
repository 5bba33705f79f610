import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto';
import type { ParsedKey } from 'ssh2';
import { InputError } from '../errors.js';
import ssh2 from '../tunnel/ssh2.js';

/**
 * SSH signatures (OpenSSH's SSHSIG format, `ssh-keygen -Y sign`/`-Y verify`) with Ed25519
 * keys: pg-dr signs each manifest and verification record it writes, and readers that know
 * the trusted public keys ignore anything else. Verifiable with stock OpenSSH:
 * `ssh-keygen -Y verify -f allowed_signers -I pg-dr -n pg-dr -s manifest.json.sig < manifest.json`.
 */
export const SIGNATURE_NAMESPACE = 'pg-dr';
const MAGIC = Buffer.from('SSHSIG');
const HASH = 'sha512';
const ARMOR_BEGIN = '-----BEGIN SSH SIGNATURE-----';
const ARMOR_END = '-----END SSH SIGNATURE-----';

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function sshString(b: Buffer | string): Buffer {
  const buf = typeof b === 'string' ? Buffer.from(b) : b;
  return Buffer.concat([u32(buf.length), buf]);
}

/** Reads SSH wire-format fields one after the other; throws on a short buffer. */
class Reader {
  private at = 0;
  constructor(private readonly buf: Buffer) {}
  bytes(n: number): Buffer {
    if (this.at + n > this.buf.length) throw new Error('truncated');
    const out = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  u32(): number {
    return this.bytes(4).readUInt32BE();
  }
  string(): Buffer {
    return this.bytes(this.u32());
  }
  get done(): boolean {
    return this.at === this.buf.length;
  }
}

/** What is signed: the SSHSIG preamble, the namespace and the message's hash. */
function signedData(namespace: string, hashAlg: string, message: Buffer): Buffer {
  const digest = createHash(hashAlg).update(message).digest();
  return Buffer.concat([
    MAGIC,
    sshString(namespace),
    sshString(''),
    sshString(hashAlg),
    sshString(digest),
  ]);
}

function armor(blob: Buffer): string {
  const b64 = blob.toString('base64');
  const lines = b64.match(/.{1,70}/g) ?? [];
  return `${ARMOR_BEGIN}\n${lines.join('\n')}\n${ARMOR_END}\n`;
}

/** A signing key, parsed in memory. */
export interface Signer {
  /** `ssh-ed25519 AAAA…`: the public half, safe to print and to record. */
  readonly publicKey: string;
  /** The armored SSH signature of `message`. */
  sign(message: Buffer): string;
}

const EXPECTED =
  'Expected an OpenSSH Ed25519 private key without passphrase (ssh-keygen -t ed25519 -N \'\'), the whole "BEGIN OPENSSH PRIVATE KEY" block; the value is not shown.';

/** Parses the `signing-key` input. Errors never quote the key. */
export function parseSigningKey(text: string, input = 'signing-key'): Signer {
  const fail = (why: string) => new InputError(input, `Invalid '${input}': ${why}. ${EXPECTED}`);
  let t = text.replace(/\r\n?/g, '\n').trim();
  if (!t.includes('\n') && t.includes('\\n')) t = t.replace(/\\n/g, '\n').trim();
  let result: ParsedKey | ParsedKey[] | Error;
  try {
    result = ssh2.utils.parseKey(`${t}\n`) as ParsedKey | ParsedKey[] | Error;
  } catch {
    throw fail('it could not be read as a key');
  }
  if (result instanceof Error)
    throw fail(
      /passphrase|encrypted/i.test(result.message)
        ? 'it is protected by a passphrase'
        : 'it could not be read as a key',
    );
  const key = Array.isArray(result) ? result[0] : result;
  if (!key) throw fail('it holds no key');
  if (!key.isPrivateKey()) throw fail('it is a public key; the private key is needed');
  if (key.type !== 'ssh-ed25519') throw fail(`it is a ${key.type} key`);
  const publicBlob = key.getPublicSSH();
  return {
    publicKey: `ssh-ed25519 ${publicBlob.toString('base64')}`,
    sign(message) {
      const sig = key.sign(signedData(SIGNATURE_NAMESPACE, HASH, message));
      if (sig instanceof Error || sig.length !== 64) throw new Error('Ed25519 signing failed.');
      return armor(
        Buffer.concat([
          MAGIC,
          u32(1),
          sshString(publicBlob),
          sshString(SIGNATURE_NAMESPACE),
          sshString(''),
          sshString(HASH),
          sshString(Buffer.concat([sshString('ssh-ed25519'), sshString(sig)])),
        ]),
      );
    },
  };
}

/** One trusted public key. */
export interface TrustedSigner {
  /** `ssh-ed25519 AAAA…`. */
  readonly text: string;
  readonly blob: Buffer;
  readonly key: KeyObject;
}

function ed25519Key(blob: Buffer): KeyObject {
  const r = new Reader(blob);
  const type = r.string().toString();
  const raw = r.string();
  if (type !== 'ssh-ed25519' || raw.length !== 32 || !r.done) throw new Error('not an Ed25519 key');
  return createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') },
    format: 'jwk',
  });
}

/**
 * Parses `trusted-signers`: one public key a line, `ssh-ed25519 AAAA… [comment]`, or an
 * `allowed_signers` line (principals and options first). Blank lines and `#` comments skip.
 */
export function parseTrustedSigners(text: string, input = 'trusted-signers'): TrustedSigner[] {
  const out: TrustedSigner[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const tokens = line.split(/\s+/);
    const at = tokens.indexOf('ssh-ed25519');
    const b64 = at >= 0 ? tokens[at + 1] : undefined;
    let blob: Buffer | null = null;
    let key: KeyObject | null = null;
    if (b64 && /^[A-Za-z0-9+/]+={0,2}$/.test(b64)) {
      blob = Buffer.from(b64, 'base64');
      try {
        key = ed25519Key(blob);
      } catch {
        key = null;
      }
    }
    if (!blob || !key)
      throw new InputError(
        input,
        `Invalid '${input}' line ${i + 1}: ${JSON.stringify(line.slice(0, 80))}. Expected one public key a line, like "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI… comment" (the .pub file of the signing key).`,
      );
    out.push({ text: `ssh-ed25519 ${b64}`, blob, key });
  }
  return out;
}

/**
 * Outcomes of Ed25519 checks already made in this process, by key, signature and the
 * SHA-256 of the signed data (which holds the message's own hash): the same signed bytes
 * read twice (a manifest's copies at two destinations are byte for byte the same) are
 * checked once. The check is ~0.1 ms, the most CPU one catalog read costs after its request.
 */
const checked = new Map<string, boolean>();
const MAX_CHECKED = 20_000;

function verifyOnce(data: Buffer, signer: TrustedSigner, raw: Buffer): boolean {
  const id = `${signer.text} ${raw.toString('base64')} ${createHash('sha256').update(data).digest('base64')}`;
  const known = checked.get(id);
  if (known !== undefined) return known;
  const ok = verify(null, data, signer.key, raw);
  if (checked.size >= MAX_CHECKED) checked.clear();
  checked.set(id, ok);
  return ok;
}

export type SignatureCheck =
  | { readonly ok: true; readonly signer: string }
  | { readonly ok: false; readonly why: string };

/** Checks an armored SSH signature of `message` against the trusted keys. */
export function verifySignature(
  armored: string,
  message: Buffer,
  trusted: readonly TrustedSigner[],
): SignatureCheck {
  const body = armored.trim();
  if (!body.startsWith(ARMOR_BEGIN) || !body.endsWith(ARMOR_END))
    return { ok: false, why: 'not an SSH signature' };
  try {
    const r = new Reader(
      Buffer.from(body.slice(ARMOR_BEGIN.length, -ARMOR_END.length).replace(/\s+/g, ''), 'base64'),
    );
    if (!r.bytes(6).equals(MAGIC)) return { ok: false, why: 'not an SSH signature' };
    if (r.u32() !== 1) return { ok: false, why: 'unsupported signature version' };
    const publicBlob = r.string();
    const namespace = r.string().toString();
    r.string(); // reserved
    const hashAlg = r.string().toString();
    const sig = new Reader(r.string());
    if (namespace !== SIGNATURE_NAMESPACE)
      return {
        ok: false,
        why: `signed for namespace "${namespace}", not "${SIGNATURE_NAMESPACE}"`,
      };
    if (hashAlg !== 'sha512' && hashAlg !== 'sha256')
      return { ok: false, why: `unsupported hash ${hashAlg}` };
    if (sig.string().toString() !== 'ssh-ed25519')
      return { ok: false, why: 'not an Ed25519 signature' };
    const raw = sig.string();
    const signer = trusted.find((t) => t.blob.equals(publicBlob));
    if (!signer) return { ok: false, why: 'signed by a key that is not in trusted-signers' };
    return verifyOnce(signedData(namespace, hashAlg, message), signer, raw)
      ? { ok: true, signer: signer.text }
      : { ok: false, why: 'the signature does not match the content (altered after signing)' };
  } catch {
    return { ok: false, why: 'a malformed SSH signature' };
  }
}
