import { createHmac, randomBytes } from 'node:crypto';
import ssh2 from 'ssh2';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import {
  fingerprint,
  hostKeyMatches,
  knownHostsName,
  parseClientKey,
  parseKnownHosts,
} from '../../src/tunnel/index.js';

// Real keys made with ssh-keygen; fingerprints as `ssh-keygen -l` printed them.
const ED = 'AAAAC3NzaC1lZDI1NTE5AAAAIBI8tT5P97mIQFW8qdJMmYVlYNKCqkNosJzKLjFCN/vN';
const ED_FP = 'SHA256:QuLCVZVJYAd44uCz0iH7tL2xzTcqAdjQDzhf0m1UaPk';
const ED2 = 'AAAAC3NzaC1lZDI1NTE5AAAAIMjQwjLQMbFxxgQjs94YXKFhW9CGsBknqPe6d/sBki6B';
const RSA =
  'AAAAB3NzaC1yc2EAAAADAQABAAABAQDCB7lt+ykBSaq9iNpUGR4bMgbsY9Br76MERmvfrttNI7VHhNqx9+0ig1SYubv3ZKc/tIIWeFsL29JFw3J8OsaprTRzqNV1BmSgpYerpI7y+J9q0CMg0Vy6Er80wpdme8ryfqCJchHnthRSRlisZZg0Tk0cvhNCZFlONv6UKnrNoyS5xmMFjj3f001a1plpDfzd6P6cpS+F5pUUTjFmKdiRJdrDZJjqS+Dzgsx7w03aciJE3sAfxi+5yni2ZOWkVIThfC9WI87lSi8LvPd6f/whgqf4+RCv5lE4WZC8o7XJVjd8XuTt8DlKk/AwdysB1pOnWyLaSytYqvRqYJQ2ELOp';
const RSA_FP = 'SHA256:60qqYnLom2m3f4SfugpMdWc1iwfQUVpbcQAmu5eZBF0';
const EC =
  'AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBK33xFnsghOlO+pRomPEsmmpWLbodmRuOYjCAwecXo94QN4Kt5Db+i7hEVqyYktFvEnJrnPTRzfJnog2WS8S2Qc=';

// `ssh-keygen -H` output for "bastion.example.com ssh-ed25519 ED" and
// "[bastion.example.com]:2222 ssh-ed25519 ED2".
const HASHED = [
  `|1|UKfUkKMX++8WW7dC+M9SAsOuzAg=|1WQvgJa6sztelcyeveYH8XclKrk= ssh-ed25519 ${ED}`,
  `|1|WmdabhAZtN4+XFn+zs6Z/Vdg9AI=|rnkmhlpEnIn6jj1gm5fEuec/UJU= ssh-ed25519 ${ED2}`,
].join('\n');

/** A hashed name computed the way ssh-keygen -H does: HMAC-SHA1 keyed by a random salt. */
function hashName(name: string): string {
  const salt = randomBytes(20);
  const hash = createHmac('sha1', salt).update(name).digest();
  return `|1|${salt.toString('base64')}|${hash.toString('base64')}`;
}

describe('fingerprint', () => {
  it('is what ssh-keygen -l prints', () => {
    expect(fingerprint(Buffer.from(ED, 'base64'))).toBe(ED_FP);
    expect(fingerprint(Buffer.from(RSA, 'base64'))).toBe(RSA_FP);
  });
});

describe('parseKnownHosts', () => {
  it('reads plain, [host]:port, lists, markers and comments', () => {
    const entries = parseKnownHosts(
      [
        '# bastion.example.com:22 SSH-2.0-OpenSSH_9.2',
        '',
        `bastion.example.com,10.0.0.5 ssh-ed25519 ${ED} root@bastion`,
        `  [bastion.example.com]:2222 ssh-rsa ${RSA}\r`,
        `@revoked * ssh-ed25519 ${ED2}`,
        `@cert-authority *.example.com ssh-ed25519 ${ED}`,
      ].join('\n'),
    );
    expect(entries).toHaveLength(3);
    expect(entries[0]).toMatchObject({
      line: 3,
      revoked: false,
      keyType: 'ssh-ed25519',
      keyBase64: ED,
      hosts: [
        { kind: 'plain', pattern: 'bastion.example.com', negated: false },
        { kind: 'plain', pattern: '10.0.0.5', negated: false },
      ],
    });
    expect(entries[1]).toMatchObject({ line: 4, keyType: 'ssh-rsa', keyBase64: RSA });
    expect(entries[2]).toMatchObject({ line: 5, revoked: true, keyBase64: ED2 });
  });

  it('refuses malformed lines with an InputError on ssh-known-hosts, naming the line', () => {
    const bad = [
      'bastion.example.com ssh-ed25519',
      `bastion.example.com ssh-ed25519 not*base64`,
      `bastion.example.com ssh-rsa ${ED}`, // the blob says ssh-ed25519
      `|1|abc|def ssh-ed25519 ${ED}`,
      `@weird bastion.example.com ssh-ed25519 ${ED}`,
    ];
    for (const line of bad) {
      let err: unknown;
      try {
        parseKnownHosts(`# header\n${line}`);
      } catch (e) {
        err = e;
      }
      expect(err, line).toBeInstanceOf(InputError);
      expect((err as InputError).input).toBe('ssh-known-hosts');
      expect((err as InputError).message).toContain('line 2');
    }
  });

  it('returns nothing for comments and blank lines only', () => {
    expect(parseKnownHosts('# nothing\n\n   \n')).toEqual([]);
  });
});

describe('hostKeyMatches', () => {
  it('matches a plain host on port 22 only, case-insensitively', () => {
    const entries = parseKnownHosts(`Bastion.Example.com ssh-ed25519 ${ED}`);
    expect(hostKeyMatches(entries, 'bastion.example.com', 22, 'ssh-ed25519', ED)).toBe('match');
    expect(hostKeyMatches(entries, 'BASTION.example.com', 22, 'ssh-ed25519', ED)).toBe('match');
    // A different key for a known host: mismatch.
    expect(hostKeyMatches(entries, 'bastion.example.com', 22, 'ssh-ed25519', ED2)).toBe('mismatch');
    // The plain name means port 22: on another port the host is not known.
    expect(hostKeyMatches(entries, 'bastion.example.com', 2222, 'ssh-ed25519', ED)).toBe('unknown');
    expect(hostKeyMatches(entries, 'other.example.com', 22, 'ssh-ed25519', ED)).toBe('unknown');
  });

  it('matches [host]:port entries on that port only', () => {
    const entries = parseKnownHosts(`[bastion.example.com]:2222 ssh-ed25519 ${ED}`);
    expect(hostKeyMatches(entries, 'bastion.example.com', 2222, 'ssh-ed25519', ED)).toBe('match');
    expect(hostKeyMatches(entries, 'bastion.example.com', 22, 'ssh-ed25519', ED)).toBe('unknown');
    expect(hostKeyMatches(entries, 'bastion.example.com', 2223, 'ssh-ed25519', ED)).toBe('unknown');
    expect(knownHostsName('127.0.0.1', 2222)).toBe('[127.0.0.1]:2222');
    expect(knownHostsName('Bastion', 22)).toBe('bastion');
  });

  it('matches hashed entries made by ssh-keygen -H', () => {
    const entries = parseKnownHosts(HASHED);
    expect(hostKeyMatches(entries, 'bastion.example.com', 22, 'ssh-ed25519', ED)).toBe('match');
    expect(hostKeyMatches(entries, 'bastion.example.com', 2222, 'ssh-ed25519', ED2)).toBe('match');
    expect(hostKeyMatches(entries, 'bastion.example.com', 22, 'ssh-ed25519', ED2)).toBe('mismatch');
    expect(hostKeyMatches(entries, 'bastion.example.org', 22, 'ssh-ed25519', ED)).toBe('unknown');
  });

  it('matches hashed entries computed with HMAC-SHA1', () => {
    const entries = parseKnownHosts(
      `${hashName('[10.1.2.3]:2200')} ssh-ed25519 ${ED}\n${hashName('db-bastion')} ssh-rsa ${RSA}`,
    );
    expect(hostKeyMatches(entries, '10.1.2.3', 2200, 'ssh-ed25519', ED)).toBe('match');
    expect(hostKeyMatches(entries, 'db-bastion', 22, 'ssh-rsa', RSA)).toBe('match');
    expect(hostKeyMatches(entries, '10.1.2.3', 22, 'ssh-ed25519', ED)).toBe('unknown');
  });

  it('accepts any pinned key type of a host with several, and no other key', () => {
    const entries = parseKnownHosts(
      [
        `bastion ssh-ed25519 ${ED}`,
        `bastion ssh-rsa ${RSA}`,
        `bastion ecdsa-sha2-nistp256 ${EC}`,
      ].join('\n'),
    );
    expect(hostKeyMatches(entries, 'bastion', 22, 'ssh-ed25519', ED)).toBe('match');
    expect(hostKeyMatches(entries, 'bastion', 22, 'ssh-rsa', RSA)).toBe('match');
    expect(hostKeyMatches(entries, 'bastion', 22, 'ecdsa-sha2-nistp256', EC)).toBe('match');
    expect(hostKeyMatches(entries, 'bastion', 22, 'ssh-ed25519', ED2)).toBe('mismatch');
    // The right bytes under the wrong type name do not count.
    expect(hostKeyMatches(entries, 'bastion', 22, 'ssh-rsa', ED)).toBe('mismatch');
  });

  it('treats a host known with another key type only as a mismatch', () => {
    const entries = parseKnownHosts(`bastion ssh-rsa ${RSA}`);
    expect(hostKeyMatches(entries, 'bastion', 22, 'ssh-ed25519', ED)).toBe('mismatch');
  });

  it('refuses a key marked @revoked, even when it is also pinned', () => {
    const entries = parseKnownHosts(
      [
        `bastion ssh-ed25519 ${ED}`,
        `bastion ssh-ed25519 ${ED2}`,
        `@revoked * ssh-ed25519 ${ED2}`,
      ].join('\n'),
    );
    expect(hostKeyMatches(entries, 'bastion', 22, 'ssh-ed25519', ED)).toBe('match');
    expect(hostKeyMatches(entries, 'bastion', 22, 'ssh-ed25519', ED2)).toBe('revoked');
    // A revoked line alone does not make a host known.
    expect(hostKeyMatches(entries, 'elsewhere', 22, 'ssh-ed25519', ED)).toBe('unknown');
  });

  it('supports OpenSSH wildcards and negation', () => {
    const entries = parseKnownHosts(`*.example.com,!evil.example.com,bastion-? ssh-ed25519 ${ED}`);
    expect(hostKeyMatches(entries, 'db.example.com', 22, 'ssh-ed25519', ED)).toBe('match');
    expect(hostKeyMatches(entries, 'bastion-1', 22, 'ssh-ed25519', ED)).toBe('match');
    expect(hostKeyMatches(entries, 'bastion-12', 22, 'ssh-ed25519', ED)).toBe('unknown');
    expect(hostKeyMatches(entries, 'evil.example.com', 22, 'ssh-ed25519', ED)).toBe('unknown');
    // A dot in a pattern is literal.
    expect(hostKeyMatches(entries, 'dbXexample.com', 22, 'ssh-ed25519', ED)).toBe('unknown');
  });

  it('ignores comment lines and @cert-authority lines', () => {
    const entries = parseKnownHosts(
      `# bastion ssh-ed25519 ${ED}\n@cert-authority bastion ssh-ed25519 ${ED}`,
    );
    expect(hostKeyMatches(entries, 'bastion', 22, 'ssh-ed25519', ED)).toBe('unknown');
  });
});

describe('parseClientKey', () => {
  const ed = ssh2.utils.generateKeyPairSync('ed25519');
  const rsa = ssh2.utils.generateKeyPairSync('rsa', { bits: 2048 });

  it('reads OpenSSH ed25519 and RSA keys, trimmed, with CRLF or escaped newlines', () => {
    expect(parseClientKey(ed.private).type).toBe('ssh-ed25519');
    expect(parseClientKey(rsa.private).type).toBe('ssh-rsa');
    expect(parseClientKey(ed.private.trim()).type).toBe('ssh-ed25519');
    expect(parseClientKey(ed.private.replace(/\n/g, '\r\n')).type).toBe('ssh-ed25519');
    expect(parseClientKey(ed.private.trim().replace(/\n/g, '\\n')).type).toBe('ssh-ed25519');
    const pub = ed.public.split(' ')[1] as string;
    expect(parseClientKey(ed.private).fingerprint).toBe(fingerprint(Buffer.from(pub, 'base64')));
  });

  it('refuses what it cannot use with an InputError that never shows the key', () => {
    const encrypted = ssh2.utils.generateKeyPairSync('ed25519', {
      passphrase: 'correct horse',
      cipher: 'aes256-ctr',
      rounds: 4,
    });
    const cases: Array<[string, RegExp]> = [
      [encrypted.private, /passphrase/],
      [ed.public, /public key/],
      [ed.private.replace(/[A-Za-z0-9]{20}\n/, 'x\n'), /could not be read/],
      ['not a key at all', /could not be read/],
    ];
    for (const [text, why] of cases) {
      let err: unknown;
      try {
        parseClientKey(text);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InputError);
      expect((err as InputError).input).toBe('ssh-private-key');
      expect((err as InputError).message).toMatch(why);
      for (const line of text.split('\n').filter((l) => l.length > 12 && !l.startsWith('-----')))
        expect((err as InputError).message).not.toContain(line);
    }
  });
});
