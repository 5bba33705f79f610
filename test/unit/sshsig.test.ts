import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  parseSigningKey,
  parseTrustedSigners,
  type Signer,
  verifySignature,
} from '../../src/crypto/sshsig.js';
import { ed25519KeyPair, type KeyPair, opensshSign, opensshVerifies } from '../harness/ssh-keys.js';

let dir: string;
let key: KeyPair;
let signer: Signer;
const MESSAGE = Buffer.from('{"format":"pg-dr/1","id":"20261130T020000Z-abcdef"}\n');

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pg-dr-sshsig-'));
  key = ed25519KeyPair(dir, 'key', 'pg-dr signing');
  signer = parseSigningKey(key.privateKey);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('SSH signatures', () => {
  it('gives the public key of the .pub file', () => {
    expect(key.publicKey.startsWith(signer.publicKey)).toBe(true);
  });

  it('stock OpenSSH verifies what pg-dr signs, and rejects a one-byte change', () => {
    const sig = signer.sign(MESSAGE);
    expect(sig).toMatch(/^-----BEGIN SSH SIGNATURE-----\n[\s\S]+\n-----END SSH SIGNATURE-----\n$/);
    expect(opensshVerifies(dir, sig, MESSAGE, key.publicKey)).toBe(true);
    const changed = Buffer.from(MESSAGE);
    changed[10] = (changed[10] as number) ^ 1;
    expect(opensshVerifies(dir, sig, changed, key.publicKey)).toBe(false);
  });

  it('verifies what ssh-keygen -Y sign writes, and refuses what it should', () => {
    const file = join(dir, 'msg');
    writeFileSync(file, MESSAGE);
    const trusted = parseTrustedSigners(key.publicKey);
    expect(verifySignature(opensshSign(key, file), MESSAGE, trusted)).toEqual({
      ok: true,
      signer: signer.publicKey,
    });
    expect(
      verifySignature(signer.sign(MESSAGE), Buffer.concat([MESSAGE, Buffer.from(' ')]), trusted),
    ).toEqual({
      ok: false,
      why: 'the signature does not match the content (altered after signing)',
    });
    const other = parseSigningKey(ed25519KeyPair(dir, 'other').privateKey);
    expect(verifySignature(other.sign(MESSAGE), MESSAGE, trusted)).toEqual({
      ok: false,
      why: 'signed by a key that is not in trusted-signers',
    });
    expect(verifySignature(opensshSign(key, file, 'file'), MESSAGE, trusted)).toEqual({
      ok: false,
      why: 'signed for namespace "file", not "pg-dr"',
    });
    expect(
      verifySignature(
        '-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----',
        MESSAGE,
        trusted,
      ).ok,
    ).toBe(false);
    // Several trusted signers (a rotation): either verifies.
    const both = parseTrustedSigners(`${key.publicKey}\n${other.publicKey} new`);
    expect(verifySignature(other.sign(MESSAGE), MESSAGE, both).ok).toBe(true);
  });

  it('a check already made is remembered only for the same key, signature and bytes', () => {
    const trusted = parseTrustedSigners(key.publicKey);
    const sig = signer.sign(MESSAGE);
    // The same signed bytes twice (a manifest's two copies): verified both times.
    expect(verifySignature(sig, MESSAGE, trusted).ok).toBe(true);
    expect(verifySignature(sig, Buffer.from(MESSAGE), trusted).ok).toBe(true);
    // After a good check, the same signature over other bytes is still refused…
    const changed = Buffer.from(MESSAGE);
    changed[10] = (changed[10] as number) ^ 1;
    expect(verifySignature(sig, changed, trusted)).toEqual({
      ok: false,
      why: 'the signature does not match the content (altered after signing)',
    });
    // …and a refused check does not taint the genuine bytes.
    expect(verifySignature(sig, MESSAGE, trusted).ok).toBe(true);
    // Nor does a good check let the same signature pass under a key no longer trusted.
    const other = parseSigningKey(ed25519KeyPair(dir, 'rotated').privateKey);
    expect(verifySignature(sig, MESSAGE, parseTrustedSigners(other.publicKey)).ok).toBe(false);
  });

  it('names the input, never the key, on bad input', () => {
    const rsa = join(dir, 'rsa');
    execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-f', rsa]);
    expect(() => parseSigningKey(readFileSync(rsa, 'utf8'))).toThrow(
      /'signing-key': it is a ssh-rsa key.*Ed25519/,
    );
    expect(() => parseSigningKey('not a key')).toThrow(
      /Invalid 'signing-key': it could not be read as a key/,
    );
    expect(() => parseSigningKey(key.publicKey)).toThrow(/'signing-key'/);
    expect(() => parseTrustedSigners('ssh-rsa AAAAB3Nza… me')).toThrow(
      /Invalid 'trusted-signers' line 1/,
    );
    expect(
      parseTrustedSigners(`# ops\npg-dr namespaces="pg-dr" ${key.publicKey}\n\n`),
    ).toHaveLength(1);
  });
});
