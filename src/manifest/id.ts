import { randomBytes } from 'node:crypto';

/** `20261126T020000Z-7f3a9c`: sorts by creation time; the random tail separates runs of the same second. */
export const BACKUP_ID = /^\d{8}T\d{6}Z-[0-9a-f]{6}$/;

export function newBackupId(now: Date, random: () => Buffer = () => randomBytes(3)): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
  return `${stamp}-${random().toString('hex')}`;
}

/** The creation time encoded in an id. */
export function backupIdTime(id: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z/.exec(id);
  if (!m) throw new Error(`not a backup id: ${id}`);
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return new Date(Date.UTC(y, mo - 1, d, h, mi, s));
}

export const MANIFEST_NAME = 'manifest.json';
/** The SSH signature of an object sits beside it: `<name>.sig`. */
export const SIGNATURE_SUFFIX = '.sig';

export function backupPrefix(prefix: string, id: string): string {
  return `${prefix}${id}/`;
}
