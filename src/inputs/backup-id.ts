import { InputError } from '../errors.js';
import { BACKUP_ID } from '../manifest/id.js';
import { hasControlCharacters } from './primitives.js';
import type { InputSource } from './source.js';

/** `latest`, `recent` (verify: the last 7 days) or a backup id. */
export type BackupSelector = 'latest' | 'recent' | { readonly id: string };

/** `backup-id`; `recent` only where `allowRecent` (verify). */
export function parseBackupSelector(src: InputSource, allowRecent: true): BackupSelector;
export function parseBackupSelector(
  src: InputSource,
  allowRecent: false,
): Exclude<BackupSelector, 'recent'>;
export function parseBackupSelector(src: InputSource, allowRecent: boolean): BackupSelector {
  const v = src.get('backup-id').trim();
  if (v === 'latest' || (allowRecent && v === 'recent')) return v;
  if (BACKUP_ID.test(v)) return { id: v };
  throw new InputError(
    'backup-id',
    `Invalid 'backup-id': "${v}". Expected latest${allowRecent ? ', recent' : ''} or an id like 20261126T020000Z-7f3a9c.`,
  );
}

/** `source-database`: the database, by name, whose backups a command chooses among; null when empty. */
export function parseSourceDatabase(src: InputSource): string | null {
  const v = src.get('source-database').trim();
  if (v === '') return null;
  if (hasControlCharacters(v) || Buffer.byteLength(v, 'utf8') > 63)
    throw new InputError(
      'source-database',
      `Invalid 'source-database': ${JSON.stringify(v)}. Expected a database name as the backups record it (at most 63 bytes, no control characters), e.g. app.`,
    );
  return v;
}
