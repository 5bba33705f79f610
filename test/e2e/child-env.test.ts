// What the programs pg-dr starts can see: their /proc/<pid>/environ, read while the built
// CLI backs up and restores. Only an allow-list (PATH, HOME, locale…) and the libpq
// variables pg-dr sets may be there; never an S3 key, the GitHub token or the age identity.
import { readdir, readFile } from 'node:fs/promises';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSeededDatabase } from '../harness/fixtures.js';
import { leasePostgres } from '../harness/lease.js';
import { requireBuilt } from '../harness/node.js';
import type { PgCluster } from '../harness/postgres.js';
import { type S3Pair, startS3Pair } from '../harness/s3.js';

let pg: PgCluster;
let s3: S3Pair;
let cliJs: string;
let identity: string;

const TOKEN = `ghs_${'T'.repeat(36)}`;

beforeAll(async () => {
  cliJs = requireBuilt('dist/cli/index.js');
  [pg, s3] = await Promise.all([leasePostgres({ name: 'child-env' }), startS3Pair()]);
  await createSeededDatabase(pg, 'app');
  identity = await generateX25519Identity();
});

afterAll(async () => {
  await Promise.all([pg?.stop(), s3?.stop()]);
});

interface Seen {
  readonly name: string;
  readonly environ: Record<string, string>;
}

/** The descendants of `root` now: a walk of /proc/<pid>/task/<tid>/children (Linux). */
async function descendants(root: number): Promise<number[]> {
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
    for (const tid of tasks) {
      const kids = await readFile(`/proc/${pid}/task/${tid}/children`, 'utf8').catch(() => '');
      for (const k of kids.split(' ').filter(Boolean).map(Number)) {
        out.push(k);
        queue.push(k);
      }
    }
  }
  return out;
}

/** Every descendant of `root` seen while `running` lasts, with its environment. */
async function watchChildren(root: number, running: Promise<unknown>): Promise<Seen[]> {
  const seen = new Map<number, Seen>();
  let done = false;
  running.finally(() => {
    done = true;
  });
  while (!done) {
    for (const pid of await descendants(root)) {
      if (seen.has(pid)) continue;
      const [raw, comm] = await Promise.all([
        readFile(`/proc/${pid}/environ`, 'latin1').catch(() => null),
        readFile(`/proc/${pid}/comm`, 'utf8').catch(() => null),
      ]);
      // Between fork and exec a child is still a copy of pg-dr (comm "node"): look again later.
      if (raw === null || comm === null || comm.trim() === 'node') continue;
      const environ = Object.fromEntries(
        raw
          .split('\0')
          .filter(Boolean)
          .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
      );
      seen.set(pid, { name: comm.trim(), environ });
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  return [...seen.values()];
}

describe('the environment of every child process', () => {
  it('holds no secret of pg-dr during a backup and a restore', async () => {
    const secrets = {
      PG_DR_PRIMARY_SECRET_ACCESS_KEY: s3.primary.secretAccessKey,
      PG_DR_SECONDARY_SECRET_ACCESS_KEY: s3.secondary.secretAccessKey,
      PG_DR_GITHUB_TOKEN: TOKEN,
      PG_DR_AGE_IDENTITY: identity,
      AWS_SECRET_ACCESS_KEY: 'aws-secret-in-the-runner-environment',
      INPUT_PASSPHRASE: 'an action input left in the environment',
    };
    const base = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/root',
      PG_DR_PRIMARY_NAME: 'b2',
      PG_DR_PRIMARY_ENDPOINT: s3.primary.endpoint,
      PG_DR_PRIMARY_BUCKET: 'pgdr-primary',
      PG_DR_PRIMARY_ACCESS_KEY_ID: s3.primary.accessKeyId,
      PG_DR_PRIMARY_REGION: 'us-east-1',
      PG_DR_SECONDARY_NAME: 'r2',
      PG_DR_SECONDARY_ENDPOINT: s3.secondary.endpoint,
      PG_DR_SECONDARY_BUCKET: 'pgdr-secondary',
      PG_DR_SECONDARY_ACCESS_KEY_ID: s3.secondary.accessKeyId,
      ...secrets,
    };
    const children: Seen[] = [];
    for (const [command, extra] of [
      [
        'backup',
        {
          PG_DR_DATABASE_URL: pg.url('app'),
          PG_DR_AGE_RECIPIENTS: await identityToRecipient(identity),
        },
      ],
      ['restore', { PG_DR_DATABASE_URL: pg.url('restored') }],
    ] as const) {
      const child = execa(process.execPath, [cliJs, command], {
        env: { ...base, ...extra },
        extendEnv: false,
        reject: false,
        stdin: 'ignore',
      });
      const seen = await watchChildren(child.pid as number, child);
      const r = await child;
      expect(r.exitCode, `${command}: ${r.stderr}`).toBe(0);
      children.push(...seen);
    }
    const names = new Set(children.map((c) => c.name));
    for (const expected of ['pg_dump', 'zstd', 'pg_restore'])
      expect(names, [...names].join(', ')).toContain(expected);
    // pg-dr's own queries go through node-postgres: no psql reads SQL text pg-dr builds.
    expect(names).not.toContain('psql');
    for (const c of children) {
      for (const key of Object.keys(c.environ))
        expect(key, `${c.name} got ${key}`).not.toMatch(/^(PG_DR_|INPUT_|AWS_|GITHUB_)/);
      const all = Object.values(c.environ).join('\n');
      for (const [name, value] of Object.entries(secrets))
        expect(all.includes(value), `${c.name} holds ${name}`).toBe(false);
      // The database password reaches the libpq clients (PGPASSWORD), and only them.
      if (c.environ.PGPASSWORD !== undefined) expect(['pg_dump', 'pg_restore']).toContain(c.name);
    }
  });
});
