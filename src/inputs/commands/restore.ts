import { isAbsolute, resolve } from 'node:path';
import type { DecryptionSettings } from '../../crypto/age.js';
import { InputError } from '../../errors.js';
import { OWNERSHIPS, type Ownership } from '../../postgres/rebuild.js';
import { type DatabaseTarget, parseDatabaseUrl } from '../../postgres/url.js';
import type { SshSettings } from '../../tunnel/settings.js';
import { type BackupSelector, parseBackupSelector } from '../backup-id.js';
import type { CommonSettings } from '../common.js';
import { parseSsh } from '../database.js';
import { parseDecryption } from '../keys.js';
import { hasControlCharacters, parseBoolean, parseOneOf } from '../primitives.js';
import type { InputSource } from '../source.js';

export interface RestoreSettings extends CommonSettings {
  readonly command: 'restore';
  readonly backup: Exclude<BackupSelector, 'recent'>;
  /** A destination name, or `any`: each in order, falling back on failure. */
  readonly restoreFrom: string;
  /** The database restored into. */
  readonly database: DatabaseTarget;
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
}

export function parseRestore(src: InputSource, common: CommonSettings): RestoreSettings {
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
    backup: parseBackupSelector(src, false),
    restoreFrom,
    database: parseDatabaseUrl('database-url', src.get('database-url')),
    ssh: parseSsh(src),
    configDir: parseConfigDir(src, common.workspace),
    decryption: parseDecryption(src, true),
    force: parseBoolean(src, 'force'),
    dropPrevious: parseBoolean(src, 'drop-previous'),
    ownership: parseOneOf(src, 'ownership', OWNERSHIPS),
    terminateConnections: parseBoolean(src, 'terminate-connections'),
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
