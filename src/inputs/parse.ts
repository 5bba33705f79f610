import { existsSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parseConfigPaths } from '../bundle/index.js';
import { COMPRESSIONS, type Compression } from '../compression/index.js';
import type { DecryptionSettings, EncryptionSettings } from '../crypto/age.js';
import { parseIdentities, parseRecipients } from '../crypto/age.js';
import {
  parseSigningKey,
  parseTrustedSigners,
  type Signer,
  type TrustedSigner,
} from '../crypto/sshsig.js';
import { InputError } from '../errors.js';
import { BACKUP_ID } from '../manifest/id.js';
import { VERIFY_LEVELS, type VerifyLevel } from '../manifest/verification.js';
import type { PgClientSettings } from '../postgres/clients.js';
import { OWNERSHIPS, type Ownership } from '../postgres/rebuild.js';
import type { RowCountMethod } from '../postgres/snapshot.js';
import type { DatabaseTarget } from '../postgres/url.js';
import { parseDatabaseUrl } from '../postgres/url.js';
import type { RetentionRules } from '../retention/policy.js';
import { type DestinationSettings, defaultRegion, parseEndpoint } from '../storage/client.js';
import type { SshSettings } from '../tunnel/settings.js';
import type { InputName, InputSource } from './source.js';

export type { SshSettings } from '../tunnel/settings.js';

export const COMMANDS = ['backup', 'verify', 'monitor', 'restore', 'list', 'prune'] as const;
export type Command = (typeof COMMANDS)[number];

/** Inputs whose values are secrets: masked before anything else happens. */
export const SECRET_INPUTS = [
  'primary-secret-access-key',
  'secondary-secret-access-key',
  'github-token',
  'database-url',
  'drill-database-url',
  'ssh-private-key',
  'passphrase',
  'age-identity',
  'signing-key',
] as const satisfies readonly InputName[];

/** What every command needs. */
export interface CommonSettings {
  readonly command: Command;
  /** Key prefix of every object, e.g. `disaster_recovery/`. */
  readonly prefix: string;
  /** Primary first; one or two. */
  readonly destinations: readonly DestinationSettings[];
  /** Token for the alert feed; '' when none. */
  readonly githubToken: string;
  readonly alertLabels: readonly string[];
  /** Where config-paths globs are resolved: GITHUB_WORKSPACE, else the current directory. */
  readonly workspace: string;
  /** Where PostgreSQL client programs come from. */
  readonly pgClients: PgClientSettings;
  /** Days to keep the audit artifact; null = the repository's default. */
  readonly artifactRetentionDays: number | null;
  /** Signs the manifests and verification records this run writes (`signing-key`); null: unsigned. */
  readonly signer: Signer | null;
  /**
   * Public keys whose signatures make a backup or a record trusted (`trusted-signers`);
   * null: nothing is authenticated (as before signatures existed).
   */
  readonly trusted: readonly TrustedSigner[] | null;
}

export interface BackupSettings extends CommonSettings {
  readonly command: 'backup';
  /** The database to dump. */
  readonly database: DatabaseTarget;
  readonly ssh: SshSettings | null;
  /** Globs of platform files to bundle. */
  readonly configPaths: readonly string[];
  readonly encryption: EncryptionSettings;
  readonly compression: Compression;
  readonly rowCounts: RowCountMethod;
  /** Fail the step when only one destination got the backup. */
  readonly failOnDegraded: boolean;
  /** Retention to apply after a successful backup (prune-after-backup), or null. */
  readonly pruneAfter: Pick<
    PruneSettings,
    'rules' | 'dryRun' | 'maxBackupAgeHours' | 'maxVerifyAgeDays' | 'maxDeletions'
  > | null;
}

/** `latest`, `recent` (verify: the last 7 days) or a backup id. */
export type BackupSelector = 'latest' | 'recent' | { readonly id: string };

export interface VerifySettings extends CommonSettings {
  readonly command: 'verify';
  readonly backup: BackupSelector;
  readonly level: VerifyLevel;
  /** Needed from level `decrypt` on. */
  readonly decryption: DecryptionSettings | null;
  /**
   * The server of a restore drill (level `restore`) and the database pg-dr connects to there;
   * each drill creates its own database beside it and drops it afterwards.
   */
  readonly drill: DatabaseTarget | null;
  readonly ssh: SshSettings | null;
}

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

export interface ListSettings extends CommonSettings {
  readonly command: 'list';
}

export interface PruneSettings extends CommonSettings {
  readonly command: 'prune';
  /** keep-last / keep-daily / keep-weekly / keep-monthly / keep-yearly. */
  readonly rules: RetentionRules;
  /** List what would go, delete nothing. */
  readonly dryRun: boolean;
  /** Pruning is refused while the newest complete backup is older than this. */
  readonly maxBackupAgeHours: number;
  /** The verification window of the safety rails. */
  readonly maxVerifyAgeDays: number;
  /** At most this many backups deleted per destination in one run; above it, none is. */
  readonly maxDeletions: number;
}

export interface MonitorSettings extends CommonSettings {
  readonly command: 'monitor';
  readonly maxBackupAgeHours: number;
  readonly maxVerifyAgeDays: number;
  /** Workflow file whose runs give the success rate; null: that check is skipped. */
  readonly backupWorkflow: string | null;
  readonly minSuccessRate: number;
}

export type Settings =
  | BackupSettings
  | VerifySettings
  | RestoreSettings
  | ListSettings
  | PruneSettings
  | MonitorSettings;

function expectOneOf<T extends string>(src: InputSource, name: InputName, values: readonly T[]): T {
  const v = src.get(name).trim();
  if ((values as readonly string[]).includes(v)) return v as T;
  throw new InputError(name, `Invalid '${name}': "${v}". Expected one of: ${values.join(', ')}.`);
}

export function parseBoolean(src: InputSource, name: InputName): boolean {
  const v = src.get(name).trim().toLowerCase();
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new InputError(name, `Invalid '${name}': "${src.get(name)}". Expected true or false.`);
}

export function parseWholeNumber(src: InputSource, name: InputName, min = 0): number {
  const v = src.get(name).trim();
  if (!/^\d+$/.test(v) || Number(v) < min || !Number.isSafeInteger(Number(v)))
    throw new InputError(name, `Invalid '${name}': "${v}". Expected a whole number ≥ ${min}.`);
  return Number(v);
}

export function parseFraction(src: InputSource, name: InputName): number {
  const v = src.get(name).trim();
  const n = Number(v);
  if (!/^(0(\.\d+)?|1(\.0+)?|\.\d+)$/.test(v) || n < 0 || n > 1)
    throw new InputError(name, `Invalid '${name}': "${v}". Expected a number from 0 to 1.`);
  return n;
}

function hasControlCharacters(v: string): boolean {
  return [...v].some((c) => c.charCodeAt(0) < 0x20);
}

function required(src: InputSource, name: InputName, what: string, secret = false): string {
  const v = src.get(name).trim();
  if (v === '') throw new InputError(name, `Missing '${name}'. Expected ${what}.`);
  if (!secret && hasControlCharacters(v))
    throw new InputError(name, `Invalid '${name}': contains control characters. Expected ${what}.`);
  return v;
}

function parsePrefix(src: InputSource): string {
  const v = src.get('prefix').trim();
  if (
    v.startsWith('/') ||
    v.split('/').includes('..') ||
    hasControlCharacters(v) ||
    v.includes('\\')
  )
    throw new InputError(
      'prefix',
      `Invalid 'prefix': "${v}". Expected a key prefix such as disaster_recovery/ (no leading '/', no '..').`,
    );
  return v;
}

function parseDestination(
  src: InputSource,
  role: 'primary' | 'secondary',
): DestinationSettings | null {
  const n = (s: string) => `${role}-${s}` as InputName;
  if (role === 'secondary') {
    const anySet = ['endpoint', 'bucket', 'access-key-id', 'secret-access-key'].some(
      (s) => src.get(n(s)).trim() !== '',
    );
    if (!anySet) return null;
  }
  const endpoint = parseEndpoint(
    n('endpoint'),
    required(src, n('endpoint'), 'the S3 endpoint URL'),
  );
  const bucket = required(src, n('bucket'), 'a bucket name');
  if (!/^[a-zA-Z0-9][a-zA-Z0-9._-]{1,254}$/.test(bucket))
    throw new InputError(
      n('bucket'),
      `Invalid '${n('bucket')}': "${bucket}". Expected a bucket name (letters, digits, '.', '-', '_').`,
    );
  const name = src.get(n('name')).trim() || role;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(name))
    throw new InputError(
      n('name'),
      `Invalid '${n('name')}': "${name}". Expected letters, digits, '.', '-', '_'.`,
    );
  const region = src.get(n('region')).trim() || defaultRegion(endpoint);
  if (!/^[a-z0-9-]{1,64}$/.test(region))
    throw new InputError(
      n('region'),
      `Invalid '${n('region')}': "${region}". Expected a region name such as us-west-004 or auto.`,
    );
  return {
    name,
    role,
    endpoint,
    region,
    bucket,
    accessKeyId: required(src, n('access-key-id'), 'the access key id'),
    secretAccessKey: required(src, n('secret-access-key'), 'the secret access key', true),
    forcePathStyle: parseBoolean(src, 'force-path-style'),
    idleTimeoutMs: parseStorageTimeout(src) * 1000,
  };
}

function parseStorageTimeout(src: InputSource): number {
  const n = parseWholeNumber(src, 'storage-timeout-seconds', 1);
  if (n > 3600)
    throw new InputError(
      'storage-timeout-seconds',
      `Invalid 'storage-timeout-seconds': "${n}". Expected a whole number of seconds from 1 to 3600.`,
    );
  return n;
}

function parseEncryption(src: InputSource): EncryptionSettings {
  const recipients = src.get('age-recipients').trim();
  const passphrase = src.get('passphrase');
  if (recipients !== '' && passphrase !== '')
    throw new InputError(
      'age-recipients',
      "Both 'age-recipients' and 'passphrase' are set. Expected exactly one of them (age-recipients is recommended).",
    );
  if (recipients === '' && passphrase === '')
    throw new InputError(
      'age-recipients',
      "Neither 'age-recipients' nor 'passphrase' is set. Expected exactly one of them (age-recipients is recommended).",
    );
  if (passphrase !== '') {
    if (passphrase.length < 12)
      throw new InputError(
        'passphrase',
        "Invalid 'passphrase': too short. Expected at least 12 characters.",
      );
    return { mode: 'passphrase', passphrase };
  }
  const list = parseRecipients(recipients);
  if (list.length === 0)
    throw new InputError(
      'age-recipients',
      "Invalid 'age-recipients': no key found. Expected age1… public keys.",
    );
  return { mode: 'recipients', recipients: list };
}

function parseSsh(src: InputSource): SshSettings | null {
  const hostPort = src.get('ssh-host').trim();
  const others = (['ssh-user', 'ssh-private-key', 'ssh-known-hosts'] as const).filter(
    (n) => src.get(n).trim() !== '',
  );
  if (hostPort === '') {
    if (others.length > 0)
      throw new InputError(
        others[0] as string,
        `'${others[0]}' is set but 'ssh-host' is not. Expected 'ssh-host' with it.`,
      );
    return null;
  }
  const m = /^(\[[^\]]+\]|[^:\s]+)(?::(\d{1,5}))?$/.exec(hostPort);
  if (!m || (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535)))
    throw new InputError(
      'ssh-host',
      `Invalid 'ssh-host': "${hostPort}". Expected host or host:port.`,
    );
  const knownHosts = src.get('ssh-known-hosts').trim();
  if (knownHosts === '')
    throw new InputError(
      'ssh-known-hosts',
      "Missing 'ssh-known-hosts'. Expected the bastion's known_hosts line(s) (ssh-keyscan output you have checked): the host key is always verified.",
    );
  return {
    host: (m[1] as string).replace(/^\[|\]$/g, ''),
    port: m[2] ? Number(m[2]) : 22,
    user: required(src, 'ssh-user', 'the user on the bastion'),
    privateKey: required(src, 'ssh-private-key', 'an OpenSSH private key', true),
    knownHosts,
  };
}

function parseCommon(src: InputSource, env: NodeJS.ProcessEnv): CommonSettings {
  const command = expectOneOf(src, 'command', COMMANDS);
  const primary = parseDestination(src, 'primary');
  const secondary = parseDestination(src, 'secondary');
  const destinations = [primary, secondary].filter((d): d is DestinationSettings => d !== null);
  if (destinations.length === 2 && destinations[0]?.name === destinations[1]?.name)
    throw new InputError(
      'secondary-name',
      `Invalid 'secondary-name': "${destinations[1]?.name}" is also the primary's name. Expected distinct names.`,
    );
  const workspace = env.GITHUB_WORKSPACE || process.cwd();
  if (!isAbsolute(workspace))
    throw new InputError(
      'GITHUB_WORKSPACE',
      `GITHUB_WORKSPACE is not an absolute path: "${workspace}".`,
    );
  const prefix = parsePrefix(src);
  parseOutputFormat(src);
  return {
    command,
    prefix,
    destinations,
    githubToken: src.get('github-token').trim(),
    alertLabels: src
      .get('alert-labels')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
    workspace,
    pgClients: { binDir: parsePgBinDir(src), install: parseBoolean(src, 'install-client') },
    artifactRetentionDays: parseRetentionDays(src),
    signer: src.get('signing-key').trim() === '' ? null : parseSigningKey(src.get('signing-key')),
    trusted:
      src.get('trusted-signers').trim() === ''
        ? null
        : parseTrustedSigners(src.get('trusted-signers')),
  };
}

/**
 * `format`: how the CLI prints its result (`src/main.ts` runCli reads the input itself).
 * Checked with the other inputs so a bad value fails before any work.
 */
export function parseOutputFormat(src: InputSource): 'table' | 'json' {
  return expectOneOf(src, 'format', ['table', 'json'] as const);
}

function parseRetentionDays(src: InputSource): number | null {
  if (src.get('artifact-retention-days').trim() === '') return null;
  const n = parseWholeNumber(src, 'artifact-retention-days', 1);
  if (n > 90)
    throw new InputError(
      'artifact-retention-days',
      `Invalid 'artifact-retention-days': "${n}". Expected a whole number from 1 to 90.`,
    );
  return n;
}

function parsePgBinDir(src: InputSource): string {
  const dir = src.get('pg-bin-dir').trim();
  if (dir === '') return '';
  if (!isAbsolute(dir) || !existsSync(dir) || !statSync(dir).isDirectory())
    throw new InputError(
      'pg-bin-dir',
      `Invalid 'pg-bin-dir': "${dir}". Expected the absolute path of a directory holding pg_dump and psql (e.g. /usr/lib/postgresql/17/bin).`,
    );
  return dir;
}

function parseBackupSelector(src: InputSource, allowRecent: true): BackupSelector;
function parseBackupSelector(
  src: InputSource,
  allowRecent: false,
): Exclude<BackupSelector, 'recent'>;
function parseBackupSelector(src: InputSource, allowRecent: boolean): BackupSelector {
  const v = src.get('backup-id').trim();
  if (v === 'latest' || (allowRecent && v === 'recent')) return v;
  if (BACKUP_ID.test(v)) return { id: v };
  throw new InputError(
    'backup-id',
    `Invalid 'backup-id': "${v}". Expected latest${allowRecent ? ', recent' : ''} or an id like 20261126T020000Z-7f3a9c.`,
  );
}

function parseDecryption(src: InputSource, required: true): DecryptionSettings;
function parseDecryption(src: InputSource, required: boolean): DecryptionSettings | null;
function parseDecryption(src: InputSource, required: boolean): DecryptionSettings | null {
  const identity = src.get('age-identity');
  const passphrase = src.get('passphrase');
  if (identity.trim() !== '' && passphrase !== '')
    throw new InputError(
      'age-identity',
      "Both 'age-identity' and 'passphrase' are set. Expected exactly one of them.",
    );
  if (identity.trim() !== '') return { mode: 'identities', identities: parseIdentities(identity) };
  if (passphrase !== '') return { mode: 'passphrase', passphrase };
  if (!required) return null;
  throw new InputError(
    'age-identity',
    "Neither 'age-identity' nor 'passphrase' is set. Expected the age secret key (AGE-SECRET-KEY-1…) or the passphrase the backup was made with.",
  );
}

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

/** Reads and checks every input the command uses; throws an InputError at the first bad one. */
export function parseSettings(src: InputSource, env: NodeJS.ProcessEnv = process.env): Settings {
  const common = parseCommon(src, env);
  switch (common.command) {
    case 'backup':
      return parseBackup(src, common);
    case 'verify': {
      const level = expectOneOf(src, 'verify-level', VERIFY_LEVELS);
      const drillUrl = src.get('drill-database-url');
      if (level === 'restore' && drillUrl.trim() === '')
        throw new InputError(
          'drill-database-url',
          "Missing 'drill-database-url'. Expected the URL of a server for restore drills and a database on it to connect to (each drill creates and drops its own database).",
        );
      return {
        ...common,
        command: 'verify',
        backup: parseBackupSelector(src, true),
        level,
        decryption: parseDecryption(src, level !== 'checksum'),
        drill: level === 'restore' ? parseDatabaseUrl('drill-database-url', drillUrl) : null,
        ssh: level === 'restore' ? parseSsh(src) : null,
      };
    }
    case 'restore': {
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
        ownership: expectOneOf(src, 'ownership', OWNERSHIPS),
        terminateConnections: parseBoolean(src, 'terminate-connections'),
      };
    }
    case 'list':
      return { ...common, command: 'list' };
    case 'prune':
      return { ...common, command: 'prune', ...parsePruneRules(src) };
    case 'monitor': {
      const workflow = src.get('backup-workflow').trim();
      if (workflow !== '' && !/^[\w.-]+\.ya?ml$|^\d+$/.test(workflow))
        throw new InputError(
          'backup-workflow',
          `Invalid 'backup-workflow': "${workflow}". Expected a workflow file name such as dr-backup.yml (or its numeric id).`,
        );
      return {
        ...common,
        command: 'monitor',
        maxBackupAgeHours: parseWholeNumber(src, 'max-backup-age-hours', 1),
        maxVerifyAgeDays: parseWholeNumber(src, 'max-verify-age-days', 1),
        backupWorkflow: workflow === '' ? null : workflow,
        minSuccessRate: parseFraction(src, 'min-success-rate'),
      };
    }
  }
}

export function parsePruneRules(
  src: InputSource,
): Pick<
  PruneSettings,
  'rules' | 'dryRun' | 'maxBackupAgeHours' | 'maxVerifyAgeDays' | 'maxDeletions'
> {
  return {
    rules: {
      last: parseWholeNumber(src, 'keep-last'),
      daily: parseWholeNumber(src, 'keep-daily'),
      weekly: parseWholeNumber(src, 'keep-weekly'),
      monthly: parseWholeNumber(src, 'keep-monthly'),
      yearly: parseWholeNumber(src, 'keep-yearly'),
    },
    dryRun: parseBoolean(src, 'dry-run'),
    maxBackupAgeHours: parseWholeNumber(src, 'max-backup-age-hours', 1),
    maxVerifyAgeDays: parseWholeNumber(src, 'max-verify-age-days', 1),
    maxDeletions: parseWholeNumber(src, 'max-deletions', 1),
  };
}

function parseBackup(src: InputSource, common: CommonSettings): BackupSettings {
  return {
    ...common,
    command: 'backup',
    database: parseDatabaseUrl('database-url', src.get('database-url')),
    ssh: parseSsh(src),
    configPaths: parseConfigPaths(src.get('config-paths')),
    encryption: parseEncryption(src),
    compression: expectOneOf<Compression>(src, 'compression', COMPRESSIONS),
    rowCounts: expectOneOf<RowCountMethod>(src, 'row-counts', ['exact', 'estimate', 'off']),
    failOnDegraded: parseBoolean(src, 'fail-on-degraded'),
    pruneAfter: parseBoolean(src, 'prune-after-backup') ? parsePruneRules(src) : null,
  };
}
