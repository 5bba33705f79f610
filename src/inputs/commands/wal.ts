import type { EncryptionSettings } from '../../crypto/age.js';
import type { Signer } from '../../crypto/sshsig.js';
import { InputError } from '../../errors.js';
import { SLOT_NAME } from '../../postgres/replication.js';
import { type DatabaseTarget, parseDatabaseUrl } from '../../postgres/url.js';
import type { SshSettings } from '../../tunnel/settings.js';
import type { CommonSettings } from '../common.js';
import { parseSsh } from '../database.js';
import { parseEncryption, parseSigner } from '../keys.js';
import { parseBoolean } from '../primitives.js';
import type { InputSource } from '../source.js';

/** The slot `wal` keeps when `wal-slot` is empty. */
export const DEFAULT_WAL_SLOT = 'pg_dr';

export interface WalSettings extends CommonSettings {
  readonly command: 'wal';
  /** The server whose WAL is shipped (a role with REPLICATION). */
  readonly database: DatabaseTarget;
  readonly ssh: SshSettings | null;
  readonly encryption: EncryptionSettings;
  /** Signs each run's record (`signing-key`); null: unsigned. */
  readonly signer: Signer | null;
  /** The physical replication slot streamed from and advanced. */
  readonly slot: string;
  /** Create the slot when it does not exist. */
  readonly createSlot: boolean;
  /** Fail the step when only one destination got the WAL. */
  readonly failOnDegraded: boolean;
}

/**
 * `wal-slot`: a replication slot name as PostgreSQL takes one; `fallback` when empty
 * (`pg_dr` for wal, null — no slot — for backup).
 */
export function parseWalSlot<T extends string | null>(src: InputSource, fallback: T): string | T {
  const v = src.get('wal-slot').trim();
  if (v === '') return fallback;
  if (!SLOT_NAME.test(v))
    throw new InputError(
      'wal-slot',
      `Invalid 'wal-slot': "${v}". Expected a replication slot name: lower-case letters, digits and underscores, at most 63 (e.g. ${DEFAULT_WAL_SLOT}).`,
    );
  return v;
}

export function parseWal(src: InputSource, common: CommonSettings): WalSettings {
  return {
    ...common,
    command: 'wal',
    database: parseDatabaseUrl('database-url', src.get('database-url')),
    ssh: parseSsh(src),
    encryption: parseEncryption(src),
    signer: parseSigner(src),
    slot: parseWalSlot(src, DEFAULT_WAL_SLOT),
    createSlot: parseBoolean(src, 'create-slot'),
    failOnDegraded: parseBoolean(src, 'fail-on-degraded'),
  };
}
