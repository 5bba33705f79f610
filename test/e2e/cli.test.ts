// Runs the built CLI (dist/cli/index.js, as committed) as a person or a script would:
// flags and PG_DR_* variables in, the result on stdout, logs on stderr.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { COMMANDS } from '../../src/inputs/common.js';
import { parseManifest } from '../../src/manifest/schema.js';
import { createSeededDatabase, tempDir } from '../harness/fixtures.js';
import { leasePostgres } from '../harness/lease.js';
import { REPO_ROOT, requireBuilt } from '../harness/node.js';
import type { PgCluster } from '../harness/postgres.js';
import { PRIMARY_BUCKET, type S3Pair, SECONDARY_BUCKET, startS3Pair } from '../harness/s3.js';

let pg: PgCluster;
let s3: S3Pair;
let work: string;
let workspace: string;
let recipient: string;
let identity: string;
let cliJs: string;

beforeAll(async () => {
  cliJs = requireBuilt('dist/cli/index.js');
  [pg, s3] = await Promise.all([leasePostgres({ name: 'e2e-cli' }), startS3Pair()]);
  await createSeededDatabase(pg, 'app');
  work = await tempDir('e2e-cli');
  workspace = join(work, 'platform');
  await mkdir(workspace);
  await writeFile(join(workspace, 'docker-compose.yml'), 'services:\n  db:\n    image: postgres\n');
  identity = await generateX25519Identity();
  recipient = await identityToRecipient(identity);
});

afterAll(async () => {
  await Promise.all([pg?.stop(), s3?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

/** `node dist/cli/index.js …args` in the platform folder, with only `env` (plus PATH, HOME). */
async function cli(args: readonly string[], env: Record<string, string> = {}) {
  const r = await execa(process.execPath, [cliJs, ...args], {
    cwd: workspace,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? work, ...env },
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    stripFinalNewline: false,
    timeout: 110_000,
  });
  return {
    exitCode: r.exitCode,
    stdout: r.stdout,
    stderr: r.stderr,
    context: `exit ${r.exitCode}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`,
  };
}

/** The PG_DR_* variables of both destinations, and the prefix. */
function destinationEnv(prefix: string): Record<string, string> {
  return {
    PG_DR_PREFIX: prefix,
    PG_DR_PRIMARY_NAME: 'b2',
    PG_DR_PRIMARY_ENDPOINT: s3.primary.endpoint,
    PG_DR_PRIMARY_BUCKET: PRIMARY_BUCKET,
    PG_DR_PRIMARY_REGION: 'us-east-1',
    PG_DR_PRIMARY_ACCESS_KEY_ID: s3.primary.accessKeyId,
    PG_DR_PRIMARY_SECRET_ACCESS_KEY: s3.primary.secretAccessKey,
    PG_DR_SECONDARY_NAME: 'r2',
    PG_DR_SECONDARY_ENDPOINT: s3.secondary.endpoint,
    PG_DR_SECONDARY_BUCKET: SECONDARY_BUCKET,
    PG_DR_SECONDARY_ACCESS_KEY_ID: s3.secondary.accessKeyId,
    PG_DR_SECONDARY_SECRET_ACCESS_KEY: s3.secondary.secretAccessKey,
  };
}

async function bucketKeys(): Promise<string[][]> {
  return [await s3.primary.listKeys(PRIMARY_BUCKET), await s3.secondary.listKeys(SECONDARY_BUCKET)];
}

function occurrences(text: string, part: string): number {
  return text.split(part).length - 1;
}

function passwordForms(): string[] {
  return [pg.password, encodeURIComponent(pg.password)];
}

/** Lines that are GitHub workflow commands (`::add-mask::`, `::group::`, …): none belong in a terminal. */
function workflowCommands(text: string): string[] {
  return text.split('\n').filter((l) => /^::[a-z-]+/.test(l));
}

describe('pg-dr CLI (dist/cli/index.js)', () => {
  it('check prints the ✓/✗ table on stdout: exit 0 for a correct set-up, 1 with the fixes for a broken one', async () => {
    const env = {
      PG_DR_DATABASE_URL: pg.url('app'),
      PG_DR_AGE_RECIPIENTS: recipient,
      ...destinationEnv('check/'),
    };
    const good = await cli(['check'], env);
    expect(good.exitCode, good.context).toBe(0);
    expect(good.stdout).toMatch(/^pg-dr check: ✓ no check failed/);
    expect(good.stdout).toMatch(/^✓ +b2: write, read and delete a 5,243,904-byte probe/m);
    // In the CLI's words: the flag, not the action's input.
    expect(good.stdout).toMatch(/^⚪ +heartbeat \(--heartbeat-url\) +--heartbeat-url is not set/m);
    expect(workflowCommands(good.stdout + good.stderr)).toEqual([]);

    const wrong = new URL(pg.url('app'));
    wrong.password = 'not-the-password';
    const bad = await cli(['check', '--secondary-bucket', 'no-such-bucket'], {
      ...env,
      PG_DR_DATABASE_URL: wrong.toString(),
    });
    expect(bad.exitCode, bad.context).toBe(1);
    expect(bad.stdout).toMatch(/^pg-dr check: ✗ 2 of 16 checks failed/);
    expect(bad.stdout).toMatch(/^✗ +r2: bucket "no-such-bucket"/m);
    expect(bad.stdout).toMatch(/^✗ r2: bucket "no-such-bucket".* — fix: Create the bucket/m);
    expect(bad.stdout).toMatch(
      /^✗ database: connection .* — fix: The server refused the user or password/m,
    );
    for (const s of [...passwordForms(), s3.primary.secretAccessKey])
      expect(bad.stdout + bad.stderr).not.toContain(s);
  });

  it("--help lists the commands, one line each; every flag of action.yml is in some command's help", async () => {
    const r = await cli(['--help']);
    expect(r.exitCode, r.context).toBe(0);
    expect(r.stdout).toContain('Usage: pg-dr');
    for (const c of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^ {2}${c} +\\S`, 'm'));
    expect(r.stdout).not.toContain('--database-url');
    const yml = parseYaml(await readFile(join(REPO_ROOT, 'action.yml'), 'utf8')) as {
      inputs: Record<string, unknown>;
    };
    const helps = await Promise.all(COMMANDS.map((c) => cli([c, '--help'])));
    const all = helps.map((h) => h.stdout).join('\n');
    for (const flag of Object.keys(yml.inputs).filter((n) => n !== 'command'))
      expect(all).toMatch(new RegExp(`^ {2}--${flag} {2}PG_DR_`, 'm'));
  });

  it('--version and version print the version of package.json', async () => {
    const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    for (const args of [['--version'], ['version'], ['-V']]) {
      const r = await cli(args);
      expect(r.exitCode, r.context).toBe(0);
      expect(r.stdout).toBe(`pg-dr ${pkg.version}\n`);
    }
  });

  it("restore --help lists only restore's inputs, required first, each with flag, variable and default", async () => {
    const r = await cli(['restore', '--help']);
    expect(r.exitCode, r.context).toBe(0);
    const flags = [...r.stdout.matchAll(/^ {2}--([a-z0-9-]+) {2}(PG_DR_[A-Z0-9_]+)/gm)];
    expect(flags.map((m) => m[1]).slice(0, 6)).toEqual([
      'primary-endpoint',
      'primary-bucket',
      'primary-access-key-id',
      'primary-secret-access-key',
      'database-url',
      'age-identity',
    ]);
    for (const m of flags)
      expect(m[2]).toBe(`PG_DR_${(m[1] as string).replace(/-/g, '_').toUpperCase()}`);
    expect(r.stdout.indexOf('Required:')).toBeLessThan(r.stdout.indexOf('Options of restore:'));
    expect(r.stdout).toMatch(/^ {2}--backup-id {2}PG_DR_BACKUP_ID {2}\(default: latest\)$/m);
    expect(r.stdout).toMatch(/^ {2}--force {2}PG_DR_FORCE {2}\(default: false\)$/m);
    // Not restore's: backup's, prune's and monitor's own inputs.
    for (const other of [
      '--keep-daily',
      '--compression',
      '--max-backup-age-hours',
      '--verify-level',
    ])
      expect(r.stdout).not.toContain(other);
    expect(flags.length).toBeLessThan(50);
  });

  it('a misspelt command or flag: exit 2, the nearest one suggested, nothing on stdout', async () => {
    const cmd = await cli(['lst']);
    expect(cmd.exitCode, cmd.context).toBe(2);
    expect(cmd.stderr).toContain("Unknown command 'lst'. Did you mean 'list'?");
    expect(cmd.stdout).toBe('');
    const flag = await cli(['list', '--databse-url', 'x']);
    expect(flag.exitCode, flag.context).toBe(2);
    expect(flag.stderr).toContain("Unknown flag '--databse-url'. Did you mean '--database-url'?");
    expect(flag.stdout).toBe('');
    // Far from every command: no guess, the list instead.
    const far = await cli(['explode']);
    expect(far.exitCode, far.context).toBe(2);
    expect(far.stderr).not.toContain('Did you mean');
    expect(far.stderr).toContain('backup, verify, monitor, restore, list, prune');
  });

  it('backup from flags and PG_DR_* variables: one JSON document on stdout, logs on stderr, no secret', async () => {
    const prefix = 'e2e-cli/';
    const r = await cli(
      [
        'backup',
        '--primary-name',
        'b2',
        `--primary-endpoint=${s3.primary.endpoint}`,
        '--primary-bucket',
        PRIMARY_BUCKET,
        '--primary-region=us-east-1',
        '--compression',
        'gzip',
        '--format',
        'json',
      ],
      {
        PG_DR_DATABASE_URL: pg.url('app'),
        PG_DR_AGE_RECIPIENTS: recipient,
        PG_DR_PREFIX: prefix,
        PG_DR_PRIMARY_ACCESS_KEY_ID: s3.primary.accessKeyId,
        PG_DR_PRIMARY_SECRET_ACCESS_KEY: s3.primary.secretAccessKey,
        PG_DR_SECONDARY_NAME: 'r2',
        PG_DR_SECONDARY_ENDPOINT: s3.secondary.endpoint,
        PG_DR_SECONDARY_BUCKET: SECONDARY_BUCKET,
        PG_DR_SECONDARY_ACCESS_KEY_ID: s3.secondary.accessKeyId,
        PG_DR_SECONDARY_SECRET_ACCESS_KEY: s3.secondary.secretAccessKey,
        // A flag wins over its variable: this one is overridden by --compression gzip.
        PG_DR_COMPRESSION: 'lz4',
      },
    );
    expect(r.exitCode, r.context).toBe(0);

    // Exactly one JSON document: the whole of stdout parses.
    const doc = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(doc.ok).toBe(true);
    expect(doc.status).toBe('ok');
    const id = doc['backup-id'] as string;
    expect(id).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{6}$/);
    const manifest = parseManifest(JSON.stringify(doc.manifest));
    expect(manifest.id).toBe(id);
    expect(manifest.database.compression).toBe('gzip');
    expect(manifest.config.files).toEqual(['docker-compose.yml']);
    expect(manifest.destinations.map((d) => [d.name, d.bucket, d.ok])).toEqual([
      ['b2', PRIMARY_BUCKET, true],
      ['r2', SECONDARY_BUCKET, true],
    ]);
    // Stored where PG_DR_PREFIX and the PG_DR_SECONDARY_* variables said.
    for (const [server, bucket] of [
      [s3.primary, PRIMARY_BUCKET],
      [s3.secondary, SECONDARY_BUCKET],
    ] as const) {
      expect(await server.listKeys(bucket, prefix)).toContain(`${prefix}${id}/manifest.json`);
      const stored = await server.getObject(bucket, `${prefix}${id}/manifest.json`);
      expect(parseManifest(stored.toString())).toEqual(manifest);
    }

    // Logs and progress went to stderr.
    expect(r.stderr).toContain(id);
    expect(r.stderr).toMatch(/Dump, compress, encrypt, upload/);
    expect(r.stdout).not.toContain('Dump, compress, encrypt, upload');

    // The CLI redacts by itself: no workflow commands, no password in any form.
    expect(workflowCommands(r.stdout)).toEqual([]);
    expect(workflowCommands(r.stderr)).toEqual([]);
    for (const secret of passwordForms()) {
      expect(r.stdout).not.toContain(secret);
      expect(r.stderr).not.toContain(secret);
    }
  });

  it('a bad input: exit 2, one JSON document with ok false naming the input, nothing stored', async () => {
    const before = [
      await s3.primary.listKeys(PRIMARY_BUCKET),
      await s3.secondary.listKeys(SECONDARY_BUCKET),
    ];
    const r = await cli(
      [
        'backup',
        '--format=json',
        '--compression=lz4',
        `--primary-endpoint=${s3.primary.endpoint}`,
        `--primary-bucket=${PRIMARY_BUCKET}`,
        `--primary-access-key-id=${s3.primary.accessKeyId}`,
        `--primary-secret-access-key=${s3.primary.secretAccessKey}`,
        `--age-recipients=${recipient}`,
        '--prefix=e2e-cli-fail/',
      ],
      { PG_DR_DATABASE_URL: pg.url('app') },
    );
    expect(r.exitCode, r.context).toBe(2);
    const doc = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(doc.ok).toBe(false);
    expect(doc.status).toBe('failed');
    // In the CLI's words: the flag, not the action input.
    expect(doc.error).toMatch(/--compression: "lz4"/);
    expect(r.stderr).toMatch(/--compression/);
    expect([
      await s3.primary.listKeys(PRIMARY_BUCKET),
      await s3.secondary.listKeys(SECONDARY_BUCKET),
    ]).toEqual(before);
    for (const secret of passwordForms()) {
      expect(r.stdout).not.toContain(secret);
      expect(r.stderr).not.toContain(secret);
    }
  });

  it('an unknown flag: exit 2 and a message naming it on stderr', async () => {
    const r = await cli(['backup', '--no-such-flag', 'x']);
    expect(r.exitCode, r.context).toBe(2);
    expect(r.stderr).toContain('--no-such-flag');
    expect(r.stdout).toBe('');
  });
  it('three bad inputs: all reported in one run, each once, exit 2, nothing stored', async () => {
    const before = await bucketKeys();
    const r = await cli(
      [
        'backup',
        '--compression',
        'lz4',
        '--keep-daily',
        'abc',
        '--row-counts',
        'some',
        '--prune-after-backup',
      ],
      {
        ...destinationEnv('e2e-cli-three/'),
        PG_DR_DATABASE_URL: pg.url('app'),
        PG_DR_AGE_RECIPIENTS: recipient,
      },
    );
    expect(r.exitCode, r.context).toBe(2);
    const messages = [
      'Invalid --compression: "lz4". Expected one of: zstd, gzip, none.',
      'Invalid --row-counts: "some". Expected one of: exact, estimate, off.',
      'Invalid --keep-daily: "abc". Expected a whole number ≥ 0.',
    ];
    expect(r.stderr).toContain('error: 3 inputs are invalid:');
    // One error print: each message once, in stdout and stderr together.
    for (const m of messages) expect(occurrences(r.stdout + r.stderr, m), r.context).toBe(1);
    expect(r.stdout).toBe('');
    expect(await bucketKeys()).toEqual(before);
  });

  it('a failed run: exit 1 and its error printed once', async () => {
    const r = await cli(['restore', '--backup-id', '20200101T000000Z-abcdef'], {
      ...destinationEnv('e2e-cli/'),
      PG_DR_DATABASE_URL: pg.url('restored'),
      PG_DR_AGE_IDENTITY: identity,
    });
    expect(r.exitCode, r.context).toBe(1);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('error: '));
    expect(errors, r.context).toHaveLength(1);
    const message = (errors[0] as string).slice('error: '.length);
    expect(message).toContain('20200101T000000Z-abcdef');
    expect(occurrences(r.stdout + r.stderr, message), r.context).toBe(1);
  });

  it('messages speak the CLI: --force, not "force: true"', async () => {
    // `app` has tables: a restore into it is refused before anything is written.
    const r = await cli(['restore'], {
      ...destinationEnv('e2e-cli/'),
      PG_DR_DATABASE_URL: pg.url('app'),
      PG_DR_AGE_IDENTITY: identity,
    });
    expect(r.exitCode, r.context).toBe(1);
    expect(r.stderr).toContain('pass --force');
    expect(r.stderr).not.toContain('force: true');
    expect(r.stderr).not.toContain("'force'");
  });

  it('--env-file: PG_DR_ lines with comments and quotes; the environment wins; values never shown', async () => {
    const file = join(work, 'pg-dr.env');
    const secret = s3.primary.secretAccessKey;
    await writeFile(
      file,
      [
        '# pg-dr settings for the restore laptop',
        '',
        'export PG_DR_PRIMARY_NAME=b2',
        `PG_DR_PRIMARY_ENDPOINT="${s3.primary.endpoint}"`,
        `PG_DR_PRIMARY_BUCKET='${PRIMARY_BUCKET}'`,
        'PG_DR_PRIMARY_REGION=us-east-1   # B2 would say us-west-004',
        `PG_DR_PRIMARY_ACCESS_KEY_ID=${s3.primary.accessKeyId}`,
        `PG_DR_PRIMARY_SECRET_ACCESS_KEY="${secret}"`,
        'PG_DR_PREFIX=e2e-cli/',
        '',
      ].join('\n'),
    );
    const r = await cli(['list', '--env-file', file, '--format', 'json', '--force']);
    expect(r.exitCode, r.context).toBe(0);
    // A flag the command does not read is named, not silently ignored.
    expect(r.stderr).toContain('warning: --force is not used by list: it is ignored');
    expect(JSON.stringify(JSON.parse(r.stdout))).toMatch(/\d{8}T\d{6}Z-[0-9a-f]{6}/);
    expect(r.stdout + r.stderr).not.toContain(secret);
    // A variable in the environment wins over the file: an empty prefix here lists nothing.
    const over = await cli(['list', '--env-file', file, '--format', 'json'], {
      PG_DR_PREFIX: 'e2e-cli-nothing-here/',
    });
    expect(over.exitCode, over.context).toBe(0);
    expect(JSON.stringify(JSON.parse(over.stdout))).not.toMatch(/\d{8}T\d{6}Z-[0-9a-f]{6}/);

    // A misspelt variable: exit 2, the line and the nearest name, never the value.
    const bad = join(work, 'bad.env');
    await writeFile(bad, `PG_DR_PREFIX=x/\nPG_DR_DATABSE_URL=postgresql://u:sekrit-pw-77@h/db\n`);
    const b = await cli(['list', '--env-file', bad]);
    expect(b.exitCode, b.context).toBe(2);
    expect(b.stderr).toContain(`--env-file ${bad}, line 2: unknown variable PG_DR_DATABSE_URL.`);
    expect(b.stderr).toContain("Did you mean 'PG_DR_DATABASE_URL'?");
    expect(b.stdout + b.stderr).not.toContain('sekrit-pw-77');
    // A file that does not exist: Node.js itself looks for an `--env-file` anywhere in its
    // arguments and stops first ("node: <file>: not found", exit 9; nodejs/node#54232).
    const missing = await cli(['list', '--env-file', join(work, 'no-such.env')]);
    expect(missing.exitCode, missing.context).not.toBe(0);
    expect(missing.stderr).toContain('no-such.env');
  });

  it('quiet by default: the audit-artifact line and unsent alerts only with --verbose', async () => {
    const env = destinationEnv('e2e-cli/');
    const quiet = await cli(['monitor'], env);
    const verbose = await cli(['monitor', '--verbose'], env);
    for (const r of [quiet, verbose]) expect(r.stdout, r.context).toContain('pg-dr monitor');
    expect(quiet.stderr, quiet.context).not.toContain('Audit artifact skipped');
    expect(quiet.stdout, quiet.context).not.toContain('not sent: no github-token');
    expect(verbose.stderr, verbose.context).toContain(
      'Audit artifact skipped: not running in GitHub Actions.',
    );
    expect(verbose.stdout, verbose.context).toContain('not sent: no github-token');
    expect(quiet.exitCode).toBe(verbose.exitCode);
  });

  it('colour on a terminal, none with NO_COLOR, none into a pipe', async () => {
    const ESC = '\u001b[';
    const tty = (env: Record<string, string>) =>
      execa('script', ['-qfec', `'${process.execPath}' '${cliJs}' lst`, '/dev/null'], {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work, TERM: 'xterm', ...env },
        extendEnv: false,
        reject: false,
        timeout: 30_000,
      });
    const coloured = await tty({});
    expect(coloured.stdout).toContain("Did you mean 'list'?");
    expect(coloured.stdout).toContain(`${ESC}1;31merror:`);
    const plain = await tty({ NO_COLOR: '1' });
    expect(plain.stdout).toContain("Did you mean 'list'?");
    expect(plain.stdout).not.toContain(ESC);
    const piped = await cli(['lst'], { TERM: 'xterm' });
    expect(piped.stderr).toContain("Did you mean 'list'?");
    expect(piped.stderr).not.toContain(ESC);
  });
});
