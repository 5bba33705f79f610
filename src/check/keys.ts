/**
 * `check`'s key rows: the age keys (a probe encrypted to the recipients and opened with the
 * identity, or a passphrase round trip) and the signing key against the trusted signers.
 * Nothing here prints a secret key: only public keys and counts.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  type DecryptionSettings,
  decryptStream,
  type EncryptionSettings,
  encryptStream,
  recipientsOf,
} from '../crypto/age.js';
import { type Signer, type TrustedSigner, verifySignature } from '../crypto/sshsig.js';
import { type CheckRow, fail, ok, skipped } from './row.js';

const AGE = 'age: encryption keys';
const SIGNING = 'signing key and trusted signers';

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Encrypts `data` with `enc` and opens it with `dec`: the bytes, or the reason it failed. */
async function roundTrip(
  enc: EncryptionSettings,
  dec: DecryptionSettings,
  data: Buffer,
): Promise<{ ok: true } | { ok: false; why: string }> {
  const sealed = await collect(await encryptStream(enc, Readable.from([data])));
  try {
    const opened = await collect(await decryptStream(dec, Readable.from([sealed])));
    return opened.equals(data) ? { ok: true } : { ok: false, why: 'the bytes differ' };
  } catch (e) {
    return { ok: false, why: (e as Error).message };
  }
}

/** The age row: recipients parse, and with the identity (or passphrase) they open a probe. */
export async function checkAge(
  encryption: EncryptionSettings | null,
  decryption: DecryptionSettings | null,
): Promise<CheckRow> {
  const probe = randomBytes(4096);
  if (encryption?.mode === 'passphrase') {
    const r = await roundTrip(encryption, encryption, probe);
    return r.ok
      ? ok(AGE, 'passphrase: a probe encrypted and decrypted (age scrypt)')
      : fail(AGE, `passphrase round trip failed: ${r.why}`, "Check 'passphrase'.");
  }
  if (encryption === null && decryption === null)
    return skipped(AGE, "'age-recipients', 'passphrase' and 'age-identity' are not set");
  if (encryption === null) {
    const keys = decryption?.mode === 'identities' ? await recipientsOf(decryption.identities) : [];
    return ok(
      AGE,
      `'age-identity' parses (public key ${keys.join(', ')}); 'age-recipients' not set: the pair is not checked`,
    );
  }
  const n = encryption.recipients.length;
  if (decryption === null)
    return ok(
      AGE,
      `${n} recipient(s) parse; 'age-identity' not set: whether a key you hold opens the backups is not checked`,
    );
  const r = await roundTrip(encryption, decryption, probe);
  if (r.ok)
    return ok(AGE, `a probe encrypted to the ${n} recipient(s) was decrypted with 'age-identity'`);
  const held = decryption.mode === 'identities' ? await recipientsOf(decryption.identities) : [];
  return fail(
    AGE,
    `'age-identity' (public key ${held.join(', ')}) opens none of the ${n} recipient(s) in 'age-recipients': ${r.why}`,
    "The pair does not match: put the public key of 'age-identity' (age-keygen -y <key file>) in 'age-recipients', or set 'age-identity' to the secret key of one of the recipients.",
  );
}

/** The signing row: the key's public half is among the trusted signers (a probe signed and checked). */
export function checkSigning(
  signer: Signer | null,
  trusted: readonly TrustedSigner[] | null,
): CheckRow {
  if (!signer && !trusted)
    return skipped(SIGNING, "'signing-key' and 'trusted-signers' are not set");
  if (!signer)
    return ok(SIGNING, `${trusted?.length} trusted signer(s) parse; 'signing-key' not set`);
  if (!trusted)
    return ok(
      SIGNING,
      `'signing-key' parses (public key ${signer.publicKey}); 'trusted-signers' not set: nothing checks its signatures`,
    );
  const message = randomBytes(64);
  const verdict = verifySignature(signer.sign(message), message, trusted);
  if (verdict.ok)
    return ok(
      SIGNING,
      `a probe signed with 'signing-key' (${signer.publicKey}) verifies against 'trusted-signers'`,
    );
  return fail(
    SIGNING,
    `the public key of 'signing-key' (${signer.publicKey}) is not among the ${trusted.length} key(s) of 'trusted-signers': ${verdict.why}`,
    `Add "${signer.publicKey} pg-dr" as a line of 'trusted-signers', or set 'signing-key' to the key whose public half is listed there; otherwise every backup this run signs is reported untrusted.`,
  );
}
