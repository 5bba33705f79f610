import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Debian packages that provide the binaries the tests need. */
const DEBIAN_PACKAGES: Readonly<Record<string, string>> = {
  age: 'age',
  zstd: 'zstd',
  gzip: 'gzip',
  ssh: 'openssh-client',
  'ssh-keygen': 'openssh-client',
  sshd: 'openssh-server',
  pg_dump: 'postgresql-client-15',
  pg_restore: 'postgresql-client-15',
  psql: 'postgresql-client-15',
  initdb: 'postgresql-15',
  pg_ctl: 'postgresql-15',
  runuser: 'util-linux',
};

/** Absolute path of `name` on PATH (or `name` itself when it is a path), or undefined. */
export function findBinary(name: string): string | undefined {
  const candidates = name.includes('/')
    ? [name]
    : (process.env.PATH ?? '')
        .split(delimiter)
        .filter((dir) => dir !== '')
        .map((dir) => join(dir, name));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

/** True when `name` is an executable on PATH (or an executable path). */
export function hasBinary(name: string): boolean {
  return findBinary(name) !== undefined;
}

/**
 * Returns the absolute path of `name`, or throws an error that says which Debian
 * package to install.
 */
export function requireBinary(name: string): string {
  const found = findBinary(name);
  if (found !== undefined) return found;
  const base = name.split('/').at(-1) ?? name;
  const pkg = DEBIAN_PACKAGES[base];
  const hint = pkg === undefined ? '' : ` Install it with: apt-get install -y ${pkg}`;
  throw new Error(`Required binary '${name}' was not found on PATH.${hint}`);
}
