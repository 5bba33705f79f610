import { execa, type ResultPromise } from 'execa';
import { Parser, type ReadEntry } from 'tar';
import type { Compression } from '../compression/index.js';
import { BackupFailed } from '../errors.js';
import { type RunningDump, streamOutput } from './dump.js';
import type { Session } from './session.js';
import { type DatabaseTarget, libpqEnv } from './url.js';

/** What a backup copies: the database with pg_dump, or the whole cluster with pg_basebackup. */
export const BACKUP_MODES = ['logical', 'physical'] as const;
export type BackupMode = (typeof BACKUP_MODES)[number];

/** The oldest server a physical backup is taken of: `backup_manifest` (and pg_verifybackup) came in 13. */
export const PHYSICAL_MIN_VERSION_NUM = 130000;

/** The name of the base backup object in a backup folder, before its compression's extension. */
export const BASE_OBJECT = 'base.tar';

/** One tablespace of the cluster; `location` is '' for the built-in ones (pg_default, pg_global). */
export interface Tablespace {
  readonly name: string;
  readonly location: string;
}

/** What the base backup itself says about where it starts and ends (from its tar, as it streams by). */
export interface BaseBackupFacts {
  /** The timeline the backup ends on (the one recovery follows). */
  readonly timeline: number;
  /** `0/2000028`. */
  readonly startLsn: string;
  readonly endLsn: string;
  /** The backup_label file, as the server wrote it. */
  readonly backupLabel: string;
}

/**
 * The cluster's bootstrap superuser (the role of oid 10): a copy of the cluster is entered
 * as it (a drill's throwaway server trusts local connections). Null when unreadable.
 */
export async function bootstrapSuperuser(session: Session): Promise<string | null> {
  const [row] = await session
    .rows<{ name: string }>('SELECT rolname AS name FROM pg_catalog.pg_roles WHERE oid = 10')
    .catch(() => []);
  return row?.name ?? null;
}

export async function readTablespaces(session: Session): Promise<Tablespace[]> {
  return session.rows<Tablespace>(
    'SELECT spcname AS name, pg_catalog.pg_tablespace_location(oid) AS location FROM pg_catalog.pg_tablespace ORDER BY oid',
  );
}

/**
 * A physical backup streams one tar to stdout, which holds one tablespace only: what is
 * wrong with a cluster that has tablespaces of its own (naming them) and the fix; null when
 * it has none.
 */
export function tablespaceRefusal(
  tablespaces: readonly Tablespace[],
): { readonly found: string; readonly fix: string } | null {
  const own = tablespaces.filter((t) => t.location !== '');
  if (own.length === 0) return null;
  return {
    found: `mode physical backs up clusters without tablespaces of their own; this one has ${own.length}: ${own
      .map((t) => `"${t.name}" (${t.location})`)
      .join(', ')}`,
    fix: 'Move their objects to pg_default (ALTER TABLE … SET TABLESPACE pg_default), or use mode: logical.',
  };
}

/** Refuses a cluster with tablespaces of its own, naming them, before anything is uploaded. */
export function checkTablespaces(tablespaces: readonly Tablespace[]): void {
  const refusal = tablespaceRefusal(tablespaces);
  if (refusal) throw new BackupFailed(`${refusal.found}. ${refusal.fix}`, null);
}

/** A physical backup needs a server with `backup_manifest` (PostgreSQL 13 or newer). */
export function checkPhysicalServer(versionNum: number, version: string): void {
  if (versionNum >= PHYSICAL_MIN_VERSION_NUM) return;
  throw new BackupFailed(
    `mode physical needs PostgreSQL 13 or newer (backup_manifest, pg_verifybackup); the server runs ${version}. Use mode: logical.`,
    null,
  );
}

/**
 * pg_basebackup connects for replication: a role without REPLICATION (nor superuser) is
 * refused here, naming it, before anything is uploaded. (Whether pg_hba.conf has a
 * `replication` line for it only the connection tells: pg_basebackup's own error then.)
 */
export async function checkReplicationRole(session: Session): Promise<void> {
  const [row] = await session.rows<{ name: string; ok: boolean }>(
    'SELECT rolname AS name, (rolreplication OR rolsuper) AS ok FROM pg_catalog.pg_roles WHERE rolname = current_user',
  );
  if (!row || row.ok) return;
  throw new BackupFailed(
    `mode physical connects for replication, and role "${row.name}" has neither REPLICATION nor SUPERUSER. Fix: ALTER ROLE "${row.name}" REPLICATION (and a pg_hba.conf line "host replication ${row.name} <address> scram-sha-256"), or use mode: logical.`,
    null,
  );
}

/** `START WAL LOCATION: 0/2000028 (file …)` and `START TIMELINE: 1` from a backup_label. */
export function parseBackupLabel(text: string): { startLsn: string; timeline: number } {
  const lsn = /^START WAL LOCATION: ([0-9A-F]+\/[0-9A-F]+)/m.exec(text)?.[1];
  const tli = /^START TIMELINE: (\d+)/m.exec(text)?.[1];
  if (!lsn || !tli) throw new Error(`backup_label has no start location or timeline: ${text}`);
  return { startLsn: lsn, timeline: Number(tli) };
}

/**
 * The WAL the backup needs, from its `backup_manifest` (`WAL-Ranges`): the end timeline
 * and the end LSN of its range, and the start LSN of the oldest range.
 */
export function parseManifestWal(text: string): {
  timeline: number;
  startLsn: string;
  endLsn: string;
} {
  const m = JSON.parse(text) as {
    'WAL-Ranges'?: { Timeline: number; 'Start-LSN': string; 'End-LSN': string }[];
  };
  const ranges = m['WAL-Ranges'] ?? [];
  if (ranges.length === 0) throw new Error('backup_manifest has no WAL-Ranges');
  const byTimeline = [...ranges].sort((a, b) => a.Timeline - b.Timeline);
  const first = byTimeline[0] as (typeof ranges)[number];
  const last = byTimeline.at(-1) as (typeof ranges)[number];
  return { timeline: last.Timeline, startLsn: first['Start-LSN'], endLsn: last['End-LSN'] };
}

/** A running base backup: its (compressed) stream, and what its tar said once it has ended. */
export interface RunningBaseBackup extends RunningDump {
  /** Resolves after the tar has ended, with its backup_label and backup_manifest read. */
  readonly facts: Promise<BaseBackupFacts>;
}

/**
 * `pg_basebackup -D - -Ft -X fetch --checkpoint=fast`: the cluster as one tar on stdout, with
 * the WAL it needs and its backup_manifest inside, through zstd (or pg_basebackup's gzip).
 * The tar is read as it streams by for its backup_label and backup_manifest.
 */
export function startBaseBackup(opts: {
  readonly pgBasebackup: string;
  readonly target: DatabaseTarget;
  readonly compression: Compression;
  readonly zstd: string | null;
  /** Written into backup_label (`LABEL:`). */
  readonly label: string;
}): RunningBaseBackup {
  const args = ['-D', '-', '-Ft', '-X', 'fetch', '--checkpoint=fast', '--no-password'];
  args.push(`--label=${opts.label}`);
  if (opts.compression === 'gzip') args.push('-Z', '6');
  const proc: ResultPromise = execa(opts.pgBasebackup, args, {
    env: libpqEnv(opts.target),
    extendEnv: false,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: { stdout: false, stderr: true },
  });
  const reader = readTarFacts();
  const running = streamOutput(proc, 'pg_basebackup', opts, reader.write);
  const facts = running.done.then(() => reader.end());
  facts.catch(() => undefined);
  return { ...running, facts };
}

/** How long the tar reader may take to finish after the last byte. */
const TAR_END_MS = 60_000;

/** Reads backup_label and backup_manifest out of a tar given chunk by chunk (gzip or not). */
function readTarFacts(): { write: (chunk: Buffer) => void; end: () => Promise<BaseBackupFacts> } {
  const files = new Map<string, string>();
  let failed: Error | null = null;
  const parser = new Parser();
  parser.on('entry', (e: ReadEntry) => {
    const name = e.path.replace(/^\.\//, '');
    if (name !== 'backup_label' && name !== 'backup_manifest') {
      e.resume();
      return;
    }
    const chunks: Buffer[] = [];
    e.on('data', (c: Buffer) => chunks.push(c));
    e.on('end', () => files.set(name, Buffer.concat(chunks).toString('utf8')));
  });
  parser.on('error', (e: Error) => {
    failed ??= e;
  });
  const ended = new Promise<void>((resolve) => parser.on('end', () => resolve()));
  return {
    write: (chunk) => {
      if (failed === null) parser.write(chunk);
    },
    async end() {
      parser.end();
      // The reader keeps pace with the stream; a reader that never ends must not hang the backup.
      let timer: NodeJS.Timeout | undefined;
      const stuck = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error("pg_basebackup's tar reader did not finish")),
          TAR_END_MS,
        );
      });
      await Promise.race([ended, stuck]).finally(() => clearTimeout(timer));
      if (failed) throw new Error(`pg_basebackup's tar could not be read: ${failed.message}`);
      const label = files.get('backup_label');
      const manifest = files.get('backup_manifest');
      if (label === undefined || manifest === undefined)
        throw new Error(
          `pg_basebackup's tar holds no ${label === undefined ? 'backup_label' : 'backup_manifest'}`,
        );
      const start = parseBackupLabel(label);
      const wal = parseManifestWal(manifest);
      return {
        timeline: wal.timeline,
        startLsn: start.startLsn,
        endLsn: wal.endLsn,
        backupLabel: label,
      };
    },
  };
}

/**
 * About how many bytes the cluster holds (every database; WAL and catalogs aside), to size
 * the upload's parts; the database's own size when the role may not read the others'.
 */
export async function clusterSize(session: Session, fallback: number): Promise<number> {
  try {
    const [row] = await session.rows<{ size: string | null }>(
      `SELECT sum(pg_catalog.pg_database_size(oid))::text AS size FROM pg_catalog.pg_database
        WHERE datallowconn AND pg_catalog.has_database_privilege(oid, 'CONNECT')`,
    );
    const size = Number(row?.size ?? Number.NaN);
    return Number.isFinite(size) && size >= fallback ? size : fallback;
  } catch {
    return fallback;
  }
}
