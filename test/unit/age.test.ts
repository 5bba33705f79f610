import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Decrypter, Encrypter, generateX25519Identity, identityToRecipient } from 'age-encryption';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  decryptStream,
  encryptStream,
  parseIdentities,
  parseRecipients,
  recipientsOf,
} from '../../src/crypto/age.js';
import { InputError } from '../../src/errors.js';

interface KeyPair {
  identity: string;
  recipient: string;
}

async function keyPair(): Promise<KeyPair> {
  const identity = await generateX25519Identity();
  return { identity, recipient: await identityToRecipient(identity) };
}

let alice: KeyPair;
let bob: KeyPair;
let mallory: KeyPair;
beforeAll(async () => {
  [alice, bob, mallory] = await Promise.all([keyPair(), keyPair(), keyPair()]);
});

/** A whole buffer encrypted by age-encryption itself, for `recipients`. */
async function libraryEncrypt(
  recipients: readonly string[],
  data: Uint8Array,
): Promise<Uint8Array> {
  const e = new Encrypter();
  for (const r of recipients) e.addRecipient(r);
  return e.encrypt(data);
}

function thrown(fn: () => unknown): InputError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return e as InputError;
  }
  throw new Error('expected an InputError, nothing was thrown');
}

/** Flips the last data character of a bech32 string: the format survives, the checksum not. */
function corrupt(key: string): string {
  const last = key.at(-1);
  return key.slice(0, -1) + (last === 'q' ? 'p' : 'q');
}

/** Random data in uneven chunks, with the SHA-256 of the whole. */
function randomSource(totalBytes: number): { chunks: Buffer[]; sha256: string } {
  const chunks: Buffer[] = [];
  const hash = createHash('sha256');
  let left = totalBytes;
  while (left > 0) {
    const n = Math.min(left, 100_000 + Math.floor(Math.random() * 200_000));
    const c = randomBytes(n);
    chunks.push(c);
    hash.update(c);
    left -= n;
  }
  return { chunks, sha256: hash.digest('hex') };
}

async function digest(stream: Readable): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const c of stream) {
    hash.update(c as Buffer);
    bytes += (c as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(parts);
}

describe('parseRecipients', () => {
  it('splits on newlines, commas and spaces, skips comments, removes duplicates', () => {
    const text = [
      '# ops team',
      `${alice.recipient}, ${bob.recipient}`,
      '',
      `  ${mallory.recipient}\t${alice.recipient}  `,
      `   # ${bob.recipient} (commented out, still listed above)`,
      `${bob.recipient}\r`,
    ].join('\n');
    expect(parseRecipients(text)).toEqual([alice.recipient, bob.recipient, mallory.recipient]);
  });

  it('returns nothing for blank or comment-only text', () => {
    expect(parseRecipients('')).toEqual([]);
    expect(parseRecipients('\n  \n# nobody yet\n')).toEqual([]);
  });

  it('refuses a secret key given as a recipient without echoing it', () => {
    const err = thrown(() => parseRecipients(`${alice.recipient}\n${bob.identity}`));
    expect(err.input).toBe('age-recipients');
    expect(err.message).toContain("Invalid 'age-recipients'");
    expect(err.message).toContain('secret key');
    expect(err.message).not.toContain(bob.identity);
    expect(err.message).not.toContain(bob.identity.slice(16, 40));
  });

  it('refuses a whole age-keygen file pasted as recipients without echoing the key', () => {
    const file = `# created: 2026-01-01T00:00:00Z\n# public key: ${alice.recipient}\n${alice.identity}\n`;
    const err = thrown(() => parseRecipients(file));
    expect(err.message).not.toContain(alice.identity.slice(16));
  });

  // Only a token that *starts* with AGE-SECRET-KEY is hidden; a quoted (or otherwise
  // prefixed) secret key is echoed in the error, up to 80 characters: the whole key.
  it('refuses a quoted secret key without echoing it', () => {
    const err = thrown(() => parseRecipients(`"${bob.identity}"`));
    expect(err.message).not.toContain(bob.identity.slice(16));
  });

  it('refuses a recipient that fails its checksum', () => {
    const bad = corrupt(alice.recipient);
    expect(bad).not.toBe(alice.recipient);
    const err = thrown(() => parseRecipients(`${bob.recipient}\n${bad}`));
    expect(err.input).toBe('age-recipients');
    expect(err.message).toContain('checksum');
    expect(err.message).toContain(bad);
  });

  it('refuses something that is not a key, showing what it got', () => {
    const err = thrown(() => parseRecipients('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5'));
    expect(err.message).toContain('"ssh-ed25519"');
    expect(err.message).toContain('age-keygen -y');
    expect(thrown(() => parseRecipients(alice.recipient.slice(0, 40))).input).toBe(
      'age-recipients',
    );
  });
});

describe('parseIdentities', () => {
  it('reads an age-keygen file: comments skipped, CRLF tolerated', () => {
    const file = [
      '# created: 2026-11-26T02:00:00Z',
      `# public key: ${alice.recipient}`,
      alice.identity,
      '',
      `# public key: ${bob.recipient}`,
      `${bob.identity}\r`,
      '',
    ].join('\n');
    expect(parseIdentities(file)).toEqual([alice.identity, bob.identity]);
  });

  it('refuses junk without echoing it', () => {
    const junk = `${alice.identity}\nnot-a-key-${bob.identity.slice(16)}`;
    const err = thrown(() => parseIdentities(junk));
    expect(err.input).toBe('age-identity');
    expect(err.message).toContain("Invalid 'age-identity'");
    expect(err.message).not.toContain(bob.identity.slice(16));
    expect(err.message).not.toContain(alice.identity);
  });

  it('refuses a public key given as identity', () => {
    const err = thrown(() => parseIdentities(alice.recipient));
    expect(err.input).toBe('age-identity');
    expect(err.message).not.toContain(alice.recipient);
  });

  it('refuses text with no key at all', () => {
    expect(thrown(() => parseIdentities('# nothing here\n')).message).toBe(
      "Invalid 'age-identity': no AGE-SECRET-KEY-1… line found.",
    );
  });

  it('gives the public keys of identities', async () => {
    expect(await recipientsOf([alice.identity, bob.identity])).toEqual([
      alice.recipient,
      bob.recipient,
    ]);
  });
});

describe('encryptStream / decryptStream', () => {
  const SIZE = 5 * 1024 * 1024 + 12_345;

  it('round-trips a multi-MB stream for recipients; each recipient can decrypt', async () => {
    const src = randomSource(SIZE);
    const encrypted = await collect(
      await encryptStream(
        { mode: 'recipients', recipients: [alice.recipient, bob.recipient] },
        Readable.from(src.chunks),
      ),
    );
    expect(encrypted.subarray(0, 21).toString()).toBe('age-encryption.org/v1');
    expect(encrypted.length).toBeGreaterThan(SIZE);
    // Ciphertext is not the plaintext.
    expect(createHash('sha256').update(encrypted).digest('hex')).not.toBe(src.sha256);

    for (const who of [alice, bob]) {
      const out = await digest(
        await decryptStream(
          { mode: 'identities', identities: [who.identity] },
          Readable.from([encrypted]),
        ),
      );
      expect(out).toEqual({ sha256: src.sha256, bytes: SIZE });
    }
  });

  it('round-trips a multi-MB stream with a passphrase', async () => {
    const src = randomSource(SIZE);
    const passphrase = 'correct horse battery staple';
    const encrypted = await collect(
      await encryptStream({ mode: 'passphrase', passphrase }, Readable.from(src.chunks)),
    );
    // Decrypt from small chunks, as a download would deliver them.
    const pieces: Buffer[] = [];
    for (let i = 0; i < encrypted.length; i += 64 * 1024)
      pieces.push(encrypted.subarray(i, i + 64 * 1024));
    const out = await digest(
      await decryptStream({ mode: 'passphrase', passphrase }, Readable.from(pieces)),
    );
    expect(out).toEqual({ sha256: src.sha256, bytes: SIZE });
  });

  it('round-trips an empty stream', async () => {
    const encrypted = await collect(
      await encryptStream({ mode: 'recipients', recipients: [alice.recipient] }, Readable.from([])),
    );
    const out = await collect(
      await decryptStream(
        { mode: 'identities', identities: [alice.identity] },
        Readable.from([encrypted]),
      ),
    );
    expect(out.length).toBe(0);
  });

  it('a buffer age-encryption encrypted in one piece decrypts with decryptStream', async () => {
    const data = randomBytes(70_000);
    const encrypted = await libraryEncrypt([bob.recipient], data);
    const out = await collect(
      await decryptStream(
        { mode: 'identities', identities: [bob.identity] },
        Readable.from([Buffer.from(encrypted)]),
      ),
    );
    expect(out.equals(data)).toBe(true);
  });

  it('a wrong identity rejects at the header, before any plaintext', async () => {
    const src = randomSource(2 * 1024 * 1024);
    const encrypted = await collect(
      await encryptStream(
        { mode: 'recipients', recipients: [alice.recipient] },
        Readable.from(src.chunks),
      ),
    );
    let produced = 0;
    const attempt = decryptStream(
      { mode: 'identities', identities: [mallory.identity] },
      Readable.from([encrypted]),
    ).then(async (s) => {
      for await (const c of s) produced += (c as Buffer).length;
    });
    await expect(attempt).rejects.toThrow(/no identity matched/);
    expect(produced).toBe(0);
  });

  it('a wrong passphrase rejects at the header, before any plaintext', async () => {
    const src = randomSource(1024 * 1024);
    const encrypted = await collect(
      await encryptStream(
        { mode: 'passphrase', passphrase: 'correct horse battery staple' },
        Readable.from(src.chunks),
      ),
    );
    let produced = 0;
    const attempt = decryptStream(
      { mode: 'passphrase', passphrase: 'correct horse battery stapler' },
      Readable.from([encrypted]),
    ).then(async (s) => {
      for await (const c of s) produced += (c as Buffer).length;
    });
    await expect(attempt).rejects.toThrow(/no identity matched/);
    expect(produced).toBe(0);
  });

  it('a passphrase cannot open a file encrypted for recipients', async () => {
    const encrypted = await libraryEncrypt([alice.recipient], randomBytes(1000));
    await expect(
      decryptStream(
        { mode: 'passphrase', passphrase: 'correct horse battery staple' },
        Readable.from([Buffer.from(encrypted)]),
      ),
    ).rejects.toThrow(/no identity matched/);
  });

  it('a tampered payload fails the stream instead of yielding wrong bytes', async () => {
    const src = randomSource(300_000);
    const encrypted = await collect(
      await encryptStream(
        { mode: 'recipients', recipients: [alice.recipient] },
        Readable.from(src.chunks),
      ),
    );
    const tampered = Buffer.from(encrypted);
    const at = tampered.length - 1000;
    tampered[at] = (tampered[at] ?? 0) ^ 0x01;
    const plain = await decryptStream(
      { mode: 'identities', identities: [alice.identity] },
      Readable.from([tampered]),
    );
    await expect(digest(plain)).rejects.toThrow();
  });
});

// The payload is sealed by our own code (src/crypto/age/payload.ts) and the header by
// age-encryption: the result must be age v1 for every reader, at every chunk boundary.
describe('age v1 payload format (native ChaCha20-Poly1305)', () => {
  const CHUNK = 64 * 1024;
  const SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 777];

  async function ours(data: Buffer, recipients: string[]): Promise<Buffer> {
    // Uneven input pieces, so chunk boundaries never line up with writes.
    const pieces: Buffer[] = [];
    for (let i = 0; i < data.length; i += 7_919) pieces.push(data.subarray(i, i + 7_919));
    return collect(await encryptStream({ mode: 'recipients', recipients }, Readable.from(pieces)));
  }

  it.each(SIZES)('%i bytes: the library and the age CLI decrypt what we write', async (n) => {
    const data = randomBytes(n);
    // A final newline is a byte like any other: the CLI's output must keep it.
    if (n > 0) data[n - 1] = 0x0a;
    const encrypted = await ours(data, [alice.recipient, bob.recipient]);
    // age: header, 16-byte nonce, ceil(n / 64 KiB) chunks (one when empty) of +16 bytes.
    const chunks = Math.max(1, Math.ceil(n / CHUNK));
    const headerEnd = encrypted.indexOf('\n---') + 1;
    const header = encrypted.subarray(0, encrypted.indexOf(0x0a, headerEnd) + 1);
    expect(encrypted.length).toBe(header.length + 16 + n + 16 * chunks);

    const d = new Decrypter();
    d.addIdentity(bob.identity);
    expect(Buffer.from(await d.decrypt(encrypted)).equals(data)).toBe(true);

    const dir = await mkdtemp(join(tmpdir(), 'age-cli-'));
    try {
      await writeFile(join(dir, 'key'), `${alice.identity}\n`, { mode: 0o600 });
      const r = await execa('age', ['-d', '-i', join(dir, 'key')], {
        input: encrypted,
        encoding: 'buffer',
        // Bytes, not text: execa would otherwise drop a final \n (1 run in 256 failed).
        stripFinalNewline: false,
        reject: false,
      });
      expect(r.exitCode).toBe(0);
      expect(Buffer.from(r.stdout).equals(data)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.each(SIZES)('%i bytes: we decrypt what age-encryption writes', async (n) => {
    const data = randomBytes(n);
    const e = new Encrypter();
    e.addRecipient(alice.recipient);
    const encrypted = Buffer.from(await e.encrypt(data));
    // Delivered in 1000-byte pieces: the header, the nonce and chunks straddle them.
    const pieces: Buffer[] = [];
    for (let i = 0; i < encrypted.length; i += 1000) pieces.push(encrypted.subarray(i, i + 1000));
    const out = await collect(
      await decryptStream(
        { mode: 'identities', identities: [alice.identity] },
        Readable.from(pieces),
      ),
    );
    expect(out.equals(data)).toBe(true);
  });

  it('the age CLI decrypts what it encrypted, through decryptStream', async () => {
    const data = randomBytes(3 * CHUNK + 5);
    const r = await execa('age', ['-r', alice.recipient], {
      input: data,
      encoding: 'buffer',
      stripFinalNewline: false,
    });
    const out = await collect(
      await decryptStream(
        { mode: 'identities', identities: [alice.identity] },
        Readable.from([Buffer.from(r.stdout)]),
      ),
    );
    expect(out.equals(data)).toBe(true);
  });

  /** Decrypts fully; the plaintext released before the failure, and the error. */
  async function attempt(encrypted: Buffer): Promise<{ released: number; error: Error | null }> {
    let released = 0;
    try {
      const s = await decryptStream(
        { mode: 'identities', identities: [alice.identity] },
        Readable.from([encrypted]),
      );
      for await (const c of s) released += (c as Buffer).length;
      return { released, error: null };
    } catch (e) {
      return { released, error: e as Error };
    }
  }

  it('a cut at a chunk boundary, inside a chunk, or inside the header fails; trailing bytes fail', async () => {
    const data = randomBytes(3 * CHUNK + 100);
    const encrypted = await ours(data, [alice.recipient]);
    const payloadStart = encrypted.length - (data.length + 4 * 16);
    const atBoundary = encrypted.subarray(0, payloadStart + 2 * (CHUNK + 16));
    const cut = await attempt(atBoundary);
    expect(cut.error?.message).toMatch(/chunk 1 \(the last one read\) fails authentication/);
    // Chunk 0 was whole and authentic; chunk 1 was never released.
    expect(cut.released).toBeLessThanOrEqual(CHUNK);

    expect((await attempt(encrypted.subarray(0, encrypted.length - 50))).error?.message).toMatch(
      /fails authentication/,
    );
    expect((await attempt(encrypted.subarray(0, payloadStart + 10))).error?.message).toMatch(
      /truncated/,
    );
    expect((await attempt(encrypted.subarray(0, payloadStart - 5))).error?.message).toMatch(
      /inside its payload nonce/,
    );
    expect((await attempt(encrypted.subarray(0, 40))).error?.message).toMatch(/inside its header/);
    expect((await attempt(Buffer.concat([encrypted, Buffer.from('x')]))).error?.message).toMatch(
      /fails authentication/,
    );
    expect(
      (await attempt(Buffer.from('PGDMP not age at all, a plain archive'))).error?.message,
    ).toMatch(/not an age-encryption.org\/v1 file/);
    expect((await attempt(encrypted)).error).toBeNull();
  });

  it('a modified chunk is never released; the chunks before it are', async () => {
    const data = randomBytes(4 * CHUNK);
    const encrypted = Buffer.from(await ours(data, [alice.recipient]));
    const payloadStart = encrypted.length - (data.length + 4 * 16);
    const at = payloadStart + 2 * (CHUNK + 16) + 123; // inside chunk 2
    encrypted[at] = (encrypted[at] ?? 0) ^ 0x80;
    const r = await attempt(encrypted);
    expect(r.error?.message).toMatch(/chunk 2 fails authentication/);
    expect(r.released).toBeLessThanOrEqual(2 * CHUNK);
  });

  it('a passphrase file (our scrypt stanza) is read by age-encryption', async () => {
    const data = randomBytes(CHUNK + 3);
    const encrypted = await collect(
      await encryptStream({ mode: 'passphrase', passphrase: 'tr0ub4dor&3' }, Readable.from([data])),
    );
    expect(encrypted.toString('latin1')).toMatch(/\n-> scrypt [A-Za-z0-9+/]{22} 18\n/);
    const d = new Decrypter();
    d.addPassphrase('tr0ub4dor&3');
    expect(Buffer.from(await d.decrypt(encrypted)).equals(data)).toBe(true);
  });

  it("reads age-encryption's own passphrase files, at the work factor their stanza names", async () => {
    for (const logN of [15, 18]) {
      const data = randomBytes(CHUNK + 5);
      const e = new Encrypter();
      e.setPassphrase('tr0ub4dor&3');
      e.setScryptWorkFactor(logN);
      const encrypted = Buffer.from(await e.encrypt(data));
      expect(encrypted.toString('latin1')).toContain(` ${logN}\n`);
      const out = await collect(
        await decryptStream(
          { mode: 'passphrase', passphrase: 'tr0ub4dor&3' },
          Readable.from([encrypted]),
        ),
      );
      expect(out.equals(data), `work factor ${logN}`).toBe(true);
    }
  });

  it('refuses a scrypt stanza with a work factor over 20, or a malformed one', async () => {
    const encrypted = await collect(
      await encryptStream(
        { mode: 'passphrase', passphrase: 'tr0ub4dor&3' },
        Readable.from([randomBytes(10)]),
      ),
    );
    const text = encrypted.toString('latin1');
    const open = (header: string) =>
      decryptStream(
        { mode: 'passphrase', passphrase: 'tr0ub4dor&3' },
        Readable.from([Buffer.from(header, 'latin1')]),
      ).then(
        () => null,
        (e: Error) => e.message,
      );
    expect(await open(text.replace(/(\n-> scrypt \S+) 18\n/, '$1 21\n'))).toMatch(
      /scrypt work factor is too high/,
    );
    expect(await open(text.replace(/(\n-> scrypt )\S+ 18\n/, '$1AAAA 18\n'))).toMatch(
      /invalid scrypt stanza/,
    );
    expect(await open(text.replace(/(\n-> scrypt \S+) 18\n/, '$1 018\n'))).toMatch(
      /invalid scrypt stanza/,
    );
  });
});
