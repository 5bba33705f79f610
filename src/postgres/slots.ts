import type { Session } from './session.js';

/** A replication slot as pg_replication_slots shows it (the `wal_status` column is 13+). */
export interface ReplicationSlotRow {
  readonly name: string;
  readonly type: string;
  readonly restartLsn: string | null;
  readonly walStatus: string | null;
  readonly active: boolean;
}

export async function readSlot(
  session: Session,
  name: string,
  versionNum: number,
): Promise<ReplicationSlotRow | null> {
  const [row] = await session.rows<ReplicationSlotRow>(
    `SELECT slot_name AS name, slot_type AS type, restart_lsn::text AS "restartLsn",
            ${versionNum >= 130000 ? 'wal_status' : 'NULL::text'} AS "walStatus", active
       FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`,
    [name],
  );
  return row ?? null;
}

/** Creates a physical slot that reserves WAL from now on (superuser or REPLICATION). */
export async function createPhysicalSlot(session: Session, name: string): Promise<void> {
  await session.rows('SELECT pg_catalog.pg_create_physical_replication_slot($1, true)', [name]);
}

/**
 * What the server says of WAL streaming: wal_level (replica or logical needed), whether the
 * role may replicate, and the server's clock.
 */
export async function readWalSettings(
  session: Session,
): Promise<{ walLevel: string; canReplicate: boolean; role: string; now: string }> {
  const [row] = await session.rows<{
    walLevel: string;
    canReplicate: boolean;
    role: string;
    now: string;
  }>(
    `SELECT current_setting('wal_level') AS "walLevel", r.rolname AS role,
            (r.rolreplication OR r.rolsuper) AS "canReplicate", now() AS now
       FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`,
  );
  if (!row) throw new Error('The server did not say who is connected.');
  return row;
}

/** The server's clock now (ISO with offset), as the end position's time. */
export async function serverNow(session: Session): Promise<string> {
  const [row] = await session.rows<{ now: string }>('SELECT now() AS now');
  return row?.now ?? new Date().toISOString();
}

/** How much WAL the slot holds back, and how much more before the server invalidates it. */
export interface SlotRetention {
  /** Bytes from the slot's restart position to the server's current position. */
  readonly retainedBytes: number;
  /** `max_slot_wal_keep_size` in bytes; null when unlimited (-1). */
  readonly keepBytes: number | null;
  /** pg_replication_slots.safe_wal_size: bytes that can still be written before it is lost (13+). */
  readonly safeBytes: number | null;
}

export async function readSlotRetention(
  session: Session,
  name: string,
  versionNum: number,
): Promise<SlotRetention | null> {
  if (versionNum < 130000) return null;
  const [row] = await session.rows<{ retained: string | null; keep: string; safe: string | null }>(
    `SELECT pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), restart_lsn)::text AS retained,
            current_setting('max_slot_wal_keep_size') AS keep, safe_wal_size::text AS safe
       FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`,
    [name],
  );
  if (!row || row.retained === null) return null;
  return {
    retainedBytes: Number(row.retained),
    keepBytes: keepSettingBytes(row.keep),
    safeBytes: row.safe === null ? null : Number(row.safe),
  };
}

/** `-1` → null (unlimited); `10GB`, `1024MB`, `512` (MB) → bytes. */
export function keepSettingBytes(v: string): number | null {
  const m = /^(-?\d+)\s*(kB|MB|GB|TB)?$/.exec(v.trim());
  if (!m || Number(m[1]) < 0) return null;
  const unit = { kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 }[m[2] ?? 'MB'] ?? 1024 ** 2;
  return Number(m[1]) * unit;
}
