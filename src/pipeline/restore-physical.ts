import { Writable } from 'node:stream';
import { type ReadEntry, Unpack } from 'tar';
import type { DecryptionSettings } from '../crypto/age.js';
import type { Manifest } from '../manifest/schema.js';
import type { Destination } from '../storage/destination.js';
import { type ReadBackResult, readBack, type Sink } from './readback.js';

/**
 * A physical backup's tar, streamed from a destination into a folder: read once, its
 * SHA-256, decryption and decompression proved on the way, and the tar's last entry
 * finished only once every check has passed (readBack's gate). Every entry must be a
 * plain file or folder under the folder: anything else (a link, a device, a path leaving
 * the folder) fails the extraction, since pg_basebackup writes none of those here.
 */

/** The tar's size: what the extracted files take, about (the archive's raw bytes, else 4 × stored). */
export function tarBytes(manifest: Manifest): number {
  const base = manifest.objects.find((o) => o.kind === 'base');
  return manifest.database.archiveBytes ?? (base ? base.plaintext.bytes * 4 : 0);
}

/** What the extraction found, besides the read's own result. */
export interface Extracted {
  readonly read: ReadBackResult;
  readonly files: number;
}

/** Extracts the backup's `base` object into `dir` (an empty folder pg-dr made). */
export async function extractBase(o: {
  readonly destination: Destination;
  readonly folder: string;
  readonly manifest: Manifest;
  readonly decryption: DecryptionSettings;
  readonly dir: string;
  readonly signal?: AbortSignal;
  readonly env: NodeJS.ProcessEnv;
  readonly onBytes?: (n: number) => void;
}): Promise<Extracted> {
  const base = o.manifest.objects.find((x) => x.kind === 'base');
  if (!base) throw new Error(`Backup ${o.manifest.id} has no base object (kind base).`);
  const tar = tarSink(o.dir);
  const read = await readBack({
    destination: o.destination,
    key: `${o.folder}${base.name}`,
    encrypted: base.encrypted,
    decrypt: {
      settings: o.decryption,
      plaintext: base.plaintext,
      // pg_basebackup's own gzip is undone by the tar reader; zstd by the zstd binary.
      compression: o.manifest.database.compression === 'zstd' ? 'zstd' : null,
      sink: tar.sink,
    },
    env: o.env,
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.onBytes ? { onBytes: o.onBytes } : {}),
  });
  return { read, files: tar.files() };
}

/** A Writable feeding node-tar's Unpack into `dir`, refusing every entry but files and folders. */
function tarSink(dir: string): { sink: Sink; files: () => number } {
  let files = 0;
  let refused: Error | null = null;
  const unpack = new Unpack({
    cwd: dir,
    strict: true,
    preservePaths: false,
    // The archive's owners mean nothing here; its modes are kept (0600/0700 as written).
    preserveOwner: false,
    filter: (path: string, entry: unknown) => {
      const type = (entry as ReadEntry).type;
      if (type === 'File' || type === 'OldFile' || type === 'Directory') {
        if (type !== 'Directory') files++;
        return true;
      }
      refused ??= new Error(
        `the base backup holds ${JSON.stringify(path)} of type ${type}; a base backup here holds only files and folders`,
      );
      return false;
    },
  });
  const done = new Promise<void>((resolve, reject) => {
    unpack.on('error', (e: Error) => reject(e));
    unpack.on('finish', () => (refused ? reject(refused) : resolve()));
  });
  done.catch(() => undefined);
  const stdin = new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _enc, cb) {
      if (unpack.write(chunk)) cb();
      else unpack.once('drain', () => cb());
    },
    final(cb) {
      unpack.end();
      done.then(
        () => cb(),
        (e: Error) => cb(e),
      );
    },
  });
  return {
    sink: {
      stdin,
      done,
      abort: async () => {
        stdin.destroy(new Error('the extraction was stopped'));
        unpack.abort(new Error('the extraction was stopped'));
      },
      mayStopEarly: false,
    },
    files: () => files,
  };
}
