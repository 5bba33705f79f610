// How pg-dr reaches PostgreSQL: the client programs and, for a private database, the SSH tunnel.
import { existsSync, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { InputError } from '../errors.js';
import type { PgClientSettings } from '../postgres/clients.js';
import type { SshSettings } from '../tunnel/settings.js';
import { parseBoolean, parseRequired } from './primitives.js';
import type { InputSource } from './source.js';

/** `pg-bin-dir` and `install-client` (`auto`, `true` or `false`). */
export function parsePgClients(src: InputSource): PgClientSettings {
  const install =
    src.get('install-client').trim().toLowerCase() === 'auto'
      ? 'auto'
      : parseBoolean(src, 'install-client', 'auto, true or false');
  return { binDir: parsePgBinDir(src), install };
}

function parsePgBinDir(src: InputSource): string {
  const dir = src.get('pg-bin-dir').trim();
  if (dir === '') return '';
  if (!isAbsolute(dir) || !existsSync(dir) || !statSync(dir).isDirectory())
    throw new InputError(
      'pg-bin-dir',
      `Invalid 'pg-bin-dir': "${dir}". Expected the absolute path of a directory holding pg_dump and psql (e.g. /usr/lib/postgresql/17/bin).`,
    );
  return dir;
}

/** The `ssh-*` inputs; null when `ssh-host` is not set (and none of the others is). */
export function parseSsh(src: InputSource): SshSettings | null {
  const hostPort = src.get('ssh-host').trim();
  if (hostPort === '') {
    const other = (['ssh-user', 'ssh-private-key', 'ssh-known-hosts'] as const).find(
      (n) => src.get(n).trim() !== '',
    );
    if (other !== undefined)
      throw new InputError(
        other,
        `'${other}' is set but 'ssh-host' is not. Expected 'ssh-host' with it.`,
      );
    return null;
  }
  const m = /^(\[[^\]]+\]|[^:\s]+)(?::(\d{1,5}))?$/.exec(hostPort);
  if (!m || (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535)))
    throw new InputError(
      'ssh-host',
      `Invalid 'ssh-host': "${hostPort}". Expected host or host:port.`,
    );
  const knownHosts = src.get('ssh-known-hosts').trim();
  if (knownHosts === '')
    throw new InputError(
      'ssh-known-hosts',
      "Missing 'ssh-known-hosts'. Expected the bastion's known_hosts line(s) (ssh-keyscan output you have checked): the host key is always verified.",
    );
  return {
    host: (m[1] as string).replace(/^\[|\]$/g, ''),
    port: m[2] ? Number(m[2]) : 22,
    user: parseRequired(src, 'ssh-user', 'the user on the bastion'),
    privateKey: parseRequired(src, 'ssh-private-key', 'an OpenSSH private key', true),
    knownHosts,
  };
}
