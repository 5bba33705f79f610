import { createHash, randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { openZstdDecompressor } from '../compression/index.js';
import { type DecryptionSettings, decryptStream } from '../crypto/age.js';
import type { TrustedSigner } from '../crypto/sshsig.js';
import { UserError } from '../errors.js';
import { readBytes } from '../manifest/catalog.js';
import { parseSegmentName, type WalFileName } from '../postgres/lsn.js';
import type { Destination } from '../storage/destination.js';
import { findWalFile, type WalCandidate } from './catalog.js';
import type { WalObject } from './record.js';
import { walObjectKey } from './record.js';

/** The WAL file is not in the archive: what PostgreSQL expects past the end of the WAL. */
export class WalFileMissing extends UserError {
  constructor(name: string) {
    super(`${name}: not in the WAL archive`);
    this.name = 'WalFileMissing';
  }
}

/**
 * The exit code of `wal-get` for any failure but a missing file. PostgreSQL reads exit 1 as
 * "no such file" and ends recovery there (promoting without the rest of the WAL); an exit
 * status above 125 makes it stop recovery instead, so a corrupt or unreachable archive is
 * never mistaken for the end of the WAL.
 */
export const WAL_GET_FAILED_EXIT = 126;

/** What wal-get fetched. */
export interface FetchedWal {
  readonly object: WalObject;
  readonly destination: string;
  /** Bytes written (a partial segment padded with zeros to the segment size). */
  readonly bytes: number;
}

/** The plaintext of one stored copy, checked against the records, or why not. */
async function readCopy(
  d: Destination,
  key: string,
  c: WalCandidate,
  decryption: DecryptionSettings,
  env: NodeJS.ProcessEnv,
): Promise<{ wal: Buffer; entry: WalObject }> {
  const max = Math.max(...c.entries.map((e) => e.encrypted.bytes));
  const stored = await readBytes(await d.get(key), max);
  const sha = createHash('sha256').update(stored).digest('hex');
  const entry = c.entries.find(
    (e) => e.encrypted.sha256 === sha && e.encrypted.bytes === stored.length,
  );
  if (!entry)
    throw new Error(
      `${key}: SHA-256 ${sha} (${stored.length} bytes) matches no trusted record of it (altered, or written by a run that never recorded it)`,
    );
  let decrypted: Readable;
  try {
    decrypted = await decryptStream(decryption, Readable.from([stored]));
  } catch (e) {
    throw new Error(`${key}: cannot decrypt: ${(e as Error).message}`);
  }
  const zstd = await openZstdDecompressor(env);
  const out: Buffer[] = [];
  zstd.output.on('data', (b: Buffer) => out.push(b));
  const fed = new Promise<void>((resolve, reject) => {
    decrypted.on('error', reject);
    decrypted.pipe(zstd.input);
    decrypted.on('end', () => resolve());
  });
  await Promise.all([fed, zstd.done]).catch((e: Error) => {
    throw new Error(`${key}: decryption or decompression failed: ${e.message}`);
  });
  const wal = Buffer.concat(out);
  const walSha = createHash('sha256').update(wal).digest('hex');
  if (wal.length !== entry.wal.bytes || walSha !== entry.wal.sha256)
    throw new Error(
      `${key}: the WAL inside (${wal.length} bytes, SHA-256 ${walSha}) differs from the record's (${entry.wal.bytes}, ${entry.wal.sha256})`,
    );
  return { wal, entry };
}

/** Writes `data` to `path` through a temporary file beside it, flushed, then renamed. */
async function writeAtomically(path: string, data: Buffer): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.pg-dr-${randomBytes(4).toString('hex')}`);
  try {
    const f = await open(temp, 'wx', 0o600);
    try {
      await f.writeFile(data);
      await f.sync();
    } finally {
      await f.close();
    }
    await rename(temp, path);
  } catch (e) {
    await rm(temp, { force: true });
    throw e;
  }
}

/**
 * Fetches one WAL file for PostgreSQL's restore_command: finds it through the trusted run
 * records, reads it from the first destination that holds a good copy (primary, then
 * secondary), checks the stored bytes and the WAL inside against the record, and writes it
 * to `path` atomically (a partial segment padded with zeros to the segment size, as
 * PostgreSQL reads only whole segments). Throws {@link WalFileMissing} when no record lists it.
 */
export async function fetchWalFile(o: {
  readonly destinations: readonly Destination[];
  readonly prefix: string;
  readonly file: WalFileName;
  readonly path: string;
  readonly decryption: DecryptionSettings;
  readonly trusted: readonly TrustedSigner[] | null;
  readonly now: Date;
  readonly env: NodeJS.ProcessEnv;
}): Promise<FetchedWal> {
  const c = await findWalFile(o.destinations, o.prefix, o.file, {
    now: o.now,
    trusted: o.trusted,
    segmentStartOf: (bytes) => parseSegmentName(o.file.name, bytes)?.start ?? 0n,
  });
  if (!c) throw new WalFileMissing(o.file.name);
  const key = walObjectKey(o.prefix, c.timeline, c.object.name);
  const whys: string[] = [];
  for (const d of o.destinations) {
    try {
      const { wal, entry } = await readCopy(d, key, c, o.decryption, o.env);
      const data =
        entry.kind === 'partial' && wal.length < c.segmentBytes
          ? Buffer.concat([wal, Buffer.alloc(c.segmentBytes - wal.length)])
          : wal;
      await writeAtomically(o.path, data);
      return { object: entry, destination: d.settings.name, bytes: data.length };
    } catch (e) {
      whys.push(
        `${d.settings.name}: ${d.isNotFound(e) ? `${key}: missing` : e instanceof Error ? e.message : String(e)}`,
      );
    }
  }
  throw new UserError(`${o.file.name} could not be fetched: ${whys.join('; ')}`);
}
