import { chmod, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DecryptionSettings } from '../crypto/age.js';
import type { VerifySettings } from '../inputs/parse.js';
import type { Manifest } from '../manifest/schema.js';
import type { Verification } from '../manifest/verification.js';
import type { ReadBackResult } from '../pipeline/readback.js';
import { checkFreeSpace, tempSpace } from '../pipeline/restore-file.js';
import { extractBase, tarBytes } from '../pipeline/restore-physical.js';
import type { ClientInstall } from '../postgres/binaries.js';
import { pickSameMajor } from '../postgres/clients.js';
import { type CopyCheck, checkCopy } from '../postgres/copy-check.js';
import {
  ownDataDir,
  prepareStart,
  removeDir,
  type ServerUser,
  serverUser,
  startServer,
  stopServer,
  verifyBackup,
} from '../postgres/datadir.js';
import { openSession } from '../postgres/session.js';
import type { Host } from '../report/host.js';
import type { Destination } from '../storage/destination.js';

/**
 * A physical backup verified past its checksums: its tar extracted into a private temporary
 * folder and checked by pg_verifybackup (level decrypt); at level restore, a throwaway server
 * started on it (no TCP, its own socket folder) recovers to the backup's end, and the
 * database is read through and checked with amcheck (see checkCopy). What this proves: the
 * archive decrypts, every file matches backup_manifest, the WAL parses, the copy recovers to
 * a consistent state and starts, every table of the database can be read whole, and (with
 * amcheck) no heap page or B-tree index is corrupt and every row is in its indexes. Row counts
 * are read, not compared: a physical backup records planner estimates only (no snapshot
 * matches a physical copy). Tables the manifest lists that the copy lacks fail the drill.
 */

type Drill = NonNullable<Verification['drill']>;

export interface BaseCheck {
  readonly read: ReadBackResult;
  readonly archive: NonNullable<Verification['archive']>;
  readonly drill?: Drill;
}

/** How long the throwaway server may take to recover and accept connections. */
const DRILL_START_SECONDS = 3600;

export async function checkBase(o: {
  readonly settings: VerifySettings;
  readonly manifest: Manifest;
  readonly dest: Destination;
  readonly folder: string;
  readonly drill: boolean;
  readonly host: Host;
  readonly env: NodeJS.ProcessEnv;
  readonly signal: AbortSignal;
  readonly onBytes?: (n: number) => void;
}): Promise<BaseCheck> {
  const { settings, manifest } = o;
  const major = Math.floor(manifest.database.serverVersionNum / 10000);
  const why = `backup ${manifest.id} is of PostgreSQL ${manifest.database.serverVersion}`;
  const log = (l: string) => o.host.info(l);
  const pick = async (tool: 'pg_verifybackup' | 'pg_ctl') =>
    pickSameMajor(tool, major, why, settings.pgClients, o.env, log);
  const verifier = await pick('pg_verifybackup');
  const server = o.drill ? await pick('pg_ctl') : null;
  const user = o.drill ? await serverUser('verify-level') : null;
  const space = tempSpace(settings.parallel.tempDir, o.env);
  await checkFreeSpace(space, tarBytes(manifest));
  const dir = await mkdtemp(join(space.dir, `pg-dr-verify-${manifest.id}-`));
  await chmod(dir, 0o700);
  try {
    const extracted = await extractBase({
      destination: o.dest,
      folder: o.folder,
      manifest,
      decryption: settings.decryption as DecryptionSettings,
      dir,
      signal: o.signal,
      env: o.env,
      ...(o.onBytes ? { onBytes: o.onBytes } : {}),
    });
    const { read, files } = extracted;
    if (!read.ok) return { read, archive: { ok: false, entries: files, error: read.error } };
    const verified = await verifyBackup(verifier.binDir, dir);
    const archive = {
      ok: verified.ok,
      entries: files,
      error: verified.ok ? null : `pg_verifybackup refused the files: ${verified.detail}`,
    };
    o.host.info(
      verified.ok
        ? `pg_verifybackup: ${files} files match backup_manifest${verified.walParsed ? ', WAL parsed' : ' (WAL not parsed: no pg_waldump beside it)'}`
        : (archive.error as string),
    );
    if (!server || !user || !verified.ok) return { read, archive };
    return { read, archive, drill: await drillCopy(dir, server, user, manifest, o.host) };
  } finally {
    const left = await removeDir(dir);
    if (left) o.host.warning(left);
  }
}

/** Starts a throwaway server on the extracted copy, reads the database through, stops it. */
async function drillCopy(
  dir: string,
  server: ClientInstall,
  user: ServerUser,
  manifest: Manifest,
  host: Host,
): Promise<Drill> {
  const t0 = Date.now();
  const failed = (error: string): Drill => ({
    ok: false,
    seconds: (Date.now() - t0) / 1000,
    tables: 0,
    mismatches: [],
    error,
  });
  // A short path of its own: a unix socket's path is limited to about 100 bytes.
  const socketDir = await mkdtemp(join(tmpdir(), 'pg-dr-sock-'));
  let started = false;
  try {
    const opts = { binDir: server.binDir, dir, user, port: 5432, throwaway: { socketDir } };
    await prepareStart(opts);
    await ownDataDir(user, dir);
    await ownDataDir(user, socketDir);
    const seconds = await startServer(opts, DRILL_START_SECONDS);
    started = true;
    host.info(`Throwaway server recovered and accepted connections after ${seconds.toFixed(1)} s`);
    const check = await readCopy(socketDir, manifest);
    return judge(check, manifest, (Date.now() - t0) / 1000);
  } catch (e) {
    return failed((e as Error).message);
  } finally {
    if (started) {
      const stop = await stopServer(server.binDir, dir, user);
      if (stop) host.warning(`The throwaway server did not stop: ${stop}`);
    }
    const left = await removeDir(socketDir);
    if (left) host.warning(left);
  }
}

/** Connects as the cluster's bootstrap superuser over the throwaway socket, and checks the database. */
async function readCopy(socketDir: string, manifest: Manifest): Promise<CopyCheck> {
  const session = await openSession({
    host: socketDir,
    port: 5432,
    user: manifest.physical?.superuser ?? 'postgres',
    password: '',
    database: manifest.database.name,
    params: {},
  });
  try {
    return await checkCopy(session, manifest.database.serverVersionNum);
  } finally {
    await session.close();
  }
}

/** Tables the manifest lists that the copy lacks, and corruptions, fail the drill. */
function judge(check: CopyCheck, manifest: Manifest, seconds: number): Drill {
  const have = new Set(check.tables.map((t) => `${t.schema}.${t.table}`));
  const mismatches = manifest.database.rowCounts.tables
    .filter((t) => !have.has(`${t.schema}.${t.table}`))
    .map((t) => ({ table: `${t.schema}.${t.table}`, expected: t.rows, actual: null }));
  const rows = check.tables.reduce((a, t) => a + t.rows, 0);
  const errors = [
    ...(mismatches.length > 0
      ? [`${mismatches.length} table(s) the manifest lists are missing from the copy`]
      : []),
    ...check.corruptions.map((c) => `amcheck: ${c}`),
  ];
  const proven = [
    'pg_verifybackup passed',
    'recovered to a consistent state and started',
    `${check.tables.length} tables read through (${rows} rows)`,
    check.amcheck
      ? `amcheck: ${check.amcheck.heaps} heaps${check.amcheck.heaps === 0 ? ' (verify_heapam needs PostgreSQL 14)' : ''} and ${check.amcheck.indexes} B-tree indexes checked (heapallindexed)`
      : 'amcheck not installed beside the server: heaps and indexes not checked',
    'row counts not compared (a physical backup records planner estimates)',
  ];
  return {
    ok: errors.length === 0,
    seconds,
    tables: check.tables.length,
    mismatches,
    error: errors.length > 0 ? errors.join('; ') : null,
    proven,
  };
}
