import type { ParsedKey } from 'ssh2';
import { InputError } from '../errors.js';
import { fingerprint } from './known-hosts.js';
import ssh2 from './ssh2.js';

const INPUT = 'ssh-private-key';
const EXPECTED =
  'Expected an OpenSSH private key without passphrase (ed25519 or RSA), the whole "BEGIN OPENSSH PRIVATE KEY" block; the value is not shown.';

/** A client key parsed in memory: it is never written to disk. */
export interface ClientKey {
  /**
   * The normalized key text ssh2 authenticates with (ssh2 only takes text or a Buffer). A
   * function, so that printing a ClientKey never prints the key.
   */
  readonly material: () => string;
  /** `ssh-ed25519`, `ssh-rsa`, … */
  readonly type: string;
  /** SHA256 fingerprint of the public half (safe to print). */
  readonly fingerprint: string;
}

/**
 * Undoes what secret stores do to multi-line values: CRLF line ends, and a key pasted
 * on one line with literal `\n` escapes.
 */
function normalize(text: string): string {
  let t = text.replace(/\r\n?/g, '\n').trim();
  if (!t.includes('\n') && t.includes('\\n')) t = t.replace(/\\n/g, '\n').trim();
  return `${t}\n`;
}

/**
 * Parses the `ssh-private-key` text. Errors are InputErrors on 'ssh-private-key' with
 * fixed wording: never the key, nor ssh2's message (which can quote bytes of the key).
 */
export function parseClientKey(text: string): ClientKey {
  const fail = (why: string) => new InputError(INPUT, `Invalid '${INPUT}': ${why}. ${EXPECTED}`);
  if (text.trim() === '') throw new InputError(INPUT, `Missing '${INPUT}'. ${EXPECTED}`);
  const normalized = normalize(text);
  let result: ParsedKey | ParsedKey[] | Error;
  try {
    result = ssh2.utils.parseKey(normalized) as ParsedKey | ParsedKey[] | Error;
  } catch {
    throw fail('it could not be read as a key');
  }
  if (result instanceof Error) {
    if (/passphrase|encrypted/i.test(result.message))
      throw fail('the key is protected by a passphrase, which is not supported');
    if (/unsupported .*(key type|cipher|kdf)/i.test(result.message))
      throw fail('the key type or its encryption is not supported');
    throw fail('it could not be read as a key');
  }
  const parsed = Array.isArray(result) ? result[0] : result;
  if (parsed === undefined) throw fail('it holds no key');
  if (!parsed.isPrivateKey())
    throw fail(
      'it is a public key; the private key is needed (the public one goes on the bastion)',
    );
  return {
    material: () => normalized,
    type: parsed.type,
    fingerprint: fingerprint(parsed.getPublicSSH()),
  };
}
