import { isAbsolute, resolve } from 'node:path';
import type { DecryptionSettings } from '../../crypto/age.js';
import { InputError } from '../../errors.js';
import type { PgClientSettings } from '../../postgres/clients.js';
import { OWNERSHIPS, type Ownership } from '../../postgres/rebuild.js';
import { type DatabaseTarget, parseDatabaseUrl } from '../../postgres/url.js';
import type { SshSettings } from '../../tunnel/settings.js';
import { type BackupSelector, parseBackupSelector, parseSourceDatabase } from '../backup-id.js';
import type { CommonSettings } from '../common.js';
import { parsePgClients, parseSsh } from '../database.js';
import { parseDecryption } from '../keys.js';
import { hasControlCharacters, parseBoolean, parseOneOf, parseWholeNumber } from '../primitives.js';
import type { InputName, InputSource } from '../source.js';

export interface RestoreSettings extends CommonSettings {
  readonly command: 'restore';
  /** Where PostgreSQL client programs come from (`pg-bin-dir`, `install-client`). */
  readonly pgClients: PgClientSettings;
  readonly backup: Exclude<BackupSelector, 'recent'>;
  /** `source-database`: whose backups `latest` chooses among; null: see restore's findBackup. */
  readonly sourceDatabase: string | null;
  /** A destination name, or `any`: each in order, falling back on failure. */
  readonly restoreFrom: string;
  /** The database restored into; null when only a data directory is (`data-dir`, no `database-url`). */
  readonly database: DatabaseTarget | null;
  /** A physical backup's restore: the data directory, the start, its port. */
  readonly physical: PhysicalRestore | null;
  readonly ssh: SshSettings | null;
  /** Where the config bundle is extracted; null = not extracted. */
  readonly configDir: string | null;
  readonly decryption: DecryptionSettings;
  /** Replace a target database that has objects (it is kept under another name). */
  readonly force: boolean;
  /** Who owns the restored objects: their source owners (superuser) or the restoring user. */
  readonly ownership: Ownership;
  /** Drop the database the restore replaced instead of keeping it. */
  readonly dropPrevious: boolean;
  /** End the target's sessions at the switch instead of refusing. */
  readonly terminateConnections: boolean;
  readonly parallel: ParallelRestore;
}

/** Where a point-in-time recovery stops: a moment, a WAL position, or the end of the WAL shipped. */
export type RecoveryTarget =
  | { readonly kind: 'time'; readonly time: Date }
  | { readonly kind: 'lsn'; readonly lsn: string }
  | { readonly kind: 'latest' };

/** `data-dir`, `start`, `port` and the recovery target. */
export interface PhysicalRestore {
  /** Absolute path of the data directory. */
  readonly dataDir: string;
  readonly start: boolean;
  /** null: the restored configuration's. */
  readonly port: number | null;
  /** null: the backup's own end, no WAL fetched. */
  readonly target: RecoveryTarget | null;
  /**
   * The inputs `pg-dr wal-get` needs (destinations, prefix, trust, key), as given: written into
   * a private env file its restore_command reads. Empty without a target.
   */
  readonly walInputs: ReadonlyMap<InputName, string>;
}

/** What `pg-dr wal-get` reads: where the WAL is, whom to trust, and the key. */
const WAL_GET_INPUTS: readonly InputName[] = [
  'prefix',
  'primary-name',
  'primary-endpoint',
  'primary-region',
  'primary-bucket',
  'primary-access-key-id',
  'primary-secret-access-key',
  'secondary-name',
  'secondary-endpoint',
  'secondary-region',
  'secondary-bucket',
  'secondary-access-key-id',
  'secondary-secret-access-key',
  'force-path-style',
  'storage-timeout-seconds',
  'trusted-signers',
  'age-identity',
  'passphrase',
];

/** `restore-jobs` and `restore-temp-dir` (restore and the drill). */
export interface ParallelRestore {
  /** pg_restore jobs: 1 streams the archive; above 1, through a temporary file. */
  readonly jobs: number;
  /** Where the temporary file's folder is made; null: RUNNER_TEMP, else the OS's. */
  readonly tempDir: string | null;
}

/**
 * At most 64 jobs: each is a connection to the target (default max_connections is 100),
 * more than the cores seldom helps, and pg_restore on Windows stops at 64.
 */
export const MAX_RESTORE_JOBS = 64;

export function parseParallelRestore(src: InputSource, workspace: string): ParallelRestore {
  const jobs = parseWholeNumber(src, 'restore-jobs', 1, { max: MAX_RESTORE_JOBS });
  const v = src.get('restore-temp-dir').trim();
  if (v !== '' && hasControlCharacters(v))
    throw new InputError(
      'restore-temp-dir',
      `Invalid 'restore-temp-dir': contains control characters. Expected a folder path.`,
    );
  return { jobs, tempDir: v === '' ? null : isAbsolute(v) ? v : resolve(workspace, v) };
}

export function parseRestore(src: InputSource, common: CommonSettings): RestoreSettings {
  const physical = parsePhysicalRestore(src, common.workspace);
  const restoreFrom = src.get('restore-from').trim() || 'any';
  const names = common.destinations.map((d) => d.name);
  if (restoreFrom !== 'any' && !names.includes(restoreFrom))
    throw new InputError(
      'restore-from',
      `Invalid 'restore-from': "${restoreFrom}". Expected any or a destination name: ${names.join(', ')}.`,
    );
  return {
    ...common,
    command: 'restore',
    pgClients: parsePgClients(src),
    backup: parseBackupSelector(src, false),
    sourceDatabase: parseSourceDatabase(src),
    restoreFrom,
    database:
      physical && src.get('database-url').trim() === ''
        ? null
        : parseDatabaseUrl('database-url', src.get('database-url')),
    physical,
    ssh: parseSsh(src),
    configDir: parseConfigDir(src, common.workspace),
    decryption: parseDecryption(src, true),
    force: parseBoolean(src, 'force'),
    dropPrevious: parseBoolean(src, 'drop-previous'),
    ownership: parseOneOf(src, 'ownership', OWNERSHIPS),
    terminateConnections: parseBoolean(src, 'terminate-connections'),
    parallel: parseParallelRestore(src, common.workspace),
  };
}

/** `config-dir`, resolved against the workspace; null when not set. */
function parseConfigDir(src: InputSource, workspace: string): string | null {
  const v = src.get('config-dir').trim();
  if (v === '') return null;
  if (hasControlCharacters(v))
    throw new InputError(
      'config-dir',
      `Invalid 'config-dir': contains control characters. Expected a folder path.`,
    );
  return isAbsolute(v) ? v : resolve(workspace, v);
}

/** `data-dir` (resolved against the workspace), `start` and `port`; null without data-dir. */
function parsePhysicalRestore(src: InputSource, workspace: string): PhysicalRestore | null {
  const v = src.get('data-dir').trim();
  const start = parseBoolean(src, 'start');
  const p = src.get('port').trim();
  const port = p === '' ? null : parseWholeNumber(src, 'port', 1, { max: 65535 });
  if (v === '') {
    const target = TARGET_INPUTS.find((n) => src.get(n).trim() !== '');
    if (target)
      throw new InputError(
        target,
        `'${target}' needs 'data-dir': a point-in-time recovery restores a physical backup into a data directory and replays the WAL there.`,
      );
    if (start)
      throw new InputError(
        'start',
        "Invalid 'start': true without 'data-dir'. A server is started on a physical backup restored into 'data-dir'; set it, or start: false.",
      );
    if (port !== null)
      throw new InputError(
        'port',
        `Invalid 'port': "${p}" without 'data-dir' and 'start'. It is the port of the server started on a restored data directory.`,
      );
    return null;
  }
  if (hasControlCharacters(v))
    throw new InputError(
      'data-dir',
      `Invalid 'data-dir': contains control characters. Expected a folder path.`,
    );
  if (port !== null && !start)
    throw new InputError(
      'port',
      `Invalid 'port': "${p}" with start: false. It is the port of the server pg-dr starts; set start: true, or clear it.`,
    );
  const target = parseRecoveryTarget(src, start);
  return {
    dataDir: isAbsolute(v) ? v : resolve(workspace, v),
    start,
    port,
    target,
    walInputs: new Map(target ? WAL_GET_INPUTS.map((n) => [n, src.get(n)]) : []),
  };
}

const TARGET_INPUTS = ['recovery-target-time', 'recovery-target-lsn', 'recovery-target'] as const;

/** At most one of the three recovery-target inputs; it needs data-dir (checked by the caller) and start. */
export function parseRecoveryTarget(src: InputSource, start: boolean): RecoveryTarget | null {
  const set = TARGET_INPUTS.filter((n) => src.get(n).trim() !== '');
  if (set.length === 0) return null;
  if (set.length > 1)
    throw new InputError(
      set[1] as InputName,
      `Set one recovery target, not ${set.length}: ${set.map((n) => `'${n}'`).join(' and ')}.`,
    );
  const name = set[0] as (typeof TARGET_INPUTS)[number];
  const v = src.get(name).trim();
  if (!start)
    throw new InputError(
      'start',
      `'${name}' needs start: true: pg-dr starts the server, which replays the WAL up to the target and is promoted.`,
    );
  if (name === 'recovery-target') {
    if (v !== 'latest') throw new InputError(name, `Invalid '${name}': "${v}". Expected latest.`);
    return { kind: 'latest' };
  }
  if (name === 'recovery-target-lsn') {
    if (!/^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/.test(v))
      throw new InputError(
        name,
        `Invalid '${name}': "${v}". Expected a WAL position like 0/3000148.`,
      );
    return { kind: 'lsn', lsn: v.toUpperCase() };
  }
  return { kind: 'time', time: parseTargetTime(v) };
}

/** An ISO 8601 time with its zone (`T` or a space between date and time); no zone is refused. */
function parseTargetTime(v: string): Date {
  const m =
    /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)$/i.exec(
      v,
    );
  const expected =
    'Expected an ISO 8601 time with its zone, e.g. 2026-11-30T09:35:13Z or 2026-11-30 10:35:13+01:00.';
  if (!m) {
    const noZone = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(v);
    throw new InputError(
      'recovery-target-time',
      `Invalid 'recovery-target-time': "${v}". ${noZone ? 'It has no time zone, so the moment is ambiguous: add Z for UTC or an offset. ' : ''}${expected}`,
    );
  }
  const [, y, mo, d, h, mi, sec, frac, zone] = m;
  let z = (zone as string).toUpperCase();
  if (z !== 'Z' && !z.includes(':'))
    z = z.length === 3 ? `${z}:00` : `${z.slice(0, 3)}:${z.slice(3)}`;
  const iso = `${y}-${mo}-${d}T${h}:${mi}:${sec ?? '00'}${(frac ?? '').slice(0, 4)}${z}`;
  const t = new Date(iso);
  const day = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  const real = day.getUTCMonth() === Number(mo) - 1 && day.getUTCDate() === Number(d);
  if (
    Number.isNaN(t.getTime()) ||
    !real ||
    Number(h) > 23 ||
    Number(mi) > 59 ||
    Number(sec ?? 0) > 59
  )
    throw new InputError(
      'recovery-target-time',
      `Invalid 'recovery-target-time': "${v}". ${expected}`,
    );
  return t;
}
