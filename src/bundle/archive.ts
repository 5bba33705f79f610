import { once } from 'node:events';
import { lstat, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { Pack, ReadEntry, Unpack } from 'tar';

const FILE_TYPES: ReadonlySet<string> = new Set(['File', 'OldFile', 'ContiguousFile']);
const FOLDER_TYPES: ReadonlySet<string> = new Set(['Directory', 'GNUDumpDir']);

/**
 * Streams a gzip'd tar of `files` (paths relative to `workspace`, in the given order).
 * Portable headers (no owner, user or group names); modes and mtimes are kept. A
 * symlinked file is stored as the file it points to, so the bundle holds no links.
 * Any read error (a file vanished, changed size while read, …) errors the stream.
 */
export function createBundleStream(workspace: string, files: readonly string[]): Readable {
  for (const file of files) {
    const problem = pathProblem(file);
    if (problem !== null) {
      throw new Error(`Cannot bundle ${JSON.stringify(file)}: ${problem}.`);
    }
  }
  // Pack rather than tar.create(): create() reads a path starting with '@' as an
  // archive to concatenate, and a config file may well be named that way.
  const pack = new Pack({
    cwd: workspace,
    gzip: true,
    portable: true,
    follow: true,
    noDirRecurse: true,
    strict: true,
  });
  const out = new PassThrough();
  pack.on('error', (error: unknown) => {
    out.destroy(error instanceof Error ? error : new Error(String(error)));
  });
  out.on('close', () => {
    if (!pack.emittedEnd) pack.destroy();
  });
  pack.pipe(out);
  for (const file of files) pack.add(file);
  pack.end();
  return out;
}

/**
 * Extracts a config bundle (a gzip'd tar) into `dir`, created if missing, and
 * returns the relative POSIX paths of the files it held, in archive order.
 *
 * Entries are unpacked into a staging folder inside `dir` first and moved into place
 * only once the whole archive has been read and checked, so a hostile, truncated or
 * undecryptable bundle leaves `dir` as it was. Refused: absolute paths, `..`
 * segments, links of any kind (bundles never hold links; a link could point out of
 * `dir`), devices and FIFOs, and folders of `dir` that are symlinks in the way.
 * Existing files at the same paths are replaced. setuid/setgid/sticky bits are dropped.
 */
export async function extractBundle(
  stream: Readable,
  dir: string,
  limits: BundleLimits = DEFAULT_LIMITS,
): Promise<string[]> {
  const target = path.resolve(dir);
  const createdRoot = await mkdir(target, { recursive: true });
  const staging = await mkdtemp(path.join(target, '.pg-dr-extract-'));
  let succeeded = false;
  try {
    const extracted = await unpackInto(stream, staging, dir, limits);
    await moveIntoPlace(staging, target, extracted, dir);
    succeeded = true;
    return extracted.files;
  } finally {
    await rm(staging, { recursive: true, force: true, maxRetries: 3 });
    if (!succeeded && createdRoot !== undefined) {
      await rm(createdRoot, { recursive: true, force: true, maxRetries: 3 });
    }
  }
}

/**
 * Bounds on what an extraction may write before the bundle's checksum is known (a bundle
 * is checked at its end): a crafted one cannot fill the disk first.
 */
export interface BundleLimits {
  readonly maxBytes: number;
  readonly maxEntries: number;
}

export const DEFAULT_LIMITS: BundleLimits = { maxBytes: 1024 ** 3, maxEntries: 100_000 };

interface Extracted {
  /** Regular files, relative POSIX paths, archive order, each once. */
  readonly files: string[];
  /** Folders named by the archive itself (parents of files are implied). */
  readonly folders: string[];
}

async function unpackInto(
  source: Readable,
  staging: string,
  dir: string,
  limits: BundleLimits,
): Promise<Extracted> {
  const files = new Set<string>();
  const folders = new Set<string>();
  let refusal: Error | undefined;
  let bytes = 0;
  let entries = 0;

  const unpack: Unpack = new Unpack({
    cwd: staging,
    strict: true,
    preserveOwner: false,
    filter: (_path, entry) => {
      if (refusal !== undefined || !(entry instanceof ReadEntry)) return false;
      bytes += entry.size ?? 0;
      entries += 1;
      const problem =
        entryProblem(entry) ??
        (bytes > limits.maxBytes
          ? `it would write more than ${limits.maxBytes} bytes (the bundle's checksum is checked at its end)`
          : entries > limits.maxEntries
            ? `it has more than ${limits.maxEntries} entries`
            : null);
      if (problem !== null) {
        refusal = new Error(
          `Refusing to extract the config bundle into ${JSON.stringify(dir)}: ${problem}.`,
        );
        unpack.abort(refusal);
        return false;
      }
      if (entry.mode !== undefined) entry.mode &= 0o777;
      const name = path.posix.normalize(entry.path).replace(/\/+$/, '');
      if (name === '.') return true;
      if (FILE_TYPES.has(entry.type)) {
        files.delete(name); // a later entry for the same path wins, as with tar
        files.add(name);
      } else {
        folders.add(name);
      }
      return true;
    },
  });
  // node-tar calls a tarball without entries a bad archive; one that reached its
  // end-of-archive blocks is simply the bundle of an empty file list.
  let sawEndOfArchive = false;
  unpack.on('eof', () => {
    sawEndOfArchive = true;
  });
  const isEmptyArchive = (error: Error): boolean =>
    refusal === undefined &&
    sawEndOfArchive &&
    files.size === 0 &&
    folders.size === 0 &&
    (error as NodeJS.ErrnoException).code === 'TAR_BAD_ARCHIVE';
  const finished = new Promise<void>((resolve, reject) => {
    unpack.on('error', (error: Error) =>
      isEmptyArchive(error) ? resolve() : reject(refusal ?? error),
    );
    unpack.on('close', () => (refusal === undefined ? resolve() : reject(refusal)));
  });
  finished.catch(() => {}); // awaited below; this only keeps an early failure from going unhandled

  try {
    for await (const chunk of source) {
      if (!unpack.write(chunk as Buffer)) {
        await Promise.race([once(unpack, 'drain'), finished]);
      }
    }
    unpack.end();
  } catch (error) {
    unpack.abort(error instanceof Error ? error : new Error(String(error)));
    throw refusal ?? error;
  }
  await finished;
  return { files: [...files], folders: [...folders] };
}

function entryProblem(entry: ReadEntry): string | null {
  const name = JSON.stringify(entry.path);
  const problem = pathProblem(entry.path);
  if (problem !== null) return `entry ${name} ${problem}`;
  if (entry.type === 'SymbolicLink' || entry.type === 'Link') {
    return `entry ${name} is a link (to ${JSON.stringify(entry.linkpath ?? '')}); a config bundle holds only files and folders`;
  }
  if (!FILE_TYPES.has(entry.type) && !FOLDER_TYPES.has(entry.type)) {
    return `entry ${name} is a ${entry.type}; a config bundle holds only files and folders`;
  }
  return null;
}

/** Why a relative archive path is unsafe, or null. */
function pathProblem(relative: string): string | null {
  if (relative === '' || relative.includes('\0')) return 'has an empty or malformed path';
  if (/^(?:[/\\]|[A-Za-z]:)/.test(relative)) return 'has an absolute path';
  if (relative.split(/[/\\]/).includes('..')) return "has a '..' segment";
  return null;
}

async function moveIntoPlace(
  staging: string,
  target: string,
  extracted: Extracted,
  dir: string,
): Promise<void> {
  // Check every destination before moving anything, so a refusal writes nothing.
  const checked = new Map<string, 'folder' | 'file' | 'missing'>();
  const kindOf = async (relative: string): Promise<'folder' | 'file' | 'missing' | 'other'> => {
    const known = checked.get(relative);
    if (known !== undefined) return known;
    try {
      const stats = await lstat(path.join(target, relative));
      const kind = stats.isDirectory() ? 'folder' : stats.isFile() ? 'file' : 'other';
      if (kind !== 'other') checked.set(relative, kind);
      return kind;
    } catch {
      checked.set(relative, 'missing');
      return 'missing';
    }
  };
  const refuse = (relative: string, what: string): Error =>
    new Error(
      `Refusing to extract the config bundle into ${JSON.stringify(dir)}: ${JSON.stringify(relative)} ${what}.`,
    );

  for (const relative of [...extracted.folders, ...extracted.files]) {
    const segments = relative.split('/');
    for (let i = 1; i < segments.length; i++) {
      const parent = segments.slice(0, i).join('/');
      const kind = await kindOf(parent);
      if (kind === 'missing') break;
      if (kind !== 'folder') throw refuse(parent, 'already exists and is not a folder');
    }
  }
  for (const relative of extracted.folders) {
    const kind = await kindOf(relative);
    if (kind !== 'folder' && kind !== 'missing') {
      throw refuse(relative, 'already exists and is not a folder');
    }
  }
  for (const relative of extracted.files) {
    const kind = await kindOf(relative);
    if (kind === 'folder') throw refuse(relative, 'already exists as a folder');
  }

  for (const relative of extracted.folders) {
    await mkdir(path.join(target, relative), { recursive: true });
  }
  for (const relative of extracted.files) {
    const destination = path.join(target, relative);
    await mkdir(path.dirname(destination), { recursive: true });
    await rename(path.join(staging, relative), destination);
  }
}
