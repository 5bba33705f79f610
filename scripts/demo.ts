// `npm run demo`: a real pg-dr backup on this machine, with nothing to configure.
// Starts a throwaway PostgreSQL cluster and two local S3-compatible servers (s3rver),
// runs the built CLI (dist/cli/index.js) exactly as a user would, then lists what was
// stored at both destinations, decrypts the dump with `age` and opens it with pg_restore.
// Everything it started or wrote is removed at the end.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Decrypter, generateX25519Identity, identityToRecipient } from 'age-encryption';
import { execa } from 'execa';
import { seedDatabase } from '../test/harness/fixtures.js';
import { startPostgres } from '../test/harness/postgres.js';
import { PRIMARY_BUCKET, SECONDARY_BUCKET, sha256, startS3Pair } from '../test/harness/s3.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const say = (s: string) => process.stderr.write(`\n\x1b[1m== ${s}\x1b[0m\n`);

async function main(): Promise<void> {
  if (!existsSync('dist/cli/index.js'))
    throw new Error('dist/cli/index.js is missing: run `npm run package`.');
  say('Starting a throwaway PostgreSQL cluster and two local S3-compatible servers');
  const [pg, s3] = await Promise.all([startPostgres({ name: 'demo' }), startS3Pair()]);
  const work = await mkdtemp(join(tmpdir(), 'pg-dr-demo-'));
  try {
    await pg.createDatabase('shop');
    const counts = await seedDatabase(pg, 'shop');
    process.stderr.write(
      `database "shop": ${Object.entries(counts)
        .map(([t, n]) => `${t}=${n}`)
        .join(', ')}\n`,
    );
    process.stderr.write(
      `primary   (b2): ${s3.primary.endpoint}/${PRIMARY_BUCKET}\nsecondary (r2): ${s3.secondary.endpoint}/${SECONDARY_BUCKET}\n`,
    );

    // A platform checkout to bundle with the backup.
    const ws = join(work, 'platform');
    await mkdir(join(ws, 'deploy'), { recursive: true });
    await writeFile(join(ws, 'docker-compose.yml'), 'services:\n  shop:\n    image: shop:latest\n');
    await writeFile(join(ws, 'Dockerfile'), 'FROM node:20-slim\n');
    await writeFile(join(ws, 'deploy/release.sh'), '#!/bin/sh\necho release\n');
    await writeFile(join(ws, '.env'), 'NEVER_BUNDLED=1\n');

    // The key pair: the runner only ever gets the public key.
    const identity = await generateX25519Identity();
    const recipient = await identityToRecipient(identity);
    const identityFile = join(work, 'key.txt');
    await writeFile(identityFile, `${identity}\n`, { mode: 0o600 });

    say('pg-dr backup  (node dist/cli/index.js backup, settings from PG_DR_* variables)');
    const env = {
      ...process.env,
      PG_DR_DATABASE_URL: pg.url('shop'),
      PG_DR_AGE_RECIPIENTS: recipient,
      PG_DR_PRIMARY_NAME: 'b2',
      PG_DR_PRIMARY_ENDPOINT: s3.primary.endpoint,
      PG_DR_PRIMARY_BUCKET: PRIMARY_BUCKET,
      PG_DR_PRIMARY_ACCESS_KEY_ID: s3.primary.accessKeyId,
      PG_DR_PRIMARY_SECRET_ACCESS_KEY: s3.primary.secretAccessKey,
      PG_DR_SECONDARY_NAME: 'r2',
      PG_DR_SECONDARY_ENDPOINT: s3.secondary.endpoint,
      PG_DR_SECONDARY_BUCKET: SECONDARY_BUCKET,
      PG_DR_SECONDARY_ACCESS_KEY_ID: s3.secondary.accessKeyId,
      PG_DR_SECONDARY_SECRET_ACCESS_KEY: s3.secondary.secretAccessKey,
      GITHUB_WORKSPACE: ws,
    };
    // Asynchronous: the S3 servers run in this process and must keep answering.
    const run = await execa(process.execPath, ['dist/cli/index.js', 'backup', '--format', 'json'], {
      env,
      stdin: 'ignore',
      stderr: 'inherit',
      reject: false,
    });
    if (run.exitCode !== 0) throw new Error(`pg-dr backup failed (exit ${run.exitCode})`);
    const result = JSON.parse(run.stdout) as {
      'backup-id': string;
      status: string;
      manifest: { objects: { name: string; kind: string; encrypted: { sha256: string } }[] };
    };
    process.stderr.write(`backup ${result['backup-id']}: ${result.status}\n`);

    say('Objects stored at each destination');
    for (const [name, server, bucket] of [
      ['b2', s3.primary, PRIMARY_BUCKET],
      ['r2', s3.secondary, SECONDARY_BUCKET],
    ] as const) {
      for (const key of await server.listKeys(bucket)) {
        const data = await server.getObject(bucket, key);
        const entry = result.manifest.objects.find((o) => key.endsWith(`/${o.name}`));
        const check = entry
          ? sha256(data) === entry.encrypted.sha256
            ? 'sha256 ✓'
            : 'sha256 MISMATCH'
          : '';
        process.stderr.write(`${name}  ${String(data.length).padStart(9)}  ${key}  ${check}\n`);
      }
    }

    say(
      'Decrypt the dump from the secondary with `age`, decompress with zstd, list it with pg_restore',
    );
    const db = result.manifest.objects.find((o) => o.kind === 'database');
    const stored = await s3.secondary.getObject(
      SECONDARY_BUCKET,
      `disaster_recovery/${result['backup-id']}/${db?.name}`,
    );
    const compressed =
      spawnSync('age', ['-d', '-i', identityFile], { input: stored, maxBuffer: 1 << 30 }).stdout ??
      Buffer.from(await new Decrypter().decrypt(new Uint8Array(stored)));
    const archive = execFileSync('zstd', ['-d', '-c'], { input: compressed, maxBuffer: 1 << 30 });
    const archiveFile = join(work, 'shop.dump');
    await writeFile(archiveFile, archive);
    const toc = execFileSync(join(pg.binDir, 'pg_restore'), ['--list', archiveFile]).toString();
    const tables = toc.split('\n').filter((l) => / TABLE DATA /.test(l));
    process.stderr.write(
      `${tables.join('\n')}\n(${archive.length} bytes of custom-format archive, ${tables.length} tables)\n`,
    );
    process.stderr.write('\nDone. Everything started for the demo is being removed.\n');
  } finally {
    await Promise.all([pg.stop(), s3.stop()]);
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`demo failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
