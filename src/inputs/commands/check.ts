import type { DecryptionSettings, EncryptionSettings } from '../../crypto/age.js';
import type { Signer } from '../../crypto/sshsig.js';
import { BACKUP_MODES, type BackupMode } from '../../postgres/basebackup.js';
import type { PgClientSettings } from '../../postgres/clients.js';
import type { RowCountMethod } from '../../postgres/snapshot.js';
import { type DatabaseTarget, parseDatabaseUrl } from '../../postgres/url.js';
import type { SshSettings } from '../../tunnel/settings.js';
import type { CommonSettings } from '../common.js';
import { parsePgClients, parseSsh } from '../database.js';
import { parseDecryption, parseEncryption, parseSigner } from '../keys.js';
import { parseOneOf, parseSecretUrl } from '../primitives.js';
import type { InputSource } from '../source.js';
import { parseBackupWorkflow } from './monitor.js';

/** `check`: every input of a set-up, each optional; what is not set is skipped. */
export interface CheckSettings extends CommonSettings {
  readonly command: 'check';
  /** `database-url`; null: the database rows are skipped. */
  readonly database: DatabaseTarget | null;
  readonly ssh: SshSettings | null;
  /** `age-recipients` or `passphrase`; null when neither is set. */
  readonly encryption: EncryptionSettings | null;
  /** `age-identity`; null when not set (a passphrase decrypts with itself). */
  readonly decryption: DecryptionSettings | null;
  /** `mode`: the backup's; `physical` adds the rows a base backup needs. */
  readonly mode: BackupMode;
  /** Decides the lock budget's count batch, as in the backup. */
  readonly rowCounts: RowCountMethod;
  /** `heartbeat-url` (secret); null when not set. */
  readonly heartbeatUrl: string | null;
  /** `backup-workflow`; null when not set. */
  readonly backupWorkflow: string | null;
  /** `pg-bin-dir` and `install-client`: the clients a backup would pick. */
  readonly pgClients: PgClientSettings;
  /** `signing-key`; null when not set. */
  readonly signer: Signer | null;
}

const ROW_COUNTS: readonly RowCountMethod[] = ['exact', 'estimate', 'off'];

export function parseCheck(src: InputSource, common: CommonSettings): CheckSettings {
  const url = src.get('database-url');
  const keys = src.get('age-recipients').trim() !== '' || src.get('passphrase') !== '';
  return {
    ...common,
    command: 'check',
    database: url.trim() === '' ? null : parseDatabaseUrl('database-url', url),
    ssh: parseSsh(src),
    encryption: keys ? parseEncryption(src) : null,
    decryption: src.get('age-identity').trim() === '' ? null : parseDecryption(src, false),
    mode: parseOneOf(src, 'mode', BACKUP_MODES),
    rowCounts: parseOneOf(src, 'row-counts', ROW_COUNTS),
    heartbeatUrl: parseSecretUrl(src, 'heartbeat-url', 'https://hc-ping.com/<uuid>'),
    backupWorkflow: parseBackupWorkflow(src),
    pgClients: parsePgClients(src),
    signer: parseSigner(src),
  };
}
