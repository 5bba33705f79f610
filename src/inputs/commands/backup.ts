import { parseConfigPaths } from '../../bundle/index.js';
import { COMPRESSIONS, type Compression } from '../../compression/index.js';
import type { EncryptionSettings } from '../../crypto/age.js';
import type { Signer } from '../../crypto/sshsig.js';
import { BACKUP_MODES, type BackupMode } from '../../postgres/basebackup.js';
import type { PgClientSettings } from '../../postgres/clients.js';
import type { RowCountMethod } from '../../postgres/snapshot.js';
import { type DatabaseTarget, parseDatabaseUrl } from '../../postgres/url.js';
import type { SshSettings } from '../../tunnel/settings.js';
import type { CommonSettings } from '../common.js';
import { parsePgClients, parseSsh } from '../database.js';
import { parseEncryption, parseSigner } from '../keys.js';
import { parseBoolean, parseOneOf, parseSecretUrl, parseWholeNumber } from '../primitives.js';
import type { InputSource } from '../source.js';
import { type PruneRules, parsePruneRules } from './prune.js';
import { parseWalSlot } from './wal.js';

export interface BackupSettings extends CommonSettings {
  readonly command: 'backup';
  /** Where PostgreSQL client programs come from (`pg-bin-dir`, `install-client`). */
  readonly pgClients: PgClientSettings;
  /** Signs the manifests and verification records this run writes (`signing-key`); null: unsigned. */
  readonly signer: Signer | null;
  /** The database to dump. */
  readonly database: DatabaseTarget;
  readonly ssh: SshSettings | null;
  /** Globs of platform files to bundle. */
  readonly configPaths: readonly string[];
  readonly encryption: EncryptionSettings;
  readonly compression: Compression;
  /** `logical` (pg_dump of the database) or `physical` (pg_basebackup of the cluster). */
  readonly mode: BackupMode;
  /** mode physical: the replication slot pg_basebackup uses (`-S`), kept for `wal`; null: none. */
  readonly walSlot: string | null;
  /** Create `walSlot` with the base backup (`-C`) when it does not exist. */
  readonly createSlot: boolean;
  readonly rowCounts: RowCountMethod;
  /** Fail the step when only one destination got the backup. */
  readonly failOnDegraded: boolean;
  /** Retention to apply after a successful backup (prune-after-backup), or null. */
  readonly pruneAfter: PruneRules | null;
  /** A dead man's switch to ping at the start and the end (secret), or null. */
  readonly heartbeatUrl: string | null;
  /** `backup-changed` when a table lost more than this percentage of its rows (or the archive shrank by it). */
  readonly maxRowDropPercent: number;
}

const ROW_COUNTS: readonly RowCountMethod[] = ['exact', 'estimate', 'off'];

export function parseBackup(src: InputSource, common: CommonSettings): BackupSettings {
  return {
    ...common,
    command: 'backup',
    pgClients: parsePgClients(src),
    signer: parseSigner(src),
    database: parseDatabaseUrl('database-url', src.get('database-url')),
    ssh: parseSsh(src),
    configPaths: parseConfigPaths(src.get('config-paths')),
    encryption: parseEncryption(src),
    compression: parseOneOf(src, 'compression', COMPRESSIONS),
    mode: parseOneOf(src, 'mode', BACKUP_MODES),
    walSlot: parseWalSlot(src, null),
    createSlot: parseBoolean(src, 'create-slot'),
    rowCounts: parseOneOf(src, 'row-counts', ROW_COUNTS),
    failOnDegraded: parseBoolean(src, 'fail-on-degraded'),
    pruneAfter: parseBoolean(src, 'prune-after-backup') ? parsePruneRules(src) : null,
    heartbeatUrl: parseSecretUrl(src, 'heartbeat-url', 'https://hc-ping.com/<uuid>'),
    maxRowDropPercent: parseWholeNumber(src, 'max-row-drop-percent', 0, { max: 100 }),
  };
}
