import { execFileSync, spawnSync } from 'node:child_process';
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

let dir: string;
let signer: Signer;
let publicLine: string;
const MESSAGE = Buffer.from('{"format":"pg-dr/1","id":"20261130T020000Z-abcdef"}\n');

/** `ssh-keygen -Y verify` as the runbook runs it; its exit code. */
function opensshVerifies(sig: string, message: Buffer, allowed: string): boolean {
  writeFileSync(join(dir, 'allowed_signers'), allowed);
  writeFileSync(join(dir, 'm.sig'), sig);
  const r = spawnSync(
    'ssh-keygen',
    [
      '-Y',
      'verify',
      '-f',
      join(dir, 'allowed_signers'),
      '-I',
      'pg-dr',
      '-n',
      'pg-dr',
      '-s',
      join(dir, 'm.sig'),
    ],
    { input: message },
  );
  return r.status === 0;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pg-dr-sshsig-'));
  execFileSync('ssh-keygen', [
    '-q',
    '-t',
    'ed25519',
    '-N',
    '',
    '-C',
    'pg-dr signing',
    '-f',
    join(dir, 'key'),
  ]);
  signer = parseSigningKey(readFileSync(join(dir, 'key'), 'utf8'));
  publicLine = readFileSync(join(dir, 'key.pub'), 'utf8').trim();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('SSH signatures', () => {
  it('gives the public key of the .pub file', () => {
    expect(publicLine.startsWith(signer.publicKey)).toBe(true);
  });

  it('stock OpenSSH verifies what pg-dr signs, and rejects a one-byte change', () => {
    const sig = signer.sign(MESSAGE);
    expect(sig).toMatch(/^-----BEGIN SSH SIGNATURE-----\n[\s\S]+\n-----END SSH SIGNATURE-----\n$/);
    const allowed = `pg-dr ${publicLine}\n`;
    expect(opensshVerifies(sig, MESSAGE, allowed)).toBe(true);
    const changed = Buffer.from(MESSAGE);
    changed[10] = (changed[10] as number) ^ 1;
    expect(opensshVerifies(sig, changed, allowed)).toBe(false);
  });

  it('verifies what ssh-keygen -Y sign writes, and refuses what it should', () => {
    writeFileSync(join(dir, 'msg'), MESSAGE);
    execFileSync('ssh-keygen', [
      '-Y',
      'sign',
      '-q',
      '-f',
      join(dir, 'key'),
      '-n',
      'pg-dr',
      join(dir, 'msg'),
    ]);
    const theirs = readFileSync(join(dir, 'msg.sig'), 'utf8');
    const trusted = parseTrustedSigners(publicLine);
    expect(verifySignature(theirs, MESSAGE, trusted)).toEqual({
      ok: true,
      signer: signer.publicKey,
    });
    expect(verifySignature(signer.sign(MESSAGE), MESSAGE, trusted).ok).toBe(true);
    expect(
      verifySignature(signer.sign(MESSAGE), Buffer.concat([MESSAGE, Buffer.from(' ')]), trusted),
    ).toEqual({
      ok: false,
      why: 'the signature does not match the content (altered after signing)',
    });
    // Another key, another namespace, garbage.
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'other')]);
    const other = parseSigningKey(readFileSync(join(dir, 'other'), 'utf8'));
    expect(verifySignature(other.sign(MESSAGE), MESSAGE, trusted)).toEqual({
      ok: false,
      why: 'signed by a key that is not in trusted-signers',
    });
    rmSync(join(dir, 'msg.sig'));
    execFileSync('ssh-keygen', [
      '-Y',
      'sign',
      '-q',
      '-f',
      join(dir, 'key'),
      '-n',
      'file',
      join(dir, 'msg'),
    ]);
    expect(verifySignature(readFileSync(join(dir, 'msg.sig'), 'utf8'), MESSAGE, trusted)).toEqual({
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
    // Several trusted signers (rotation): either verifies.
    expect(
      verifySignature(
        other.sign(MESSAGE),
        MESSAGE,
        parseTrustedSigners(`${publicLine}\n${other.publicKey} new`),
      ).ok,
    ).toBe(true);
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
    expect(() => parseSigningKey(publicLine)).toThrow(/'signing-key'/);
    expect(() => parseTrustedSigners('ssh-rsa AAAAB3Nza… me')).toThrow(
      /Invalid 'trusted-signers' line 1/,
    );
    expect(parseTrustedSigners(`# ops\npg-dr namespaces="pg-dr" ${publicLine}\n\n`)).toHaveLength(
      1,
    );
  });
});
