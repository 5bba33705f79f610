import { randomBytes } from 'node:crypto';

/**
 * `20261126T020000Z-30f9c2`: the UTC second, then six hex digits: the millisecond (three
 * digits, so ids of one second still sort by creation time) and 12 random bits (two runs
 * of the same millisecond still differ, 4095 times in 4096).
 */
export const BACKUP_ID = /^\d{8}T\d{6}Z-[0-9a-f]{6}$/;

export function newBackupId(now: Date, random: () => Buffer = () => randomBytes(2)): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
  const ms = now.getUTCMilliseconds().toString(16).padStart(3, '0');
  const bits = (random().readUInt16BE(0) & 0xfff).toString(16).padStart(3, '0');
  return `${stamp}-${ms}${bits}`;
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
