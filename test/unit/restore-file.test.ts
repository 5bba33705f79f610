import { createHash } from 'node:crypto';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encryptStream } from '../../src/crypto/age.js';
import {
  checkFreeSpace,
  downloadArchive,
  spaceNeeded,
  tempSpace,
  withTempArchive,
} from '../../src/pipeline/restore-file.js';
import { ageKeyPair, tempDir } from '../harness/fixtures.js';
import { memoryDestination } from '../harness/memory-destination.js';

const MiB = 1024 ** 2;
let work: string;

beforeAll(async () => {
  work = await tempDir('restore-file');
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** A statfs that reports `free` bytes available, in 4 KiB blocks. */
const freeBytes = (free: number) => async () => ({ bavail: Math.floor(free / 4096), bsize: 4096 });

describe('the free space a parallel restore needs', () => {
  it('asks for the file plus 5%, 64 MiB at least', () => {
    expect(spaceNeeded(0)).toBe(64 * MiB);
    expect(spaceNeeded(100 * MiB)).toBe(164 * MiB);
    expect(spaceNeeded(10_000 * MiB)).toBe(10_500 * MiB);
  });

  it('passes with exactly enough, refuses with one block less, naming the folder and both figures', async () => {
    const file = 1000 * MiB;
    const needed = spaceNeeded(file);
    await expect(
      checkFreeSpace(
        { dir: '/scratch', input: 'restore-temp-dir', statfs: freeBytes(needed) },
        file,
      ),
    ).resolves.toBeUndefined();
    const short = needed - 4096;
    const refused = checkFreeSpace(
      { dir: '/scratch', input: 'restore-temp-dir', statfs: freeBytes(short) },
      file,
    );
    await expect(refused).rejects.toThrow(
      `Not enough free space in "/scratch" for the temporary archive file of a parallel restore: 1.0 GiB free (${short} bytes), 1.0 GiB needed (${needed} bytes: the ${file}-byte archive plus a margin). Point 'restore-temp-dir' at a folder with more space, or set restore-jobs: 1`,
    );
    await expect(refused).rejects.toMatchObject({ input: 'restore-temp-dir' });
  });

  it('a folder that cannot be read is named, with the reason', async () => {
    await expect(
      checkFreeSpace({ dir: join(work, 'missing'), input: 'restore-temp-dir' }, 1),
    ).rejects.toThrow(/Invalid 'restore-temp-dir': cannot use ".*missing" .*\(ENOENT\)/);
  });

  it('the real statfs of an existing folder gives a figure (no refusal for 1 byte)', async () => {
    await expect(
      checkFreeSpace({ dir: work, input: 'restore-temp-dir' }, 1),
    ).resolves.toBeUndefined();
  });

  it('the folder: restore-temp-dir, else RUNNER_TEMP, else the system temporary folder', () => {
    expect(tempSpace('/x', { RUNNER_TEMP: '/r' }).dir).toBe('/x');
    expect(tempSpace(null, { RUNNER_TEMP: '/r' }).dir).toBe('/r');
    expect(tempSpace(null, { RUNNER_TEMP: '' }).dir).toMatch(/^\//);
  });
});

describe('the temporary archive file', () => {
  it('is private, named after the backup, and removed after success and failure alike', async () => {
    const seen: string[] = [];
    await withTempArchive(work, '20261130T101500Z-abc123', async (file) => {
      seen.push(file);
      expect(file).toMatch(/pg-dr-restore-20261130T101500Z-abc123-[^/]+\/archive\.pgdump$/);
      expect((await stat(join(file, '..'))).mode & 0o777).toBe(0o700);
    });
    await expect(
      withTempArchive(work, 'x/../y', async (file) => {
        seen.push(file);
        throw new Error('pg_restore failed');
      }),
    ).rejects.toThrow('pg_restore failed');
    expect(seen[1]).toMatch(/pg-dr-restore-x_\.\._y-/);
    expect(await readdir(work)).toEqual([]);
  });

  it('holds the checked plaintext (0600); a wrong checksum is a failed read', async () => {
    const { identity, recipient } = await ageKeyPair();
    const plain = Buffer.from('PGDMP'.repeat(100_000));
    const enc = await encryptStream(
      { mode: 'recipients', recipients: [recipient] },
      Readable.from([plain]),
    );
    const chunks: Buffer[] = [];
    for await (const c of enc) chunks.push(c as Buffer);
    const cipher = Buffer.concat(chunks);
    const { destination } = memoryDestination('b2');
    await destination.put('b/archive.age', cipher, 'application/octet-stream');
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const opts = (cipherSha: string) => ({
      destination,
      key: 'b/archive.age',
      encrypted: { bytes: cipher.length, sha256: cipherSha },
      decrypt: {
        settings: { mode: 'identities' as const, identities: [identity] },
        plaintext: { bytes: plain.length, sha256: sha(plain) },
        compression: null,
      },
    });
    await withTempArchive(work, 'ok', async (file) => {
      const r = await downloadArchive(opts(sha(cipher)), file);
      expect(r).toMatchObject({ ok: true, failure: null });
      expect((await readFile(file)).equals(plain)).toBe(true);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
    });
    await withTempArchive(work, 'bad', async (file) => {
      const r = await downloadArchive(opts('0'.repeat(64)), file);
      expect(r).toMatchObject({ ok: false, failure: 'checksum' });
      expect(r.error).toMatch(
        /^b\/archive\.age: SHA-256 [0-9a-f]{64} differs from the manifest's 0{64}$/,
      );
    });
    expect(await readdir(work)).toEqual([]);
  });
});
