// The progress a person sees: the built CLI (dist/cli/index.js) on a pseudo-terminal
// (`script`) draws one live line with done / total, %, ETA; without a terminal (a CI log) it
// writes percentage lines. The S3 servers sit behind a slow link (test/harness/link.ts), so
// each transfer lasts seconds on any machine: no time is asserted, only what was shown.
import { rm } from 'node:fs/promises';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Manifest, parseManifest } from '../../src/manifest/schema.js';
import { formatBytes } from '../../src/report/progress.js';
import { tempDir } from '../harness/fixtures.js';
import { leasePostgres } from '../harness/lease.js';
import { type Link, startLink } from '../harness/link.js';
import { requireBuilt } from '../harness/node.js';
import type { PgCluster } from '../harness/postgres.js';
import { PRIMARY_BUCKET, type S3Pair, SECONDARY_BUCKET, startS3Pair } from '../harness/s3.js';

/**
 * Per connection and direction: the ~30 MB stored (4 parts of 8 MiB, the figure moves as
 * each is acknowledged) take seconds whatever the machine.
 */
const LINK_BYTES_PER_SECOND = 3e6;

let pg: PgCluster;
let s3: S3Pair;
let links: Link[] = [];
let work: string;
let identity: string;
let cliJs: string;

beforeAll(async () => {
  cliJs = requireBuilt('dist/cli/index.js');
  [pg, s3] = await Promise.all([leasePostgres({ name: 'e2e-progress' }), startS3Pair()]);
  links = await Promise.all(
    [s3.primary.port, s3.secondary.port].map((p) =>
      startLink(p, { delayMs: 2, bytesPerSecond: LINK_BYTES_PER_SECOND }),
    ),
  );
  await pg.createDatabase('app');
  // ~10 MB of hex text (zstd halves it at best) and ~24 MB of random bytes: ~30 MB stored.
  await pg.query(
    'app',
    `CREATE TABLE notes AS
       SELECT i, (SELECT string_agg(md5(random()::text || i || g), '') FROM generate_series(1, 8) g) AS body
       FROM generate_series(1, 40000) i;
     CREATE TABLE files AS
       SELECT i, (SELECT decode(string_agg(md5(random()::text || i || g), ''), 'hex') FROM generate_series(1, 640) g) AS data
       FROM generate_series(1, 2400) i`,
  );
  work = await tempDir('e2e-progress');
  identity = await generateX25519Identity();
}, 120_000);

afterAll(async () => {
  await Promise.all(links.map((l) => l.close()));
  await Promise.all([pg?.stop(), s3?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

function env(extra: Record<string, string>): Record<string, string> {
  const [b2, r2] = links;
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? work,
    PG_DR_PREFIX: 'progress/',
    PG_DR_PRIMARY_NAME: 'b2',
    PG_DR_PRIMARY_ENDPOINT: b2?.endpoint ?? '',
    PG_DR_PRIMARY_BUCKET: PRIMARY_BUCKET,
    PG_DR_PRIMARY_REGION: 'us-east-1',
    PG_DR_PRIMARY_ACCESS_KEY_ID: s3.primary.accessKeyId,
    PG_DR_PRIMARY_SECRET_ACCESS_KEY: s3.primary.secretAccessKey,
    PG_DR_SECONDARY_NAME: 'r2',
    PG_DR_SECONDARY_ENDPOINT: r2?.endpoint ?? '',
    PG_DR_SECONDARY_BUCKET: SECONDARY_BUCKET,
    PG_DR_SECONDARY_ACCESS_KEY_ID: s3.secondary.accessKeyId,
    PG_DR_SECONDARY_SECRET_ACCESS_KEY: s3.secondary.secretAccessKey,
    PG_DR_FORMAT: 'json',
    ...extra,
  };
}

/** The CLI with pipes, as in a CI log: stdout the JSON, stderr the log. */
async function plain(command: string, extra: Record<string, string>) {
  const r = await execa(process.execPath, [cliJs, command], {
    cwd: work,
    env: env(extra),
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    timeout: 110_000,
  });
  return { exitCode: r.exitCode, log: r.stderr, stdout: r.stdout, context: r.stderr };
}

/** The CLI on a pseudo-terminal (`script`): what a person's terminal receives, both streams. */
async function onTerminal(command: string, extra: Record<string, string>) {
  const r = await execa(
    'script',
    // A wide terminal, so that no part of the line is cut (progress.test.ts cuts a narrow one).
    ['-qfec', `stty cols 250; '${process.execPath}' '${cliJs}' ${command}`, '/dev/null'],
    { cwd: work, env: env(extra), extendEnv: false, reject: false, timeout: 110_000 },
  );
  return { exitCode: r.exitCode, screen: r.stdout, context: r.stdout };
}

/** The live line's draws: each redraw starts with carriage return + erase line. */
function draws(screen: string): string[] {
  return screen
    .split('\r\x1b[K')
    .slice(1)
    .map((d) => d.split(/\r?\n/)[0] ?? '')
    .filter((d) => d !== '');
}

const manifests: Manifest[] = [];

/** The newest manifest at the primary, read from the server itself. */
async function newestManifest(): Promise<Manifest> {
  const keys = (await s3.primary.listKeys(PRIMARY_BUCKET, 'progress/'))
    .filter((k) => k.endsWith('/manifest.json'))
    .sort();
  const key = keys.at(-1);
  if (!key) throw new Error('no manifest stored');
  return parseManifest((await s3.primary.getObject(PRIMARY_BUCKET, key)).toString());
}

function manifestOf(stdout: string): Manifest {
  const doc = JSON.parse(stdout.slice(stdout.indexOf('{'))) as { manifest: unknown };
  return parseManifest(JSON.stringify(doc.manifest));
}

describe('progress', () => {
  it('a backup in a CI log (no terminal): percentage lines with an estimated total and an ETA, no redraws', async () => {
    const r = await plain('backup', {
      PG_DR_DATABASE_URL: pg.url('app'),
      PG_DR_AGE_RECIPIENTS: await identityToRecipient(identity),
    });
    expect(r.exitCode, r.context).toBe(0);
    manifests.push(manifestOf(r.stdout));
    // The first backup: the default ratio, said as an estimate.
    expect(r.log).toMatch(
      /Progress total: ≈[\d.]+ [KMG]iB to store, an estimate: the database's [\d.]+ MiB × 0\.25 \(a default ratio for zstd: no earlier backup/,
    );
    const lines = r.log
      .split('\n')
      .filter((l) => /^dump [\d.]+ [KMG]?i?B \/ ≈[\d.]+ [KMG]iB \(estimate/.test(l));
    expect(lines.length, r.context).toBeGreaterThan(0);
    for (const l of lines)
      expect(l).toMatch(/ · \d{1,2}% · ETA (≈\d+:\d\d|—) · [\d.]+ MB\/s · elapsed \d+:\d\d/);
    expect(r.log).not.toContain('\x1b[K');
  });

  it('a backup on a terminal: one live line with the estimated total, %, ETA; refined by the previous backup', async () => {
    const r = await onTerminal('backup', {
      PG_DR_DATABASE_URL: pg.url('app'),
      PG_DR_AGE_RECIPIENTS: await identityToRecipient(identity),
    });
    expect(r.exitCode, r.context).toBe(0);
    const previous = manifests[0] as Manifest;
    const db = previous.objects.find((o) => o.kind === 'database');
    const ratio = (db?.encrypted.bytes ?? 0) / previous.database.sizeBytes;
    expect(r.screen).toContain(`× ${ratio.toFixed(2)} (the ratio of backup ${previous.id})`);
    const live = draws(r.screen).filter((d) => d.startsWith('dump '));
    expect(live.length, r.context).toBeGreaterThan(0);
    for (const d of live)
      expect(d).toMatch(
        /^dump [\d.]+ [KMG]?i?B \/ ≈[\d.]+ [KMG]iB \(estimate(, passed)?\) · \d{1,2}% · ETA (≈\d+:\d\d|—) · [\d.]+ MB\/s · elapsed \d+:\d\d/,
      );
    // The estimate from the previous backup is close: the ETA is a time, not a dash.
    expect(
      live.some((d) => /· ETA ≈\d+:\d\d ·/.test(d)),
      r.context,
    ).toBe(true);
    // The live line is cleared before the next log line: none is glued to its end.
    expect(r.screen).not.toMatch(/elapsed \d+:\d\d[^\r\n]*(stored|Backup|b2:)/);
  });

  it('a restore on a terminal: the exact total from the manifest, %, ETA', async () => {
    const r = await onTerminal('restore', {
      PG_DR_DATABASE_URL: pg.url('restored_tty'),
      PG_DR_AGE_IDENTITY: identity,
    });
    expect(r.exitCode, r.context).toBe(0);
    const live = draws(r.screen).filter((d) => d.startsWith('restore from b2 '));
    expect(live.length, r.context).toBeGreaterThan(0);
    for (const d of live)
      expect(d).toMatch(
        /^restore from b2 [\d.]+ [KMG]?i?B \/ [\d.]+ [KMG]iB · \d{1,2}% · ETA (\d+:\d\d|—) · [\d.]+ MB\/s · elapsed \d+:\d\d$/,
      );
    expect(
      live.some((d) => /· ETA \d+:\d\d ·/.test(d)),
      r.context,
    ).toBe(true);
    // The total is the newest backup's stored size, as its manifest says.
    const newest = await newestManifest();
    const db = newest.objects.find((o) => o.kind === 'database');
    expect(live[0]).toContain(`/ ${formatBytes(db?.encrypted.bytes ?? -1)} · `);
  });

  it('a restore in a CI log: percentage lines of the exact total', async () => {
    const r = await plain('restore', {
      PG_DR_DATABASE_URL: pg.url('restored_log'),
      PG_DR_AGE_IDENTITY: identity,
    });
    expect(r.exitCode, r.context).toBe(0);
    const lines = r.log.split('\n').filter((l) => /^restore from b2 .* · \d{1,2}% · ETA /.test(l));
    expect(lines.length, r.context).toBeGreaterThan(0);
    expect(r.log).not.toContain('\x1b[K');
  });
});
