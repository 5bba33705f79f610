/**
 * Bad input, table-driven, across every command: each bad value must fail the run with a
 * message that names the input and says what was expected, and nothing may be written —
 * both buckets are listed in full (key, size, ETag) before and after, and two watched
 * databases (the source `app`, and `target`, an empty restore target) are compared:
 * every relation in a user schema and each table's row count.
 *
 * A backup exists in both buckets first, so the commands that read backups (verify,
 * restore) get as far as their checks allow.
 */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { generateX25519Identity } from 'age-encryption';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ageKeyPair, createSeededDatabase, tempDir } from '../harness/fixtures.js';
import { leasePostgres } from '../harness/lease.js';
import { requireBuilt } from '../harness/node.js';
import { type PgCluster, quoteIdent } from '../harness/postgres.js';
import { destinationInputs, runPgDr } from '../harness/run.js';
import { PRIMARY_BUCKET, type S3Pair, SECONDARY_BUCKET, startS3Pair } from '../harness/s3.js';

/** Built at run time so no file holds a private-key armour line. */
const PEM_DASHES = '-'.repeat(5);

let pg: PgCluster;
let s3: S3Pair;
let work: string;
let workspace: string;
let identity: string;
let recipient: string;
/** A key that matches no recipient of the backup. */
let strangerIdentity: string;
/** The complete backup in both buckets. */
let backupId: string;
let targetUrl: string;
let aFile: string;

beforeAll(async () => {
  [pg, s3] = await Promise.all([leasePostgres({ name: 'bad-input' }), startS3Pair()]);
  await createSeededDatabase(pg, 'app');
  targetUrl = await pg.createDatabase('target');
  await pg.query('postgres', "CREATE ROLE not_super LOGIN CREATEDB PASSWORD 'np-pw-1'");
  work = await tempDir('bad-input');
  workspace = join(work, 'ws');
  await execa('mkdir', ['-p', workspace]);
  await writeFile(join(workspace, 'docker-compose.yml'), 'services: {}\n');
  aFile = join(work, 'a-file');
  await writeFile(aFile, 'not a folder\n');
  ({ identity, recipient } = await ageKeyPair());
  strangerIdentity = await generateX25519Identity();
  const r = await runPgDr(
    { ...BASE.backup(), 'database-url': pg.url('app') },
    { GITHUB_WORKSPACE: workspace },
  );
  expect(r.failed, r.log).toBeUndefined();
  backupId = r.outputs['backup-id'] as string;
});

afterAll(async () => {
  await Promise.all([pg?.stop(), s3?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
  console.log(
    `[bad-input] ${CASES.length + KNOWN_BUGS.length} bad inputs tested (${KNOWN_BUGS.length} known bugs), + ${CLI_CASES.length} through the CLI`,
  );
});

const destinations = () => destinationInputs(s3.primary, s3.secondary);

/** Valid inputs of each command, which a case then spoils. */
const BASE = {
  backup: () => ({
    command: 'backup',
    'database-url': pg.url('app'),
    'age-recipients': recipient,
    ...destinations(),
  }),
  verify: () => ({ command: 'verify', 'backup-id': backupId, ...destinations() }),
  restore: () => ({
    command: 'restore',
    'backup-id': backupId,
    'database-url': targetUrl,
    'age-identity': identity,
    ...destinations(),
  }),
  list: () => ({ command: 'list', ...destinations() }),
  prune: () => ({ command: 'prune', ...destinations() }),
  monitor: () => ({ command: 'monitor', ...destinations() }),
  check: () => ({ command: 'check', ...destinations() }),
  wal: () => ({
    command: 'wal',
    'database-url': pg.url('app'),
    'age-recipients': recipient,
    ...destinations(),
  }),
  'wal-get': () => ({
    command: 'wal-get',
    'wal-file': '000000010000000000000003',
    'wal-path': join(work, 'RECOVERYXLOG'),
    'age-identity': identity,
    ...destinations(),
  }),
} satisfies Record<string, () => Record<string, string>>;

interface BadInput {
  readonly command: keyof typeof BASE;
  /** What is bad, for the test name. */
  readonly what: string;
  /** Inputs changed (null: removed). Functions are evaluated when the case runs. */
  readonly set: () => Record<string, string | null>;
  /** The input the message must name (quoted, as 'name'). */
  readonly input: string;
  /** How the message names it, when not as 'name'. */
  readonly names?: RegExp;
  /** What the message must say was expected (or what was wrong). */
  readonly expected: RegExp;
}

const CASES: readonly BadInput[] = [
  // Common: destinations, prefix, format, switches.
  {
    command: 'backup',
    what: 'an endpoint that is not a URL',
    set: () => ({ 'primary-endpoint': 'not a url' }),
    input: 'primary-endpoint',
    expected: /Expected an http\(s\) URL/,
  },
  {
    command: 'list',
    what: 'an endpoint with another scheme',
    set: () => ({ 'secondary-endpoint': 'ftp://127.0.0.1:21' }),
    input: 'secondary-endpoint',
    expected: /Expected an http\(s\) URL/,
  },
  {
    command: 'prune',
    what: 'an endpoint with credentials in it',
    set: () => ({ 'primary-endpoint': 'http://key:secret@127.0.0.1:9000' }),
    input: 'primary-endpoint',
    expected: /credentials in the URL\. Use the access key inputs/,
  },
  {
    command: 'backup',
    what: 'an empty bucket name',
    set: () => ({ 'primary-bucket': '' }),
    input: 'primary-bucket',
    expected: /Missing 'primary-bucket'\. Expected a bucket name/,
  },
  {
    command: 'verify',
    what: 'a bucket name with spaces',
    set: () => ({ 'secondary-bucket': 'my bucket!' }),
    input: 'secondary-bucket',
    expected: /Expected a bucket name/,
  },
  {
    command: 'backup',
    what: 'a bucket that does not exist (primary)',
    set: () => ({ 'primary-bucket': 'no-such-bucket' }),
    input: 'primary-bucket',
    expected: /bucket "no-such-bucket" does not exist.*Expected an existing bucket/,
  },
  {
    command: 'backup',
    what: 'a bucket that does not exist (secondary)',
    set: () => ({ 'secondary-bucket': 'gone-bucket' }),
    input: 'secondary-bucket',
    expected: /bucket "gone-bucket" does not exist.*Expected an existing bucket/,
  },
  {
    command: 'backup',
    what: 'a secondary without its access key id',
    set: () => ({ 'secondary-access-key-id': null }),
    input: 'secondary-access-key-id',
    expected: /Missing 'secondary-access-key-id'\. Expected the access key id/,
  },
  {
    command: 'list',
    what: 'two destinations of the same name',
    set: () => ({ 'secondary-name': 'b2' }),
    input: 'secondary-name',
    expected: /Expected distinct names/,
  },
  {
    command: 'backup',
    what: 'an absolute prefix',
    set: () => ({ prefix: '/backups/' }),
    input: 'prefix',
    expected: /Expected a key prefix such as disaster_recovery\//,
  },
  {
    command: 'prune',
    what: "a prefix with '..'",
    set: () => ({ prefix: 'dr/../other/' }),
    input: 'prefix',
    expected: /no '\.\.'/,
  },
  {
    command: 'backup',
    what: 'an unknown command',
    set: () => ({ command: 'bakup' }),
    input: 'command',
    expected: /Expected one of: backup, verify, monitor, restore, list, prune/,
  },
  {
    command: 'list',
    what: 'an unknown format',
    set: () => ({ format: 'yaml' }),
    input: 'format',
    expected: /Expected one of: table, json/,
  },
  {
    command: 'backup',
    what: 'force-path-style not a boolean',
    set: () => ({ 'force-path-style': 'yes' }),
    input: 'force-path-style',
    expected: /Expected true or false/,
  },
  {
    command: 'backup',
    what: 'storage-timeout-seconds 0',
    set: () => ({ 'storage-timeout-seconds': '0' }),
    input: 'storage-timeout-seconds',
    expected: /Expected a whole number ≥ 1/,
  },
  {
    command: 'verify',
    what: 'storage-timeout-seconds not a number',
    set: () => ({ 'storage-timeout-seconds': '2m' }),
    input: 'storage-timeout-seconds',
    expected: /"2m"/,
  },
  {
    command: 'backup',
    what: 'storage-timeout-seconds over an hour',
    set: () => ({ 'storage-timeout-seconds': '86400' }),
    input: 'storage-timeout-seconds',
    expected: /Expected a whole number of seconds from 1 to 3600/,
  },
  {
    command: 'list',
    what: 'artifact-retention-days 0',
    set: () => ({ 'artifact-retention-days': '0' }),
    input: 'artifact-retention-days',
    expected: /Expected a whole number ≥ 1/,
  },
  {
    command: 'backup',
    what: 'artifact-retention-days over 90',
    set: () => ({ 'artifact-retention-days': '365' }),
    input: 'artifact-retention-days',
    expected: /Expected a whole number from 1 to 90/,
  },
  {
    command: 'backup',
    what: 'a relative pg-bin-dir',
    set: () => ({ 'pg-bin-dir': 'usr/lib/postgresql/15/bin' }),
    input: 'pg-bin-dir',
    expected: /Expected the absolute path of a directory/,
  },
  // backup
  {
    command: 'backup',
    what: 'a database URL that is not a URL',
    set: () => ({ 'database-url': 'host=127.0.0.1 dbname=app' }),
    input: 'database-url',
    expected: /Expected a URL like postgresql:\/\//,
  },
  {
    command: 'backup',
    what: 'a database URL of another scheme',
    set: () => ({ 'database-url': 'mysql://root:pw@127.0.0.1:3306/app' }),
    input: 'database-url',
    expected: /Expected a URL like postgresql:\/\//,
  },
  {
    command: 'backup',
    what: 'a database URL without a database',
    set: () => ({ 'database-url': `postgresql://postgres@127.0.0.1:${pg.port}` }),
    input: 'database-url',
    expected: /no database name/,
  },
  {
    command: 'backup',
    what: 'a recipient that is not an age key',
    set: () => ({ 'age-recipients': 'age1notakeyatall' }),
    input: 'age-recipients',
    expected: /Expected age X25519 public keys/,
  },
  {
    command: 'backup',
    what: 'a secret key given as recipient',
    set: () => ({ 'age-recipients': identity }),
    input: 'age-recipients',
    expected: /looks like a secret key: not shown/,
  },
  {
    command: 'backup',
    what: 'both recipients and a passphrase',
    set: () => ({ passphrase: 'a perfectly long passphrase' }),
    input: 'age-recipients',
    expected: /Expected exactly one of them/,
  },
  {
    command: 'backup',
    what: 'neither recipients nor a passphrase',
    set: () => ({ 'age-recipients': null }),
    input: 'age-recipients',
    expected: /Expected exactly one of them/,
  },
  {
    command: 'backup',
    what: 'a passphrase too short',
    set: () => ({ 'age-recipients': null, passphrase: 'hunter2' }),
    input: 'passphrase',
    expected: /Expected at least 12 characters/,
  },
  {
    command: 'backup',
    what: 'an unknown compression',
    set: () => ({ compression: 'lz4' }),
    input: 'compression',
    expected: /Expected one of: zstd, gzip, none/,
  },
  {
    command: 'backup',
    what: 'an unknown mode',
    set: () => ({ mode: 'incremental' }),
    input: 'mode',
    expected: /Invalid 'mode': "incremental"\. Expected one of: logical, physical\./,
  },
  {
    command: 'wal',
    what: 'a wal-slot that is no slot name',
    set: () => ({ 'wal-slot': 'My-Slot!' }),
    input: 'wal-slot',
    expected:
      /Invalid 'wal-slot': "My-Slot!"\. Expected a replication slot name: lower-case letters, digits and underscores, at most 63/,
  },
  {
    command: 'wal',
    what: 'create-slot not a boolean',
    set: () => ({ 'create-slot': 'maybe' }),
    input: 'create-slot',
    expected: /Invalid 'create-slot': "maybe"\. Expected true or false\./,
  },
  {
    command: 'wal',
    what: 'no database-url',
    set: () => ({ 'database-url': null }),
    input: 'database-url',
    expected: /Missing 'database-url'\. Expected a URL like postgresql:/,
  },
  {
    command: 'backup',
    what: 'a wal-slot too long for PostgreSQL',
    set: () => ({ mode: 'physical', 'wal-slot': 'x'.repeat(64) }),
    input: 'wal-slot',
    expected: /Invalid 'wal-slot': "x{64}"\. Expected a replication slot name/,
  },
  {
    command: 'backup',
    what: 'create-slot not a boolean',
    set: () => ({ mode: 'physical', 'wal-slot': 'pg_dr', 'create-slot': 'yes please' }),
    input: 'create-slot',
    expected: /Invalid 'create-slot': "yes please"\. Expected true or false\./,
  },
  {
    command: 'wal-get',
    what: 'a wal-file that is no WAL file name',
    set: () => ({ 'wal-file': '../../etc/passwd' }),
    input: 'wal-file',
    expected:
      /Invalid 'wal-file': "\.\.\/\.\.\/etc\/passwd"\. Expected a WAL segment name \(24 hex digits/,
  },
  {
    command: 'wal-get',
    what: 'no wal-path',
    set: () => ({ 'wal-path': null }),
    input: 'wal-path',
    expected: /Missing 'wal-path'\. Expected the path to write the WAL file to/,
  },
  {
    command: 'wal-get',
    what: 'no key to decrypt with',
    set: () => ({ 'age-identity': null }),
    input: 'age-identity',
    expected: /Neither 'age-identity' nor 'passphrase' is set/,
  },
  {
    command: 'backup',
    what: 'an unknown row-counts method',
    set: () => ({ 'row-counts': 'approximate' }),
    input: 'row-counts',
    expected: /Expected one of: exact, estimate, off/,
  },
  {
    command: 'backup',
    what: 'fail-on-degraded not a boolean',
    set: () => ({ 'fail-on-degraded': 'sometimes' }),
    input: 'fail-on-degraded',
    expected: /Expected true or false/,
  },
  {
    command: 'backup',
    what: 'a glob with an unclosed bracket',
    set: () => ({ 'config-paths': 'deploy/**\nconfig/[abc.yml' }),
    input: 'config-paths',
    expected: /Expected a valid glob, one per line; this one has an unclosed '\['/,
  },
  {
    command: 'backup',
    what: 'a glob reaching outside the workspace',
    set: () => ({ 'config-paths': '../secrets/**' }),
    input: 'config-paths',
    expected: /Expected globs relative to the workspace/,
  },
  {
    command: 'backup',
    what: 'an absolute glob',
    set: () => ({ 'config-paths': '/etc/**' }),
    input: 'config-paths',
    expected: /Expected globs relative to the workspace/,
  },
  {
    command: 'backup',
    what: 'ssh options without known hosts',
    set: () => ({
      'ssh-host': '127.0.0.1:2222',
      'ssh-user': 'bastion',
      'ssh-private-key': `${PEM_DASHES}BEGIN OPENSSH PRIVATE KEY${PEM_DASHES}\nx\n${PEM_DASHES}END OPENSSH PRIVATE KEY${PEM_DASHES}`,
    }),
    input: 'ssh-known-hosts',
    expected: /Missing 'ssh-known-hosts'\. Expected the bastion's known_hosts line/,
  },
  {
    command: 'backup',
    what: 'ssh-user without ssh-host',
    set: () => ({ 'ssh-user': 'bastion' }),
    input: 'ssh-user',
    expected: /Expected 'ssh-host' with it/,
  },
  {
    command: 'backup',
    what: 'an ssh port out of range',
    set: () => ({ 'ssh-host': 'bastion.example:99999' }),
    input: 'ssh-host',
    expected: /Expected host or host:port/,
  },
  {
    command: 'backup',
    what: 'a negative keep-last with prune-after-backup',
    set: () => ({ 'prune-after-backup': 'true', 'keep-last': '-1' }),
    input: 'keep-last',
    expected: /"-1"\. Expected a whole number ≥ 0/,
  },
  // verify
  {
    command: 'verify',
    what: 'an unknown verify level',
    set: () => ({ 'verify-level': 'deep' }),
    input: 'verify-level',
    expected: /Expected one of: checksum, decrypt, restore/,
  },
  {
    command: 'verify',
    what: 'a backup id of the wrong shape',
    set: () => ({ 'backup-id': 'yesterday' }),
    input: 'backup-id',
    expected: /Expected latest, recent or an id like 20261126T020000Z-7f3a9c/,
  },
  {
    command: 'verify',
    what: 'a backup id that does not exist',
    set: () => ({ 'backup-id': '20200101T000000Z-abcdef' }),
    input: 'backup-id',
    expected: /Backup 20200101T000000Z-abcdef does not exist at any destination/,
  },
  {
    command: 'verify',
    what: 'level restore without a drill database',
    set: () => ({ 'verify-level': 'restore', 'age-identity': identity }),
    input: 'drill-database-url',
    expected: /Expected the URL of a server for restore drills/,
  },
  {
    command: 'verify',
    what: 'level decrypt without a key',
    set: () => ({ 'verify-level': 'decrypt' }),
    input: 'age-identity',
    expected: /Expected the age secret key \(AGE-SECRET-KEY-1…\) or the passphrase/,
  },
  {
    command: 'verify',
    what: 'an identity that is not an age key',
    set: () => ({ 'verify-level': 'decrypt', 'age-identity': 'AGE-SECRET-KEY-1NOTAKEY' }),
    input: 'age-identity',
    expected: /Expected lines like AGE-SECRET-KEY-1/,
  },
  {
    command: 'verify',
    what: 'a drill server database that does not exist',
    set: () => ({
      'verify-level': 'restore',
      'age-identity': identity,
      'drill-database-url': pg.url('no_such_database'),
    }),
    input: 'drill-database-url',
    expected: /Cannot connect to .*\/no_such_database.*database "no_such_database" does not exist/,
  },
  // restore
  {
    command: 'restore',
    what: 'an identity that matches no recipient',
    set: () => ({ 'age-identity': strangerIdentity }),
    input: 'age-identity',
    expected: /match(es)? none of the backup's recipients.*Expected the secret key of one of them/,
  },
  {
    command: 'restore',
    what: 'a restore-from that names no destination',
    set: () => ({ 'restore-from': 'gcs' }),
    input: 'restore-from',
    expected: /Expected any or a destination name: b2, r2/,
  },
  {
    command: 'restore',
    what: 'restore-jobs 0',
    set: () => ({ 'restore-jobs': '0' }),
    input: 'restore-jobs',
    expected: /"0"\. Expected a whole number ≥ 1/,
  },
  {
    command: 'restore',
    what: 'start without data-dir',
    set: () => ({ start: 'true' }),
    input: 'start',
    expected: /true without 'data-dir'/,
  },
  {
    command: 'restore',
    what: 'port with start false',
    set: () => ({ 'data-dir': '/tmp/pg-dr-never', port: '5433' }),
    input: 'port',
    expected: /"5433" with start: false/,
  },
  {
    command: 'restore',
    what: 'port out of range',
    set: () => ({ 'data-dir': '/tmp/pg-dr-never', start: 'true', port: '70000' }),
    input: 'port',
    expected: /"70000"\. Expected a whole number from 1 to 65535/,
  },
  {
    command: 'restore',
    what: 'start not a boolean',
    set: () => ({ 'data-dir': '/tmp/pg-dr-never', start: 'yes please' }),
    input: 'start',
    expected: /yes please/,
  },
  {
    command: 'restore',
    what: 'restore-jobs above 64',
    set: () => ({ 'restore-jobs': '65' }),
    input: 'restore-jobs',
    expected: /"65"\. Expected a whole number from 1 to 64/,
  },
  {
    command: 'restore',
    what: 'restore-jobs not a number',
    set: () => ({ 'restore-jobs': 'four' }),
    input: 'restore-jobs',
    expected: /"four"\. Expected a whole number ≥ 1/,
  },
  {
    command: 'restore',
    what: 'a restore-temp-dir that does not exist (restore-jobs 2)',
    set: () => ({ 'restore-jobs': '2', 'restore-temp-dir': join(work, 'no-such-folder') }),
    input: 'restore-temp-dir',
    expected: /no-such-folder.*ENOENT.*Expected an existing folder/,
  },
  {
    command: 'restore',
    what: "backup-id 'recent'",
    set: () => ({ 'backup-id': 'recent' }),
    input: 'backup-id',
    expected: /Expected latest or an id like/,
  },
  {
    command: 'restore',
    what: 'a backup id that does not exist',
    set: () => ({ 'backup-id': '20200101T000000Z-000000' }),
    input: 'backup-id',
    expected: /does not exist at any destination/,
  },
  {
    command: 'restore',
    what: 'a target database that already has tables, without force',
    set: () => ({ 'database-url': pg.url('app') }),
    input: 'force',
    names: /set force: true/,
    expected: /already has \d+ objects.*Restore into a new or empty database, or set force: true/,
  },
  {
    command: 'restore',
    what: 'a target login that is not a superuser, without ownership: restorer',
    set: () => ({
      'database-url': `postgresql://not_super:np-pw-1@${pg.host}:${pg.port}/fresh_target`,
    }),
    input: 'database-url',
    expected: /connects as "not_super", which is not one.*or set ownership: restorer/,
  },
  {
    command: 'restore',
    what: 'an unknown ownership',
    set: () => ({ ownership: 'owner' }),
    input: 'ownership',
    expected: /Expected one of: source, restorer/,
  },
  {
    command: 'restore',
    what: 'a config-dir that is a file',
    set: () => ({ 'config-dir': aFile }),
    input: 'config-dir',
    expected: /is a file\. Expected a folder/,
  },
  {
    command: 'restore',
    what: 'no target database',
    set: () => ({ 'database-url': null }),
    input: 'database-url',
    expected: /Missing 'database-url'\. Expected a URL like postgresql:\/\//,
  },
  {
    command: 'restore',
    what: 'force not a boolean',
    set: () => ({ force: 'please' }),
    input: 'force',
    expected: /Expected true or false/,
  },
  {
    command: 'backup',
    what: 'max-row-drop-percent above 100',
    set: () => ({ 'max-row-drop-percent': '150' }),
    input: 'max-row-drop-percent',
    expected: /Expected a whole number from 0 to 100\./,
  },
  {
    command: 'backup',
    what: 'max-row-drop-percent with a percent sign',
    set: () => ({ 'max-row-drop-percent': '50%' }),
    input: 'max-row-drop-percent',
    expected: /Expected a whole number ≥ 0/,
  },
  {
    command: 'restore',
    what: 'a source-database with a control character',
    set: () => ({ 'source-database': 'app\u0007' }),
    input: 'source-database',
    expected: /Expected a database name as the backups record it/,
  },
  {
    command: 'list',
    what: 'a source-database longer than PostgreSQL allows',
    set: () => ({ 'source-database': 'd'.repeat(64) }),
    input: 'source-database',
    expected: /at most 63 bytes/,
  },
  // monitor
  {
    command: 'monitor',
    what: 'max-backup-age-hours 0',
    set: () => ({ 'max-backup-age-hours': '0' }),
    input: 'max-backup-age-hours',
    expected: /Expected a whole number ≥ 1/,
  },
  {
    command: 'monitor',
    what: 'a negative max-verify-age-days',
    set: () => ({ 'max-verify-age-days': '-3' }),
    input: 'max-verify-age-days',
    expected: /Expected a whole number ≥ 1/,
  },
  {
    command: 'monitor',
    what: 'min-success-rate above 1',
    set: () => ({ 'min-success-rate': '1.5' }),
    input: 'min-success-rate',
    expected: /Expected a number from 0 to 1/,
  },
  {
    command: 'monitor',
    what: 'min-success-rate as a percentage',
    set: () => ({ 'min-success-rate': '90%' }),
    input: 'min-success-rate',
    expected: /Expected a number from 0 to 1/,
  },
  {
    command: 'monitor',
    what: 'a backup-workflow that is a path',
    set: () => ({ 'backup-workflow': '../../.github/workflows/dr.yml' }),
    input: 'backup-workflow',
    expected: /Expected a workflow file name such as dr-backup\.yml/,
  },
  {
    command: 'monitor',
    what: 'a keep-daily (which tells missed nights from thinned ones) that is not a number',
    set: () => ({ 'keep-daily': '2 weeks' }),
    input: 'keep-daily',
    expected: /Invalid 'keep-daily': "2 weeks"\. Expected a whole number ≥ 0\./,
  },
  // check: every input is optional, but a value given is checked as the command using it does.
  {
    command: 'check',
    what: 'a backup-workflow that is a path',
    set: () => ({ 'backup-workflow': '../dr.yml' }),
    input: 'backup-workflow',
    expected: /Expected a workflow file name such as dr-backup\.yml/,
  },
  {
    command: 'check',
    what: 'a heartbeat-url that is not a URL',
    set: () => ({ 'heartbeat-url': 'hc-ping.com/abc' }),
    input: 'heartbeat-url',
    expected: /its value is secret and not shown\): expected an http:\/\/ or https:\/\/ URL/,
  },
  {
    command: 'check',
    what: 'both age-recipients and passphrase',
    set: () => ({ 'age-recipients': recipient, passphrase: 'long enough passphrase' }),
    input: 'age-recipients',
    expected: /Expected exactly one of them/,
  },
  {
    command: 'check',
    what: 'an age-identity that is not a key',
    set: () => ({ 'age-identity': 'AGE-SECRET-KEY-1NOPE' }),
    input: 'age-identity',
    expected: /a line is not an age secret key \(value not shown\)/,
  },
  {
    command: 'check',
    what: 'a database-url that is not a URL',
    set: () => ({ 'database-url': 'localhost:5432' }),
    input: 'database-url',
    expected: /Expected/,
  },
  {
    command: 'check',
    what: 'a mode that is neither logical nor physical',
    set: () => ({ mode: 'pitr' }),
    input: 'mode',
    expected: /Invalid 'mode': "pitr"\. Expected one of: logical, physical\./,
  },
  {
    command: 'check',
    what: 'ssh-user without ssh-host',
    set: () => ({ 'ssh-user': 'me' }),
    input: 'ssh-user',
    expected: /'ssh-user' is set but 'ssh-host' is not/,
  },
  // prune
  {
    command: 'prune',
    what: 'keep-daily not a number',
    set: () => ({ 'keep-daily': 'abc' }),
    input: 'keep-daily',
    expected: /"abc"\. Expected a whole number ≥ 0\./,
  },
  {
    command: 'prune',
    what: 'a negative keep-weekly',
    set: () => ({ 'keep-weekly': '-2' }),
    input: 'keep-weekly',
    expected: /Expected a whole number ≥ 0/,
  },
  {
    command: 'prune',
    what: 'a fractional keep-monthly',
    set: () => ({ 'keep-monthly': '1.5' }),
    input: 'keep-monthly',
    expected: /Expected a whole number ≥ 0/,
  },
  {
    command: 'prune',
    what: 'an empty keep-yearly',
    set: () => ({ 'keep-yearly': '' }),
    input: 'keep-yearly',
    expected: /Expected a whole number ≥ 0/,
  },
  {
    command: 'prune',
    what: 'dry-run not a boolean',
    set: () => ({ 'dry-run': 'perhaps' }),
    input: 'dry-run',
    expected: /Expected true or false/,
  },
];

/**
 * Bad inputs pg-dr does not yet report as such. src/postgres/url.ts checks the names of
 * URL parameters but not their values, and a connection refused by the server for a wrong
 * database name comes back as psql's message alone; src/inputs/parse.ts does not check
 * `*-region`, so a malformed region makes that destination "unreachable" and the backup
 * goes on, degraded, to the other one.
 */
const KNOWN_BUGS: readonly BadInput[] = [
  {
    command: 'backup',
    what: 'an unknown sslmode in the database URL',
    set: () => ({ 'database-url': `${pg.url('app')}?sslmode=bogus` }),
    input: 'database-url',
    expected: /Expected.*(disable|require|verify-full)/,
  },
  {
    command: 'backup',
    what: 'a database URL naming a database that does not exist',
    set: () => ({ 'database-url': pg.url('no_such_db') }),
    input: 'database-url',
    expected: /"no_such_db" does not exist/,
  },
  {
    command: 'backup',
    what: 'a region that is not a region name',
    set: () => ({ 'primary-region': 'us east 1!' }),
    input: 'primary-region',
    expected: /Expected a region/,
  },
];

/** Every object in a bucket: key, size and ETag. */
async function bucketState(server: S3Pair['primary'], bucket: string): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const page = await server.client().send(
      new ListObjectsV2Command({
        Bucket: bucket,
        ...(token === undefined ? {} : { ContinuationToken: token }),
      }),
    );
    for (const o of page.Contents ?? []) out.push(`${o.Key} ${o.Size} ${o.ETag}`);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return out.sort();
}

/** Every relation in a user schema (name and kind) and every table's row count. */
async function databaseState(database: string): Promise<Record<string, string>> {
  const rels = await pg.query<{ schema: string; name: string; kind: string }>(
    database,
    `SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY 1, 2`,
  );
  const out: Record<string, string> = {};
  for (const r of rels) {
    const name = `${r.schema}.${r.name}`;
    if (r.kind === 'r') {
      const [c] = await pg.query<{ n: string }>(
        database,
        `SELECT count(*)::text AS n FROM ${quoteIdent(r.schema)}.${quoteIdent(r.name)}`,
      );
      out[name] = `table, ${c?.n} rows`;
    } else out[name] = r.kind;
  }
  return out;
}

async function worldState() {
  return {
    primary: await bucketState(s3.primary, PRIMARY_BUCKET),
    secondary: await bucketState(s3.secondary, SECONDARY_BUCKET),
    app: await databaseState('app'),
    target: await databaseState('target'),
  };
}

function inputsOf(c: BadInput): Record<string, string> {
  const inputs: Record<string, string> = { ...BASE[c.command]() };
  for (const [k, v] of Object.entries(c.set())) {
    if (v === null) delete inputs[k];
    else inputs[k] = v;
  }
  return inputs;
}

describe('bad input: a clear message, a failed run, nothing written', () => {
  it('the table holds at least 25 bad inputs, across every command', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(25);
    expect(new Set(CASES.map((c) => c.command))).toEqual(new Set(Object.keys(BASE)));
  });

  it('the world is watched: the buckets hold the backup, the source database its tables', async () => {
    const w = await worldState();
    expect(w.primary.some((k) => k.startsWith(`disaster_recovery/${backupId}/manifest.json`))).toBe(
      true,
    );
    expect(w.secondary.length).toBe(w.primary.length);
    expect(Object.keys(w.app).length).toBeGreaterThan(6);
    expect(w.target).toEqual({});
  });

  it.each(CASES)('$command: $what', expectRefused);

  // BUGS: these fail today; each message should name the input (see the report).
  it.each(KNOWN_BUGS)('$command: $what', expectRefused);
});

async function expectRefused(c: BadInput): Promise<void> {
  const before = await worldState();
  const r = await runPgDr(inputsOf(c), { GITHUB_WORKSPACE: workspace });
  expect(r.failed, `expected a failure; log:\n${r.log}`).toBeDefined();
  if (c.names) expect(r.failed).toMatch(c.names);
  else expect(r.failed).toContain(`'${c.input}'`);
  expect(r.failed).toMatch(c.expected);
  expect(r.outputs.status).toBe('failed');
  expect(await worldState()).toEqual(before);
}

/** Through the built CLI: the exit status, and the message on stderr and in the JSON result. */
const CLI_CASES: readonly {
  name: string;
  argv: () => string[];
  exit: number;
  expected: RegExp;
  env?: () => Record<string, string>;
}[] = [
  {
    name: 'wal-get whose settings file is gone (PG_DR_ENV_FILE): stops recovery, never "no such file"',
    argv: () => ['wal-get', '000000010000000000000003', join(work, 'x')],
    env: () => ({ PG_DR_ENV_FILE: join(work, 'gone.env') }),
    exit: 126,
    expected: /Cannot read --env-file ".*gone\.env": ENOENT/,
  },
  {
    name: 'backup --compression lz4',
    argv: () => [
      'backup',
      '--compression',
      'lz4',
      '--database-url',
      pg.url('app'),
      '--age-recipients',
      recipient,
    ],
    exit: 2,
    expected: /Invalid --compression: "lz4"\. Expected one of: zstd, gzip, none\./,
  },
  {
    name: 'wal-get with a bad file name (restore_command): an exit status that stops recovery',
    argv: () => ['wal-get', 'RECOVERYHISTORY', join(work, 'x'), '--age-identity', identity],
    exit: 126,
    expected: /Invalid --wal-file: "RECOVERYHISTORY"\. Expected a WAL segment name/,
  },
  {
    name: 'prune --keep-daily abc',
    argv: () => ['prune', '--keep-daily', 'abc'],
    exit: 2,
    expected: /Invalid --keep-daily: "abc"\. Expected a whole number ≥ 0\./,
  },
  {
    name: 'prune --keep-dialy 3 (a misspelt flag)',
    argv: () => ['prune', '--keep-dialy', '3'],
    exit: 2,
    expected: /Unknown flag '--keep-dialy'\. Did you mean '--keep-daily'\?/,
  },
  {
    name: 'lst (a misspelt command)',
    argv: () => ['lst'],
    exit: 2,
    expected: /Unknown command 'lst'\. Did you mean 'list'\?/,
  },
  {
    name: 'backup with three bad inputs',
    argv: () => [
      'backup',
      '--database-url',
      pg.url('app'),
      '--age-recipients',
      recipient,
      '--compression=lz4',
      '--row-counts=some',
      '--max-row-drop-percent=101',
    ],
    exit: 2,
    expected:
      /3 inputs are invalid:\n- Invalid --compression: "lz4".*\n- Invalid --row-counts: "some".*\n- Invalid --max-row-drop-percent: "101"/,
  },
];

describe('bad input through the CLI', () => {
  it.each(CLI_CASES)('pg-dr $name: exit $exit', async (c) => {
    const before = await worldState();
    const dest = destinations();
    const r = await execa(
      process.execPath,
      [
        requireBuilt('dist/cli/index.js'),
        ...c.argv(),
        ...Object.entries(dest).flatMap(([k, v]) => [`--${k}`, v]),
        '--format',
        'json',
      ],
      {
        reject: false,
        env: { PATH: process.env.PATH ?? '', HOME: work, ...c.env?.() },
        extendEnv: false,
      },
    );
    expect(r.exitCode, r.stderr).toBe(c.exit);
    expect(r.stderr).toMatch(c.expected);
    // A bad input value still gives the one JSON document; an unknown command or flag, nothing.
    if (r.stdout !== '')
      expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, status: 'failed' });
    expect(await worldState()).toEqual(before);
  });
});
