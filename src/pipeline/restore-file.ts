import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { InputError } from '../errors.js';
import type { Manifest, ObjectEntry } from '../manifest/schema.js';
import { formatBytes } from '../report/progress.js';
import { type ReadBackOptions, type ReadBackResult, readBack } from './readback.js';

/**
 * The temporary archive file of a parallel restore (`restore-jobs` above 1): `pg_restore -j`
 * cannot read stdin, so the archive is downloaded, checked, decrypted and decompressed into
 * a file first. The file lives in a private folder (0700, the file 0600) named after the
 * backup, removed once the restore is over, whatever happened.
 */

/** Free space of the file system holding a folder (`fs.statfs`'s fields used here). */
export type StatFs = (dir: string) => Promise<{ readonly bavail: number; readonly bsize: number }>;

/** What the check of free space needs. */
export interface TempSpace {
  /** The folder the private folder is made in. */
  readonly dir: string;
  /** The input that names the folder, for messages. */
  readonly input: string;
  /** Injectable for tests; `fs.statfs` by default. */
  readonly statfs?: StatFs;
}

/**
 * Where the temporary file's folder is made: `restore-temp-dir` when set, else RUNNER_TEMP
 * (the runner empties it after each job), else the system's temporary folder.
 */
export function tempSpace(dir: string | null, env: NodeJS.ProcessEnv): TempSpace {
  return { dir: dir ?? (env.RUNNER_TEMP || tmpdir()), input: 'restore-temp-dir' };
}

/** The size of the archive file: the custom-format archive, after any zstd is undone. */
export function archiveFileBytes(manifest: Manifest, db: ObjectEntry): number {
  // archiveBytes is the archive before external compression (null when pg_dump compressed
  // it itself, gzip: the stored plaintext is then the archive, as with `none`).
  return manifest.database.archiveBytes ?? db.plaintext.bytes;
}

/** The free space asked for: the file, plus 5% (64 MiB at least) for the rest of the disk's use. */
export function spaceNeeded(fileBytes: number): number {
  return fileBytes + Math.max(64 * 1024 ** 2, Math.ceil(fileBytes * 0.05));
}

/**
 * Refuses, before anything is written, when the folder's file system has less free space
 * (for an unprivileged user) than `spaceNeeded(fileBytes)`.
 */
export async function checkFreeSpace(space: TempSpace, fileBytes: number): Promise<void> {
  const read = space.statfs ?? statfs;
  let free: number;
  try {
    const s = await read(space.dir);
    free = Number(s.bavail) * Number(s.bsize);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(
      space.input,
      `Invalid '${space.input}': cannot use ${JSON.stringify(space.dir)} for the temporary archive file of a parallel restore (${code ?? (e as Error).message}). Expected an existing folder pg-dr may write in.`,
    );
  }
  const needed = spaceNeeded(fileBytes);
  if (free < needed)
    throw new InputError(
      space.input,
      `Not enough free space in ${JSON.stringify(space.dir)} for the temporary archive file of a parallel restore: ${formatBytes(free)} free (${free} bytes), ${formatBytes(needed)} needed (${needed} bytes: the ${fileBytes}-byte archive plus a margin). Point '${space.input}' at a folder with more space, or set restore-jobs: 1 to stream the archive into pg_restore (no temporary file).`,
    );
}

/**
 * Runs `use` with the path of a new, private archive file (`<dir>/pg-dr-restore-<label>-XXXXXX/
 * archive.pgdump`: a crash leaves something recognisable), and removes the folder afterwards,
 * on success, failure or cancel alike.
 */
export async function withTempArchive<T>(
  dir: string,
  label: string,
  use: (file: string) => Promise<T>,
): Promise<T> {
  const safe = label.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64);
  const folder = await mkdtemp(join(dir, `pg-dr-restore-${safe}-`));
  try {
    return await use(join(folder, 'archive.pgdump'));
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

/**
 * Reads the archive back into `file` (a new file, 0600) as `readBack` proves any object: size
 * and SHA-256 of the stored bytes and of the plaintext, the decryption and the decompression.
 * The file is complete and trustworthy only when the result is ok.
 */
export async function downloadArchive(
  opts: Omit<ReadBackOptions, 'decrypt'> & {
    readonly decrypt: Omit<NonNullable<ReadBackOptions['decrypt']>, 'sink'>;
  },
  file: string,
): Promise<ReadBackResult> {
  const out = createWriteStream(file, { flags: 'wx', mode: 0o600 });
  out.on('error', () => undefined);
  const written = finished(out);
  written.catch(() => undefined);
  return readBack({
    ...opts,
    decrypt: {
      ...opts.decrypt,
      sink: {
        stdin: out,
        done: written,
        abort: async () => {
          out.destroy();
        },
        mayStopEarly: false,
      },
    },
  });
}
