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
import type { InputSource } from '../source.js';

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

/** `data-dir`, `start` and `port`. */
export interface PhysicalRestore {
  /** Absolute path of the data directory. */
  readonly dataDir: string;
  readonly start: boolean;
  /** null: the restored configuration's. */
  readonly port: number | null;
}

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
  return { dataDir: isAbsolute(v) ? v : resolve(workspace, v), start, port };
}
