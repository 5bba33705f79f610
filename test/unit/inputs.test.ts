import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG_PATHS } from '../../src/bundle/index.js';
import { InputError, InputErrors } from '../../src/errors.js';
import { cliHelp, commandHelp } from '../../src/inputs/help.js';
import {
  type BackupSettings,
  COMMANDS,
  parseBoolean,
  parseFraction,
  parseOutputFormat,
  parseSettings,
  parseWholeNumber,
  SECRET_INPUTS,
  type Settings,
} from '../../src/inputs/parse.js';
import {
  actionInputSource,
  cliInputSource,
  INPUT_NAMES,
  type InputName,
  type InputSource,
} from '../../src/inputs/source.js';
import { INPUT_SPECS } from '../../src/inputs/spec.generated.js';
import { inputsOf } from '../../src/inputs/usage.js';

/** Built at run time so no file holds a private-key armour line. */
const PEM_DASHES = '-'.repeat(5);

const WORKSPACE_ENV: NodeJS.ProcessEnv = { GITHUB_WORKSPACE: '/home/runner/work/platform' };
const SECRET_KEY = 'K005sEcReTkEyNeVeRsHoWn';
const DB_PASSWORD = 'db-Pa55w0rd-hidden';

let recipient = '';
beforeAll(async () => {
  recipient = await identityToRecipient(await generateX25519Identity());
});

/** The runner's view: INPUT_<NAME> with dashes kept, as actions/runner sets them. */
function actionEnv(values: Partial<Record<InputName, string>>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(values)) env[`INPUT_${k.toUpperCase()}`] = v;
  return env;
}

/** The smallest valid set of inputs for a backup. */
function backupInputs(): Partial<Record<InputName, string>> {
  return {
    'primary-endpoint': 'https://s3.us-west-004.backblazeb2.com',
    'primary-bucket': 'acme-dr',
    'primary-access-key-id': '0054a1b2c3d4e5f0000000001',
    'primary-secret-access-key': SECRET_KEY,
    'database-url': `postgresql://backup:${DB_PASSWORD}@db.internal:5432/app?sslmode=require`,
    'age-recipients': recipient,
  };
}

function source(over: Partial<Record<InputName, string>> = {}): InputSource {
  return actionInputSource(actionEnv({ ...backupInputs(), ...over }));
}

function parseBackup(over: Partial<Record<InputName, string>> = {}): BackupSettings {
  const s: Settings = parseSettings(source(over), WORKSPACE_ENV);
  if (s.command !== 'backup') throw new Error(`expected backup settings, got ${s.command}`);
  return s;
}

/** The InputError thrown (the first, when several inputs are bad). */
function thrown(fn: () => unknown): InputError {
  try {
    fn();
  } catch (e) {
    if (e instanceof InputErrors) return e.errors[0] as InputError;
    expect(e).toBeInstanceOf(InputError);
    return e as InputError;
  }
  throw new Error('expected an InputError, nothing was thrown');
}

/** Parses with `over`, expects an InputError naming `input` with exactly `message`. */
function expectError(over: Partial<Record<InputName, string>>, input: string, message: string) {
  const err = thrown(() => parseSettings(source(over), WORKSPACE_ENV));
  expect(err.input).toBe(input);
  expect(err.message).toBe(message);
  expect(err.message).not.toContain(SECRET_KEY);
  expect(err.message).not.toContain(DB_PASSWORD);
}

describe('cliInputSource', () => {
  it('reads --a b, --a=b and a bare flag as "true"', () => {
    const src = cliInputSource(
      ['backup', '--prefix', 'dr/', '--compression=gzip', '--force', '--keep-daily', '3'],
      {},
    );
    expect(src.command).toBe('backup');
    expect(src.get('command')).toBe('backup');
    expect(src.get('prefix')).toBe('dr/');
    expect(src.get('compression')).toBe('gzip');
    expect(src.get('force')).toBe('true');
    expect(src.get('keep-daily')).toBe('3');
    expect(src.help).toBe(false);
  });

  it('takes a bare flag before another flag or at the end as "true"', () => {
    const src = cliInputSource(['prune', '--dry-run', '--keep-last', '2', '--force'], {});
    expect(src.get('dry-run')).toBe('true');
    expect(src.get('keep-last')).toBe('2');
    expect(src.get('force')).toBe('true');
  });

  it('keeps "=" inside a value and an explicit empty value', () => {
    const src = cliInputSource(
      ['--database-url=postgresql://u:p@h/db?sslmode=require', '--prefix='],
      {},
    );
    expect(src.get('database-url')).toBe('postgresql://u:p@h/db?sslmode=require');
    expect(src.get('prefix')).toBe('');
  });

  it('falls back to PG_DR_<NAME>, then to the action.yml default', () => {
    const env = {
      PG_DR_DATABASE_URL: 'postgresql://u:p@h/db',
      PG_DR_KEEP_DAILY: '30',
      PG_DR_PRIMARY_SECRET_ACCESS_KEY: SECRET_KEY,
    };
    const src = cliInputSource(['backup'], env);
    expect(src.get('database-url')).toBe('postgresql://u:p@h/db');
    expect(src.get('keep-daily')).toBe('30');
    expect(src.get('primary-secret-access-key')).toBe(SECRET_KEY);
    expect(src.get('prefix')).toBe('disaster_recovery/');
    expect(src.get('compression')).toBe('zstd');
    expect(src.get('keep-weekly')).toBe('8');
    expect(src.get('config-paths')).toBe(INPUT_SPECS['config-paths'].default);
  });

  it('lets a flag beat the environment', () => {
    const src = cliInputSource(['--keep-daily', '5', '--compression=none'], {
      PG_DR_KEEP_DAILY: '30',
      PG_DR_COMPRESSION: 'gzip',
    });
    expect(src.get('keep-daily')).toBe('5');
    expect(src.get('compression')).toBe('none');
  });

  it('reads github-token from the flag, PG_DR_GITHUB_TOKEN, then GITHUB_TOKEN; never the github.token expression', () => {
    expect(cliInputSource([], {}).get('github-token')).toBe('');
    expect(cliInputSource([], { GITHUB_TOKEN: 'ghs_env' }).get('github-token')).toBe('ghs_env');
    expect(
      cliInputSource([], { GITHUB_TOKEN: 'ghs_env', PG_DR_GITHUB_TOKEN: 'ghs_pg' }).get(
        'github-token',
      ),
    ).toBe('ghs_pg');
    expect(
      cliInputSource(['--github-token', 'ghs_flag'], { GITHUB_TOKEN: 'ghs_env' }).get(
        'github-token',
      ),
    ).toBe('ghs_flag');
  });

  it('refuses an unknown flag, naming it', () => {
    const err = thrown(() => cliInputSource(['backup', '--databse-url', 'x'], {}));
    expect(err.input).toBe('databse-url');
    expect(err.message).toContain("'--databse-url'");
    const eq = thrown(() => cliInputSource(['--no-such=1'], {}));
    expect(eq.input).toBe('no-such');
  });

  it('takes the first positional argument as the command and refuses a second', () => {
    expect(cliInputSource(['restore', '--force'], {}).command).toBe('restore');
    expect(cliInputSource(['--force', 'true', 'list'], {}).command).toBe('list');
    const err = thrown(() => cliInputSource(['backup', 'now'], {}));
    expect(err.input).toBe('command');
    expect(err.message).toContain('"now"');
  });

  it('without a command, falls back to PG_DR_COMMAND, then the default', () => {
    const none = cliInputSource([], {});
    expect(none.command).toBeUndefined();
    expect(none.get('command')).toBe('backup');
    expect(cliInputSource([], { PG_DR_COMMAND: 'list' }).get('command')).toBe('list');
    expect(cliInputSource(['verify'], { PG_DR_COMMAND: 'list' }).get('command')).toBe('verify');
  });

  it('recognises --help and -h', () => {
    expect(cliInputSource(['--help'], {}).help).toBe(true);
    expect(cliInputSource(['restore', '-h'], {}).help).toBe(true);
    expect(cliInputSource(['restore'], {}).help).toBe(false);
  });
});

describe('actionInputSource', () => {
  it('reads INPUT_* variables, dashes kept, trimmed', () => {
    const src = actionInputSource({
      'INPUT_DATABASE-URL': ' postgresql://u:p@h/db \n',
      'INPUT_PRIMARY-SECRET-ACCESS-KEY': SECRET_KEY,
      INPUT_COMMAND: 'verify',
      INPUT_DATABASE_URL: 'postgresql://wrong/db',
    });
    expect(src.get('database-url')).toBe('postgresql://u:p@h/db');
    expect(src.get('primary-secret-access-key')).toBe(SECRET_KEY);
    expect(src.get('command')).toBe('verify');
  });

  it('falls back to the action.yml default when a variable is absent', () => {
    const src = actionInputSource({});
    expect(src.get('command')).toBe('backup');
    expect(src.get('prefix')).toBe('disaster_recovery/');
    expect(src.get('alert-labels')).toBe('disaster-recovery');
    expect(src.get('fail-on-degraded')).toBe('true');
    expect(src.get('min-success-rate')).toBe('0.9');
    expect(src.get('database-url')).toBe('');
  });

  it('does not leak the github.token expression default as a literal', () => {
    expect(INPUT_SPECS['github-token'].default).toContain('${{');
    expect(actionInputSource({}).get('github-token')).toBe('');
    expect(actionInputSource({ 'INPUT_GITHUB-TOKEN': 'ghs_abc' }).get('github-token')).toBe(
      'ghs_abc',
    );
  });

  it('keeps an explicitly empty value (the runner sets defaults itself)', () => {
    expect(actionInputSource({ INPUT_PREFIX: '' }).get('prefix')).toBe('');
  });

  it('does not read PG_DR_* variables', () => {
    expect(actionInputSource({ PG_DR_PREFIX: 'x/' }).get('prefix')).toBe('disaster_recovery/');
  });
});

describe('parseSettings: backup', () => {
  it('applies the documented defaults', () => {
    const s = parseBackup();
    expect(s.command).toBe('backup');
    expect(s.prefix).toBe('disaster_recovery/');
    expect(s.compression).toBe('zstd');
    expect(s.rowCounts).toBe('exact');
    expect(s.failOnDegraded).toBe(true);
    expect(parseOutputFormat(source())).toBe('table');
    expect(s).not.toHaveProperty('format');
    expect(s.alertLabels).toEqual(['disaster-recovery']);
    expect(s.githubToken).toBe('');
    expect(s.workspace).toBe('/home/runner/work/platform');
    expect(s.ssh).toBeNull();
    expect(s.configPaths).toEqual([...DEFAULT_CONFIG_PATHS]);
    expect(s.encryption).toEqual({ mode: 'recipients', recipients: [recipient] });
    expect(s.database).toMatchObject({
      host: 'db.internal',
      port: 5432,
      user: 'backup',
      password: DB_PASSWORD,
      database: 'app',
      params: { sslmode: 'require' },
    });
    expect(s.destinations).toEqual([
      {
        name: 'primary',
        role: 'primary',
        endpoint: 'https://s3.us-west-004.backblazeb2.com',
        region: 'us-west-004',
        bucket: 'acme-dr',
        accessKeyId: '0054a1b2c3d4e5f0000000001',
        secretAccessKey: SECRET_KEY,
        forcePathStyle: true,
        idleTimeoutMs: 120_000,
      },
    ]);
  });

  it('takes the values given', () => {
    const over: Partial<Record<InputName, string>> = {
      prefix: 'backups/prod/',
      compression: 'gzip',
      'row-counts': 'estimate',
      'fail-on-degraded': 'FALSE',
      'force-path-style': 'false',
      'storage-timeout-seconds': '45',
      'alert-labels': ' dr, ops ,,oncall ',
      'primary-name': 'b2',
      'primary-region': 'eu-central-003',
      'config-paths': 'compose.yml\n# a comment\n./deploy/**\n',
      format: 'json',
    };
    const s = parseBackup(over);
    expect(s.prefix).toBe('backups/prod/');
    expect(s.compression).toBe('gzip');
    expect(s.rowCounts).toBe('estimate');
    expect(s.failOnDegraded).toBe(false);
    expect(s.alertLabels).toEqual(['dr', 'ops', 'oncall']);
    expect(parseOutputFormat(source(over))).toBe('json');
    expect(s.configPaths).toEqual(['compose.yml', 'deploy/**']);
    expect(s.destinations[0]).toMatchObject({
      name: 'b2',
      region: 'eu-central-003',
      forcePathStyle: false,
      idleTimeoutMs: 45_000,
    });
  });

  it('takes a passphrase instead of recipients', () => {
    const s = parseBackup({ 'age-recipients': '', passphrase: 'correct horse battery staple' });
    expect(s.encryption).toEqual({
      mode: 'passphrase',
      passphrase: 'correct horse battery staple',
    });
  });

  it('has no secondary when no secondary-* input is set (a name alone does not count)', () => {
    expect(parseBackup().destinations).toHaveLength(1);
    expect(parseBackup({ 'secondary-name': 'r2' }).destinations).toHaveLength(1);
  });

  it('takes a complete secondary, region auto for a non-B2 endpoint', () => {
    const s = parseBackup({
      'primary-name': 'b2',
      'secondary-name': 'r2',
      'secondary-endpoint': 'https://0123456789abcdef.r2.cloudflarestorage.com/',
      'secondary-bucket': 'acme-dr-r2',
      'secondary-access-key-id': 'r2key',
      'secondary-secret-access-key': 'r2secret',
    });
    expect(s.destinations.map((d) => [d.name, d.role, d.region, d.endpoint])).toEqual([
      ['b2', 'primary', 'us-west-004', 'https://s3.us-west-004.backblazeb2.com'],
      ['r2', 'secondary', 'auto', 'https://0123456789abcdef.r2.cloudflarestorage.com'],
    ]);
  });

  it('refuses a partially set secondary, naming the missing input', () => {
    // Every missing one at once, in the order they are read.
    expect(() =>
      parseSettings(
        source({ 'secondary-endpoint': 'https://x.r2.cloudflarestorage.com' }),
        WORKSPACE_ENV,
      ),
    ).toThrow(
      /^3 inputs are invalid:\n- Missing 'secondary-bucket'.*\n- Missing 'secondary-access-key-id'.*\n- Missing 'secondary-secret-access-key'/,
    );
    expectError(
      { 'secondary-endpoint': 'https://x.r2.cloudflarestorage.com' },
      'secondary-bucket',
      "Missing 'secondary-bucket'. Expected a bucket name.",
    );
    expectError(
      { 'secondary-secret-access-key': 'only-this' },
      'secondary-endpoint',
      "Missing 'secondary-endpoint'. Expected the S3 endpoint URL.",
    );
    expectError(
      {
        'secondary-endpoint': 'https://x.r2.cloudflarestorage.com',
        'secondary-bucket': 'b2b',
        'secondary-access-key-id': 'k',
      },
      'secondary-secret-access-key',
      "Missing 'secondary-secret-access-key'. Expected the secret access key.",
    );
  });

  it('refuses two destinations with the same name', () => {
    expectError(
      {
        'primary-name': 'dr',
        'secondary-name': 'dr',
        'secondary-endpoint': 'https://x.r2.cloudflarestorage.com',
        'secondary-bucket': 'acme',
        'secondary-access-key-id': 'k',
        'secondary-secret-access-key': 's',
      },
      'secondary-name',
      `Invalid 'secondary-name': "dr" is also the primary's name. Expected distinct names.`,
    );
  });

  it('refuses bad enum values, naming the input and the expected values', () => {
    expectError(
      { compression: 'lz4' },
      'compression',
      `Invalid 'compression': "lz4". Expected one of: zstd, gzip, none.`,
    );
    expectError(
      { 'row-counts': 'all' },
      'row-counts',
      `Invalid 'row-counts': "all". Expected one of: exact, estimate, off.`,
    );
    expectError(
      { command: 'backpu' },
      'command',
      `Invalid 'command': "backpu". Expected one of: ${COMMANDS.join(', ')}.`,
    );
    expectError(
      { format: 'yaml' },
      'format',
      `Invalid 'format': "yaml". Expected one of: table, json.`,
    );
  });

  it('refuses bad booleans', () => {
    expectError(
      { 'fail-on-degraded': 'yes' },
      'fail-on-degraded',
      `Invalid 'fail-on-degraded': "yes". Expected true or false.`,
    );
    expectError(
      { 'force-path-style': '1' },
      'force-path-style',
      `Invalid 'force-path-style': "1". Expected true or false.`,
    );
  });

  it('refuses a bad prefix', () => {
    for (const prefix of ['/abs/', 'a/../b/', '..', 'a\\b/', 'a\tb/']) {
      expectError(
        { prefix },
        'prefix',
        `Invalid 'prefix': "${prefix}". Expected a key prefix such as disaster_recovery/ (no leading '/', no '..').`,
      );
    }
  });

  it('refuses a bad bucket or destination name', () => {
    expectError(
      { 'primary-bucket': 'my bucket' },
      'primary-bucket',
      `Invalid 'primary-bucket': "my bucket". Expected a bucket name (letters, digits, '.', '-', '_').`,
    );
    expectError(
      { 'primary-bucket': '-dash-first' },
      'primary-bucket',
      `Invalid 'primary-bucket': "-dash-first". Expected a bucket name (letters, digits, '.', '-', '_').`,
    );
    expectError(
      { 'primary-name': 'b2 main' },
      'primary-name',
      `Invalid 'primary-name': "b2 main". Expected letters, digits, '.', '-', '_'.`,
    );
    expectError(
      { 'primary-bucket': '' },
      'primary-bucket',
      "Missing 'primary-bucket'. Expected a bucket name.",
    );
  });

  it('refuses a bad endpoint', () => {
    const expected = 'Expected an http(s) URL such as https://s3.us-west-004.backblazeb2.com.';
    expectError(
      { 'primary-endpoint': 'ftp://s3.example.com' },
      'primary-endpoint',
      `Invalid 'primary-endpoint': "ftp://s3.example.com". ${expected}`,
    );
    expectError(
      { 'primary-endpoint': 's3.us-west-004.backblazeb2.com' },
      'primary-endpoint',
      `Invalid 'primary-endpoint': "s3.us-west-004.backblazeb2.com". ${expected}`,
    );
    expectError(
      { 'primary-endpoint': `https://key:${SECRET_KEY}@s3.example.com` },
      'primary-endpoint',
      "Invalid 'primary-endpoint': credentials in the URL. Use the access key inputs.",
    );
    expectError(
      { 'primary-endpoint': '' },
      'primary-endpoint',
      "Missing 'primary-endpoint'. Expected the S3 endpoint URL.",
    );
  });

  it('refuses control characters in a non-secret value, never checks or echoes a secret', () => {
    expectError(
      { 'primary-access-key-id': 'abc\u0007def' },
      'primary-access-key-id',
      "Invalid 'primary-access-key-id': contains control characters. Expected the access key id.",
    );
    expectError(
      { 'primary-secret-access-key': '   ' },
      'primary-secret-access-key',
      "Missing 'primary-secret-access-key'. Expected the secret access key.",
    );
  });

  it('refuses a bad database-url without its password', () => {
    const err = thrown(() =>
      parseSettings(source({ 'database-url': `mysql://u:${DB_PASSWORD}@h/db` }), WORKSPACE_ENV),
    );
    expect(err.input).toBe('database-url');
    expect(err.message).not.toContain(DB_PASSWORD);
    expectError(
      { 'database-url': '' },
      'database-url',
      "Missing 'database-url'. Expected a URL like postgresql://user:password@host:5432/database (the value is not shown: it may hold a password).",
    );
  });

  it('requires exactly one of age-recipients and passphrase', () => {
    expectError(
      { passphrase: 'correct horse battery staple' },
      'age-recipients',
      "Both 'age-recipients' and 'passphrase' are set. Expected exactly one of them (age-recipients is recommended).",
    );
    expectError(
      { 'age-recipients': '' },
      'age-recipients',
      "Neither 'age-recipients' nor 'passphrase' is set. Expected exactly one of them (age-recipients is recommended).",
    );
    expectError(
      { 'age-recipients': '# only a comment' },
      'age-recipients',
      "Invalid 'age-recipients': no key found. Expected age1… public keys.",
    );
  });

  it('refuses a short passphrase without echoing it', () => {
    expectError(
      { 'age-recipients': '', passphrase: 'hunter2' },
      'passphrase',
      "Invalid 'passphrase': too short. Expected at least 12 characters.",
    );
  });

  it('parses the SSH tunnel settings', () => {
    const ssh = {
      'ssh-user': 'tunnel',
      'ssh-private-key': `${PEM_DASHES}BEGIN OPENSSH PRIVATE KEY${PEM_DASHES}\nabc\n${PEM_DASHES}END OPENSSH PRIVATE KEY${PEM_DASHES}`,
      'ssh-known-hosts': 'bastion.example.com ssh-ed25519 AAAAC3Nza',
    };
    expect(parseBackup({ ...ssh, 'ssh-host': 'bastion.example.com' }).ssh).toMatchObject({
      host: 'bastion.example.com',
      port: 22,
      user: 'tunnel',
    });
    expect(parseBackup({ ...ssh, 'ssh-host': '[2001:db8::2]:2222' }).ssh).toMatchObject({
      host: '2001:db8::2',
      port: 2222,
    });
    expectError(
      { ...ssh, 'ssh-host': 'bastion:70000' },
      'ssh-host',
      `Invalid 'ssh-host': "bastion:70000". Expected host or host:port.`,
    );
    expectError(
      { 'ssh-user': 'tunnel' },
      'ssh-user',
      "'ssh-user' is set but 'ssh-host' is not. Expected 'ssh-host' with it.",
    );
    const noPin = thrown(() =>
      parseSettings(
        source({ ...ssh, 'ssh-host': 'bastion', 'ssh-known-hosts': '' }),
        WORKSPACE_ENV,
      ),
    );
    expect(noPin.input).toBe('ssh-known-hosts');
    expect(noPin.message).toMatch(/^Missing 'ssh-known-hosts'\./);
  });

  it('refuses a relative GITHUB_WORKSPACE', () => {
    const err = thrown(() => parseSettings(source(), { GITHUB_WORKSPACE: 'work/platform' }));
    expect(err.input).toBe('GITHUB_WORKSPACE');
  });

  it('needs no database or keys for other commands', () => {
    const src = actionInputSource(
      actionEnv({
        command: 'list',
        'primary-endpoint': 'https://s3.us-west-004.backblazeb2.com',
        'primary-bucket': 'acme-dr',
        'primary-access-key-id': 'k',
        'primary-secret-access-key': 's',
        format: 'json',
      }),
    );
    const s = parseSettings(src, WORKSPACE_ENV);
    expect(s.command).toBe('list');
    expect(parseOutputFormat(src)).toBe('json');
    expect('database' in s).toBe(false);
  });
});

describe('number and boolean inputs', () => {
  const src = (values: Partial<Record<InputName, string>>) => actionInputSource(actionEnv(values));

  it('parses whole numbers and falls back to the default', () => {
    expect(parseWholeNumber(src({ 'keep-daily': ' 30 ' }), 'keep-daily')).toBe(30);
    expect(parseWholeNumber(src({ 'keep-daily': '0' }), 'keep-daily')).toBe(0);
    expect(parseWholeNumber(src({}), 'keep-daily')).toBe(14);
    expect(parseWholeNumber(src({}), 'max-backup-age-hours', 1)).toBe(26);
  });

  it('refuses anything but a whole number ≥ min', () => {
    for (const v of ['abc', '-1', '1.5', '', '1e3', '0x10', '99999999999999999999']) {
      const err = thrown(() => parseWholeNumber(src({ 'keep-daily': v }), 'keep-daily'));
      expect(err.input).toBe('keep-daily');
      expect(err.message).toBe(`Invalid 'keep-daily': "${v}". Expected a whole number ≥ 0.`);
    }
    const min = thrown(() =>
      parseWholeNumber(src({ 'max-backup-age-hours': '0' }), 'max-backup-age-hours', 1),
    );
    expect(min.message).toBe(`Invalid 'max-backup-age-hours': "0". Expected a whole number ≥ 1.`);
  });

  it('names the range when a bounded whole number is too large', () => {
    expect(
      parseWholeNumber(src({ 'storage-timeout-seconds': '3600' }), 'storage-timeout-seconds', 1, {
        max: 3600,
        unit: 'seconds',
      }),
    ).toBe(3600);
    expectError(
      { 'storage-timeout-seconds': '03601' },
      'storage-timeout-seconds',
      `Invalid 'storage-timeout-seconds': "3601". Expected a whole number of seconds from 1 to 3600.`,
    );
    expectError(
      { 'storage-timeout-seconds': '0' },
      'storage-timeout-seconds',
      `Invalid 'storage-timeout-seconds': "0". Expected a whole number ≥ 1.`,
    );
    expect(parseBackup({ 'artifact-retention-days': '90' }).artifactRetentionDays).toBe(90);
    expect(parseBackup().artifactRetentionDays).toBeNull();
    expectError(
      { 'artifact-retention-days': '91' },
      'artifact-retention-days',
      `Invalid 'artifact-retention-days': "91". Expected a whole number from 1 to 90.`,
    );
    expectError(
      { 'artifact-retention-days': '0' },
      'artifact-retention-days',
      `Invalid 'artifact-retention-days': "0". Expected a whole number ≥ 1.`,
    );
  });

  it('parses fractions from 0 to 1', () => {
    expect(parseFraction(src({}), 'min-success-rate')).toBe(0.9);
    expect(parseFraction(src({ 'min-success-rate': '0' }), 'min-success-rate')).toBe(0);
    expect(parseFraction(src({ 'min-success-rate': '1' }), 'min-success-rate')).toBe(1);
    for (const v of ['1.5', '-0.1', 'abc', '', 'NaN', 'Infinity']) {
      const err = thrown(() => parseFraction(src({ 'min-success-rate': v }), 'min-success-rate'));
      expect(err.message).toBe(
        `Invalid 'min-success-rate': "${v}". Expected a number from 0 to 1.`,
      );
    }
  });

  it('parses booleans case-insensitively', () => {
    expect(parseBoolean(src({ force: 'True' }), 'force')).toBe(true);
    expect(parseBoolean(src({ force: 'false' }), 'force')).toBe(false);
    expect(parseBoolean(src({}), 'dry-run')).toBe(false);
    const err = thrown(() => parseBoolean(src({ 'dry-run': 'maybe' }), 'dry-run'));
    expect(err.message).toBe(`Invalid 'dry-run': "maybe". Expected true or false.`);
  });
});

describe('input names', () => {
  it('cliHelp lists the commands, one line each, and no input', () => {
    const help = cliHelp();
    for (const c of COMMANDS) expect(help).toMatch(new RegExp(`^ {2}${c} +\\S`, 'm'));
    expect(help).not.toContain('--database-url');
    expect(help).not.toContain('${{');
  });

  it("commandHelp lists exactly the command's inputs, required first, with flag, variable and default", () => {
    for (const c of COMMANDS) {
      const help = commandHelp(c);
      const flags = [...help.matchAll(/^ {2}--([a-z0-9-]+) {2}PG_DR_/gm)].map((m) => m[1]);
      const uses = inputsOf(c).filter((u) => u.name !== 'command');
      expect(new Set(flags)).toEqual(new Set(uses.map((u) => u.name)));
      expect(flags.length).toBe(uses.length);
      const required = uses.filter((u) => u.required).map((u) => u.name);
      expect(flags.slice(0, required.length)).toEqual(required);
      expect(help).not.toContain('${{');
    }
    expect(commandHelp('list')).toContain(
      '  --prefix  PG_DR_PREFIX  (default: disaster_recovery/)',
    );
    expect(commandHelp('restore')).not.toContain('--keep-daily');
    // The first sentence of each description; --verbose gives all of it.
    expect(commandHelp('restore')).not.toContain('the file is removed afterwards');
    expect(commandHelp('restore', true)).toContain('the file is removed afterwards');
    expect(commandHelp('restore', true).split('\n').length).toBeGreaterThan(
      commandHelp('restore').split('\n').length,
    );
  });

  it('every secret input exists, and every input described as secret is one', () => {
    for (const name of SECRET_INPUTS) expect(Object.keys(INPUT_SPECS)).toContain(name);
    const describedSecret = INPUT_NAMES.filter((n) =>
      INPUT_SPECS[n].description.trim().endsWith('Secret.'),
    );
    expect(describedSecret.length).toBeGreaterThan(0);
    for (const name of describedSecret) expect(SECRET_INPUTS as readonly string[]).toContain(name);
  });
});
