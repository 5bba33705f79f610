import type { DecryptionSettings } from '../../crypto/age.js';
import type { Signer } from '../../crypto/sshsig.js';
import { VERIFY_LEVELS, type VerifyLevel } from '../../manifest/verification.js';
import type { PgClientSettings } from '../../postgres/clients.js';
import { type DatabaseTarget, parseDatabaseUrl } from '../../postgres/url.js';
import type { SshSettings } from '../../tunnel/settings.js';
import { type BackupSelector, parseBackupSelector, parseSourceDatabase } from '../backup-id.js';
import type { CommonSettings } from '../common.js';
import { parsePgClients, parseSsh } from '../database.js';
import { parseDecryption, parseSigner } from '../keys.js';
import { parseOneOf } from '../primitives.js';
import type { InputSource } from '../source.js';
import { type ParallelRestore, parseParallelRestore } from './restore.js';

export interface VerifySettings extends CommonSettings {
  readonly command: 'verify';
  /** Where PostgreSQL client programs come from (`pg-bin-dir`, `install-client`). */
  readonly pgClients: PgClientSettings;
  /** Signs the manifests and verification records this run writes (`signing-key`); null: unsigned. */
  readonly signer: Signer | null;
  readonly backup: BackupSelector;
  /** `source-database`: whose backups `latest`/`recent` choose among; null: each database's. */
  readonly sourceDatabase: string | null;
  readonly level: VerifyLevel;
  /** Needed from level `decrypt` on. */
  readonly decryption: DecryptionSettings | null;
  /**
   * The server of a restore drill (level `restore`) and the database pg-dr connects to there;
   * each drill creates its own database beside it and drops it afterwards.
   */
  readonly drill: DatabaseTarget | null;
  readonly ssh: SshSettings | null;
  /** How the drill runs pg_restore (`restore-jobs`, `restore-temp-dir`). */
  readonly parallel: ParallelRestore;
}

export function parseVerify(src: InputSource, common: CommonSettings): VerifySettings {
  const level = parseOneOf(src, 'verify-level', VERIFY_LEVELS);
  const drillUrl = src.get('drill-database-url');
  return {
    ...common,
    command: 'verify',
    pgClients: parsePgClients(src),
    signer: parseSigner(src),
    backup: parseBackupSelector(src, true),
    sourceDatabase: parseSourceDatabase(src),
    level,
    decryption: parseDecryption(src, level !== 'checksum'),
    // Needed by logical backups' drills only: verify says so when one is to be drilled.
    drill:
      level === 'restore' && drillUrl.trim() !== ''
        ? parseDatabaseUrl('drill-database-url', drillUrl)
        : null,
    ssh: level === 'restore' ? parseSsh(src) : null,
    parallel: parseParallelRestore(src, common.workspace),
  };
}
