// Runs the built CLI (dist/cli/index.js, as committed) as a person or a script would:
// flags and PG_DR_* variables in, the result on stdout, logs on stderr.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
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
let cliJs: string;

beforeAll(async () => {
  cliJs = requireBuilt('dist/cli/index.js');
  [pg, s3] = await Promise.all([leasePostgres({ name: 'e2e-cli' }), startS3Pair()]);
  await createSeededDatabase(pg, 'app');
  work = await tempDir('e2e-cli');
  workspace = join(work, 'platform');
  await mkdir(workspace);
  await writeFile(join(workspace, 'docker-compose.yml'), 'services:\n  db:\n    image: postgres\n');
  recipient = await identityToRecipient(await generateX25519Identity());
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
    const good = await cli(['check'], env);
    expect(good.exitCode, good.context).toBe(0);
    expect(good.stdout).toMatch(/^pg-dr check: ✓ no check failed/);
    expect(good.stdout).toMatch(/^✓ +b2: write, read and delete a 5,243,904-byte probe/m);
    expect(good.stdout).toMatch(/^⚪ +heartbeat \('heartbeat-url'\) +'heartbeat-url' is not set/m);
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

  it('--help lists every flag action.yml declares and exits 0', async () => {
    const r = await cli(['--help']);
    expect(r.exitCode, r.context).toBe(0);
    expect(r.stdout).toContain('Usage: pg-dr');
    expect(r.stdout).toContain('PG_DR_');
    const yml = parseYaml(await readFile(join(REPO_ROOT, 'action.yml'), 'utf8')) as {
      inputs: Record<string, unknown>;
    };
    const flags = Object.keys(yml.inputs).filter((n) => n !== 'command');
    expect(flags).toContain('database-url');
    for (const flag of flags) expect(r.stdout).toMatch(new RegExp(`^\\s*--${flag}\\b`, 'm'));
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

  it('a bad input: exit 1, one JSON document with ok false naming the input, nothing stored', async () => {
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
    expect(r.exitCode, r.context).toBe(1);
    const doc = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(doc.ok).toBe(false);
    expect(doc.status).toBe('failed');
    expect(doc.error).toMatch(/'compression'.*"lz4"/);
    expect(r.stderr).toMatch(/'compression'/);
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
});
