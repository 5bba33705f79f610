// Ed25519 key pairs made with ssh-keygen at run time (no key is ever committed), and
// OpenSSH's own signature check, for the tests of signed backups.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface KeyPair {
  /** The private key file's text (OpenSSH format, no passphrase). */
  readonly privateKey: string;
  /** The `.pub` line: `ssh-ed25519 AAAA… comment`. */
  readonly publicKey: string;
  readonly path: string;
}

/** `ssh-keygen -t ed25519 -N ''` into `<dir>/<name>`. */
export function ed25519KeyPair(dir: string, name: string, comment = 'pg-dr'): KeyPair {
  const path = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path]);
  return {
    privateKey: readFileSync(path, 'utf8'),
    publicKey: readFileSync(`${path}.pub`, 'utf8').trim(),
    path,
  };
}

/**
 * `ssh-keygen -Y verify -f allowed_signers -I pg-dr -n pg-dr -s <sig> < message`, as the
 * runbook runs it: true when stock OpenSSH accepts the signature.
 */
export function opensshVerifies(
  dir: string,
  signature: string | Buffer,
  message: Buffer,
  publicKey: string,
): boolean {
  writeFileSync(join(dir, 'allowed_signers'), `pg-dr ${publicKey}\n`);
  writeFileSync(join(dir, 'checked.sig'), signature);
  const args = ['-Y', 'verify', '-f', join(dir, 'allowed_signers'), '-I', 'pg-dr', '-n', 'pg-dr'];
  return (
    spawnSync('ssh-keygen', [...args, '-s', join(dir, 'checked.sig')], { input: message })
      .status === 0
  );
}

/** `ssh-keygen -Y sign` of `file` in `namespace`; returns the signature's text. */
export function opensshSign(key: KeyPair, file: string, namespace = 'pg-dr'): string {
  spawnSync('rm', ['-f', `${file}.sig`]);
  execFileSync('ssh-keygen', ['-Y', 'sign', '-q', '-f', key.path, '-n', namespace, file]);
  return readFileSync(`${file}.sig`, 'utf8');
}
