import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { InputError } from '../errors.js';

const INPUT = 'ssh-known-hosts';

/** One host pattern of a known_hosts line: as written, or hashed (`|1|salt|hash`). */
export type HostPattern =
  | {
      readonly kind: 'plain';
      /** Lower-cased pattern; `*` and `?` are wildcards, as in OpenSSH. */
      readonly pattern: string;
      /** `!pattern`: a host matching it never matches the line. */
      readonly negated: boolean;
    }
  | { readonly kind: 'hashed'; readonly salt: Buffer; readonly hash: Buffer };

/** One key line of `ssh-known-hosts`. */
export interface KnownHost {
  /** 1-based line number in the input, for messages. */
  readonly line: number;
  /** `@revoked`: this key must be refused for the hosts of the line. */
  readonly revoked: boolean;
  readonly hosts: readonly HostPattern[];
  /** Key type as written, e.g. `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`. */
  readonly keyType: string;
  /** The key blob (SSH wire format), base64 as written. */
  readonly keyBase64: string;
}

/** `match`: a pinned key; `revoked`: a key marked `@revoked`; `mismatch`: the host is known with other keys only. */
export type HostKeyVerdict = 'match' | 'mismatch' | 'unknown' | 'revoked';

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function invalid(line: number, what: string): InputError {
  return new InputError(
    INPUT,
    `Invalid '${INPUT}': line ${line} ${what}. Expected known_hosts lines such as ` +
      '"bastion.example.com ssh-ed25519 AAAA…" or "[bastion.example.com]:2222 ssh-ed25519 AAAA…" (ssh-keyscan output).',
  );
}

/** The key type written inside an SSH public key blob (its first string), or undefined. */
export function blobKeyType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const len = blob.readUInt32BE(0);
  if (len === 0 || len > 64 || blob.length < 4 + len) return undefined;
  return blob.subarray(4, 4 + len).toString('latin1');
}

/** OpenSSH's fingerprint of a public key blob: `SHA256:` + unpadded base64. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

function parseHashed(field: string, line: number): HostPattern {
  const parts = field.split('|');
  // '', '1', salt, hash
  const salt = parts[2] ?? '';
  const hash = parts[3] ?? '';
  if (parts.length !== 4 || parts[1] !== '1' || !BASE64.test(salt) || !BASE64.test(hash))
    throw invalid(line, 'has a hashed host name that is not of the form |1|salt|hash');
  const saltBytes = Buffer.from(salt, 'base64');
  const hashBytes = Buffer.from(hash, 'base64');
  if (saltBytes.length !== 20 || hashBytes.length !== 20)
    throw invalid(line, 'has a hashed host name whose salt or hash is not 20 bytes');
  return { kind: 'hashed', salt: saltBytes, hash: hashBytes };
}

function parseHostField(field: string, line: number): HostPattern[] {
  if (field.startsWith('|')) return [parseHashed(field, line)];
  return field.split(',').map((raw) => {
    const negated = raw.startsWith('!');
    const pattern = (negated ? raw.slice(1) : raw).toLowerCase();
    if (pattern === '') throw invalid(line, 'has an empty host name');
    return { kind: 'plain', pattern, negated };
  });
}

/**
 * Parses known_hosts text (as `ssh-keyscan` prints it and as `~/.ssh/known_hosts` holds
 * it): `host[,host2…] keytype base64 [comment]`, `[host]:port`, hashed `|1|salt|hash`
 * names, `!negated` and `*`/`?` wildcard patterns, and `@revoked` lines. Blank lines,
 * `#` comments and `@cert-authority` lines (certificates are not supported) are skipped.
 * A malformed line throws an InputError on 'ssh-known-hosts': a typo must not silently
 * leave the bastion unpinned.
 */
export function parseKnownHosts(text: string): KnownHost[] {
  const entries: KnownHost[] = [];
  const lines = text.split(/\r?\n/);
  for (const [index, rawLine] of lines.entries()) {
    const lineNo = index + 1;
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    let fields = line.split(/[ \t]+/);
    let revoked = false;
    const marker = fields[0] ?? '';
    if (marker.startsWith('@')) {
      if (marker === '@cert-authority') continue;
      if (marker !== '@revoked')
        throw invalid(lineNo, `has an unknown marker "${marker.slice(0, 40)}"`);
      revoked = true;
      fields = fields.slice(1);
    }
    const [hostField, keyType, keyBase64] = fields;
    if (hostField === undefined || keyType === undefined || keyBase64 === undefined)
      throw invalid(lineNo, 'does not have the three fields host, key type and key');
    if (!BASE64.test(keyBase64)) throw invalid(lineNo, 'has a key that is not base64');
    const blobType = blobKeyType(Buffer.from(keyBase64, 'base64'));
    if (blobType !== keyType)
      throw invalid(
        lineNo,
        `has a key whose content does not match its type "${keyType.slice(0, 40)}"`,
      );
    entries.push({
      line: lineNo,
      revoked,
      hosts: parseHostField(hostField, lineNo),
      keyType,
      keyBase64,
    });
  }
  return entries;
}

/** The name known_hosts files store a host under: `host` on port 22, else `[host]:port`. */
export function knownHostsName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

/** OpenSSH's `match_pattern`: `*` any run of characters, `?` one character. */
function wildcardMatch(name: string, pattern: string): boolean {
  if (!pattern.includes('*') && !pattern.includes('?')) return name === pattern;
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 's').test(name);
}

/** Does the line's host list cover `name` (already in known_hosts form)? */
function hostsMatch(hosts: readonly HostPattern[], name: string): boolean {
  let matched = false;
  for (const p of hosts) {
    if (p.kind === 'hashed') {
      const digest = createHmac('sha1', p.salt).update(name).digest();
      if (timingSafeEqual(digest, p.hash)) matched = true;
    } else if (wildcardMatch(name, p.pattern)) {
      if (p.negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** The entries that apply to host:port (revoked ones included). */
export function entriesFor(entries: readonly KnownHost[], host: string, port: number): KnownHost[] {
  const name = knownHostsName(host, port);
  return entries.filter((e) => hostsMatch(e.hosts, name));
}

function sameKey(e: KnownHost, keyType: string, key: Buffer): boolean {
  return e.keyType === keyType && Buffer.from(e.keyBase64, 'base64').equals(key);
}

/**
 * Checks a presented host key against the pinned ones, the way `StrictHostKeyChecking yes`
 * does: a key marked `@revoked` for the host is refused; a pinned key of the host matches;
 * a host known only with other keys (another value or another type) is a mismatch;
 * anything else is unknown.
 */
export function hostKeyMatches(
  entries: readonly KnownHost[],
  host: string,
  port: number,
  keyType: string,
  keyBase64: string,
): HostKeyVerdict {
  const key = Buffer.from(keyBase64, 'base64');
  const relevant = entriesFor(entries, host, port);
  if (relevant.some((e) => e.revoked && sameKey(e, keyType, key))) return 'revoked';
  const pinned = relevant.filter((e) => !e.revoked);
  if (pinned.some((e) => sameKey(e, keyType, key))) return 'match';
  return pinned.length > 0 ? 'mismatch' : 'unknown';
}
