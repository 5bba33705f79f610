import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { openZstdDecompressor } from '../compression/index.js';
import { type DecryptionSettings, decryptStream } from '../crypto/age.js';
import { type Manifest, type ObjectEntry, rowCountMismatches } from '../manifest/schema.js';
import { type Globals, parseGlobalsScript } from '../postgres/globals.js';
import {
  beginRebuild,
  checkRebuild,
  type Ownership,
  type Rebuild,
  type ServerAccess,
  type ServerFacts,
} from '../postgres/rebuild.js';
import {
  type RunningFileRestore,
  startArchiveList,
  startFileRestore,
  startRestore,
} from '../postgres/restore.js';
import { countRows } from '../postgres/snapshot.js';
import { formatBytes } from '../report/progress.js';
import type { Destination } from '../storage/destination.js';
import { type ReadBackResult, readBack, readObjectInto } from './readback.js';
import {
  archiveFileBytes,
  checkFreeSpace,
  downloadArchive,
  type TempSpace,
  tempSpace,
  withTempArchive,
} from './restore-file.js';

export interface RestoreIntoOptions {
  readonly destination: Destination;
  /** `<prefix><id>/`. */
  readonly folder: string;
  readonly manifest: Manifest;
  readonly decryption: DecryptionSettings;
  readonly server: ServerAccess;
  readonly facts: ServerFacts;
  readonly ownership: Ownership;
  /** The new database to create and restore into. */
  readonly name: string;
  readonly pgRestore: string;
  /** The input that names the server, for messages. */
  readonly input: string;
  readonly signal?: AbortSignal;
  readonly env?: NodeJS.ProcessEnv;
  readonly log: (line: string) => void;
  readonly onBytes?: (n: number) => void;
  /**
   * `pg_restore -j` jobs (default 1: the archive is streamed into pg_restore). Above 1, the
   * archive goes through a temporary file in `tempDir` (default: `tempSpace(null, env)`).
   */
  readonly jobs?: number;
  readonly tempDir?: TempSpace;
}

export type RestoreInto =
  | {
      readonly ok: true;
      readonly rebuild: Rebuild;
      readonly globals: Globals | null;
      readonly read: ReadBackResult;
    }
  | { readonly ok: false; readonly read: ReadBackResult };

/**
 * One attempt from one destination: reads the globals, creates the roles and a new database
 * (`name`), and streams the archive into it. On failure nothing it created is left.
 */
export async function restoreInto(o: RestoreIntoOptions): Promise<RestoreInto> {
  const entry = o.manifest.objects.find((x) => x.kind === 'globals');
  let globals: Globals | null = null;
  if (entry) {
    const g = await readObjectText(o, entry);
    if (!g.ok) return { ok: false, read: g.read };
    try {
      globals = parseGlobalsScript(g.text);
    } catch (e) {
      return {
        ok: false,
        read: {
          ok: false,
          failure: 'consumer',
          error: `${o.folder}${entry.name}: unreadable: ${(e as Error).message}`,
          encrypted: g.read.encrypted,
          plaintext: g.read.plaintext,
        },
      };
    }
  }
  checkRebuild(globals, o.facts, o.input, o.ownership);
  const db = o.manifest.objects.find((x) => x.kind === 'database');
  if (!db) throw new Error(`Backup ${o.manifest.id} has no database object.`);
  // A non-superuser cannot create event triggers or subscriptions: they are left out of the
  // restore (and listed), which needs the archive's table of contents first.
  let plan: RestorerPlan | null = null;
  if (o.ownership === 'restorer' && globals && !o.facts.superuser) {
    try {
      plan = restorerPlan(await readArchiveList(o, db), o.facts.user);
    } catch (e) {
      return {
        ok: false,
        read: {
          ok: false,
          failure: 'read',
          error: `${o.folder}${db.name}: its table of contents cannot be read: ${(e as Error).message}`,
          encrypted: null,
          plaintext: null,
        },
      };
    }
  }
  if ((o.jobs ?? 1) > 1) {
    const space = o.tempDir ?? tempSpace(null, o.env ?? process.env);
    return restoreFromFile(o, space, db, globals, plan);
  }
  const rebuild = await begin(o, globals);
  const listDir = await writeUseList(rebuild, plan);
  const run = startRestore(o.pgRestore, o.server.target(o.name), rebuild.flags);
  let read: ReadBackResult;
  try {
    read = await readBack({
      ...readOf(o, db),
      decrypt: {
        ...readOf(o, db).decrypt,
        sink: { stdin: run.stdin, done: run.done, abort: () => run.abort(), mayStopEarly: false },
      },
    });
  } catch (e) {
    await run.abort();
    await rebuild.discard().catch(() => undefined);
    throw e;
  } finally {
    if (listDir) await rm(listDir, { recursive: true, force: true });
  }
  if (!read.ok) {
    await rebuild.discard();
    return { ok: false, read };
  }
  return { ok: true, rebuild, globals, read };
}

function begin(o: RestoreIntoOptions, globals: Globals | null): Promise<Rebuild> {
  return beginRebuild({
    server: o.server,
    facts: o.facts,
    ownership: o.ownership,
    globals,
    name: o.name,
    log: o.log,
  });
}

/** How the database's object is read back (without its consumer). */
function readOf(o: RestoreIntoOptions, db: ObjectEntry) {
  return {
    destination: o.destination,
    key: `${o.folder}${db.name}`,
    encrypted: db.encrypted,
    decrypt: {
      settings: o.decryption,
      plaintext: db.plaintext,
      compression: o.manifest.database.compression,
    },
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.env ? { env: o.env } : {}),
    ...(o.onBytes ? { onBytes: o.onBytes } : {}),
  };
}

/** Writes the restorer's `-L` list into a private folder (returned, for removal), if any. */
async function writeUseList(rebuild: Rebuild, plan: RestorerPlan | null): Promise<string | null> {
  if (!plan) return null;
  const listDir = await mkdtemp(join(tmpdir(), 'pg-dr-list-'));
  rebuild.flags.useList = join(listDir, 'restore.list');
  await writeFile(rebuild.flags.useList, `${plan.keep.join('\n')}\n`, { mode: 0o600 });
  rebuild.differences.push(...plan.skipped);
  return listDir;
}

/**
 * The parallel route (`jobs` above 1): the free space is checked, the archive is read back
 * whole into a temporary file and proved (size, SHA-256, decryption, decompression) before
 * anything is created on the server; only then the roles and the database are made and
 * `pg_restore -j` restores the file. The file is removed whatever happens.
 */
async function restoreFromFile(
  o: RestoreIntoOptions,
  space: TempSpace,
  db: ObjectEntry,
  globals: Globals | null,
  plan: RestorerPlan | null,
): Promise<RestoreInto> {
  const jobs = o.jobs ?? 1;
  const bytes = archiveFileBytes(o.manifest, db);
  await checkFreeSpace(space, bytes);
  return withTempArchive(space.dir, o.manifest.id, async (file) => {
    o.log(`Download, check and decrypt the archive into a temporary file (${formatBytes(bytes)})`);
    const read = await downloadArchive(readOf(o, db), file);
    if (!read.ok) return { ok: false, read };
    const rebuild = await begin(o, globals);
    let listDir: string | null = null;
    let run: RunningFileRestore | null = null;
    const onAbort = () => void run?.abort();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      listDir = await writeUseList(rebuild, plan);
      if (o.signal?.aborted) throw new Error('cancelled');
      o.log(`pg_restore -j ${jobs} into ${JSON.stringify(o.name)}`);
      run = startFileRestore(o.pgRestore, o.server.target(o.name), rebuild.flags, file, jobs);
      await run.done;
    } catch (e) {
      await run?.abort();
      await rebuild.discard().catch(() => undefined);
      // As the streamed route reports a cancel: a failed read, not pg_restore's.
      const cancelled = o.signal?.aborted === true;
      const error = `${o.folder}${db.name}: ${cancelled ? 'cancelled' : (e as Error).message}`;
      const failure = cancelled ? 'read' : 'consumer';
      return { ok: false, read: { ...read, ok: false, failure, error } };
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
      if (listDir) await rm(listDir, { recursive: true, force: true });
    }
    return { ok: true, rebuild, globals, read };
  });
}

interface RestorerPlan {
  /** The dump ids to restore, in archive order. */
  readonly keep: string[];
  /** What is left out, as differences from the source. */
  readonly skipped: string[];
}

/**
 * Entries a non-superuser cannot restore: event triggers and subscriptions (superuser
 * only), with their comments, and default privileges (`ALTER DEFAULT PRIVILEGES FOR ROLE
 * <source owner>` needs membership in that role).
 */
const SUPERUSER_ONLY =
  /^\d+; \d+ \d+ (COMMENT - |SECURITY LABEL - )?(EVENT TRIGGER|SUBSCRIPTION|DEFAULT ACL) /;

/** The `pg_restore -L` list for a restore by a non-superuser, from `pg_restore --list` lines. */
export function restorerPlan(lines: readonly string[], restorer: string): RestorerPlan {
  const keep: string[] = [];
  const left: string[] = [];
  const owners = new Set<string>();
  for (const line of lines) {
    const id = /^(\d+);/.exec(line)?.[1];
    if (!id) continue;
    const owner = / (\S+)$/.exec(line)?.[1];
    if (owner && owner !== '-' && owner !== restorer) owners.add(owner);
    const m = SUPERUSER_ONLY.exec(line);
    if (m) {
      // `<type> <schema|-> <name> <owner>`: the type and name, for the summary.
      const rest = line.slice(m[0].length).replace(/^- /, '').replace(/ \S+$/, '');
      if (!m[1]) left.push(`${m[2]?.toLowerCase()} ${rest}`);
    } else keep.push(id);
  }
  const skipped = left.length
    ? [`Not restored (a non-superuser cannot restore them): ${left.join(', ')}.`]
    : [];
  if (owners.size)
    skipped.push(
      `Every object belongs to ${JSON.stringify(restorer)} instead of its source owner (${[...owners].map((o) => JSON.stringify(o)).join(', ')}): those roles keep only the privileges granted to them explicitly.`,
    );
  return { keep, skipped };
}

/**
 * The archive's table of contents (`pg_restore --list`), from the start of the stored
 * object: decrypted and decompressed until pg_restore has read the table; the rest is
 * never downloaded. Only a plan is made of it: the restore itself reads and checks
 * every byte again.
 */
async function readArchiveList(o: RestoreIntoOptions, db: ObjectEntry): Promise<string[]> {
  const body = await o.destination.get(`${o.folder}${db.name}`);
  const list = startArchiveList(o.pgRestore);
  let stop = () => undefined as unknown;
  try {
    let archive: Readable = await decryptStream(o.decryption, body);
    if (o.manifest.database.compression === 'zstd') {
      const zstd = await openZstdDecompressor(o.env ?? process.env);
      pipeline(archive, zstd.input).catch(() => undefined);
      archive = zstd.output;
      stop = () => zstd.kill();
    }
    archive.on('error', () => undefined);
    archive.pipe(list.stdin).on('error', () => undefined);
    list.stdin.on('close', () => archive.unpipe());
    return await list.done;
  } finally {
    body.destroy();
    stop();
    await list.abort();
  }
}

/** A small object (the globals), read back, checked and decrypted into memory. */
async function readObjectText(
  o: RestoreIntoOptions,
  entry: ObjectEntry,
): Promise<{ ok: boolean; text: string; read: ReadBackResult }> {
  const { read, value } = await readObjectInto(
    {
      destination: o.destination,
      key: `${o.folder}${entry.name}`,
      entry,
      decryption: o.decryption,
      ...(o.signal ? { signal: o.signal } : {}),
    },
    async (plain) => {
      const chunks: Buffer[] = [];
      for await (const c of plain) chunks.push(c as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
  );
  return { ok: read.ok, text: value ?? '', read };
}

export interface RowCheck {
  readonly tables: number;
  readonly mismatches: readonly { table: string; expected: number; actual: number | null }[];
  readonly rowCounts: 'compared' | 'not compared (estimated in the manifest)' | 'not recorded';
}

/** Every table's row count in `database`, compared with the manifest's exact counts. */
export async function compareRowCounts(
  server: ServerAccess,
  database: string,
  manifest: Manifest,
): Promise<RowCheck> {
  const session = await server.open(database);
  try {
    // As pg_dump does: row-level security must not hide rows from the count (a table owner
    // with FORCE ROW LEVEL SECURITY would see fewer); it fails loudly instead.
    await session.exec('SET row_security = off');
    const counts = await countRows(session, 'exact');
    const method = manifest.database.rowCounts.method;
    if (method !== 'exact')
      return {
        tables: counts.length,
        mismatches: [],
        rowCounts: method === 'off' ? 'not recorded' : 'not compared (estimated in the manifest)',
      };
    return {
      tables: counts.length,
      mismatches: rowCountMismatches(manifest, counts),
      rowCounts: 'compared',
    };
  } finally {
    await session.close();
  }
}

/**
 * The logical route from a local archive file (a point-in-time recovery carried into a
 * database): the roles `globals` names and a new database (`name`) are made, then
 * `pg_restore` restores the file; on failure nothing it created is left.
 */
export async function restoreFileInto(o: {
  readonly server: ServerAccess;
  readonly facts: ServerFacts;
  readonly ownership: Ownership;
  readonly globals: Globals;
  readonly name: string;
  readonly pgRestore: string;
  readonly file: string;
  readonly jobs: number;
  readonly input: string;
  readonly log: (line: string) => void;
}): Promise<{ ok: true; rebuild: Rebuild } | { ok: false; error: string }> {
  checkRebuild(o.globals, o.facts, o.input, o.ownership);
  const rebuild = await beginRebuild({
    server: o.server,
    facts: o.facts,
    ownership: o.ownership,
    globals: o.globals,
    name: o.name,
    log: o.log,
  });
  const run = startFileRestore(o.pgRestore, o.server.target(o.name), rebuild.flags, o.file, o.jobs);
  try {
    await run.done;
    return { ok: true, rebuild };
  } catch (e) {
    await run.abort();
    await rebuild.discard().catch(() => undefined);
    return { ok: false, error: (e as Error).message };
  }
}
