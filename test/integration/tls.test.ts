/**
 * A server that accepts TCP connections over TLS only: pg-dr's own connection (node-postgres)
 * and its libpq clients (pg_dump, pg_restore) honour the URL's sslmode and sslrootcert the
 * same way, through a backup, a restore drill and a restore.
 */
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDatabase, tableRowCounts } from '../harness/fixtures.js';
import { type PgCluster, startPostgres } from '../harness/postgres.js';
import { destinationInputs, runPgDr } from '../harness/run.js';
import { type S3Pair, startS3Pair } from '../harness/s3.js';

let pg: PgCluster;
let s3: S3Pair;
let identity: string;
let source: Record<string, number>;

const destinations = () => destinationInputs(s3.primary, s3.secondary);
const url = (db: string, query: string) => `${pg.url(db)}?${query}`;

beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres({ name: 'tls', tls: true }), startS3Pair()]);
  await pg.createDatabase('app');
  source = await seedDatabase(pg, 'app');
  identity = await generateX25519Identity();
});

afterAll(async () => {
  await Promise.all([pg?.stop(), s3?.stop()]);
});

describe('TLS', () => {
  it('backs up, drills and restores with sslmode=verify-full against the server certificate', async () => {
    const tls = `sslmode=verify-full&sslrootcert=${encodeURIComponent(pg.caFile as string)}`;
    const b = await runPgDr({
      command: 'backup',
      'database-url': url('app', tls),
      'age-recipients': await identityToRecipient(identity),
      ...destinations(),
    });
    expect(b.failed).toBeUndefined();
    const v = await runPgDr({
      command: 'verify',
      'verify-level': 'restore',
      'age-identity': identity,
      'drill-database-url': url('postgres', tls),
      ...destinations(),
    });
    expect(v.failed).toBeUndefined();
    const r = await runPgDr({
      command: 'restore',
      'database-url': url('restored', tls),
      'age-identity': identity,
      ...destinations(),
    });
    expect(r.failed).toBeUndefined();
    expect(await tableRowCounts(pg, 'restored')).toEqual(source);
  });

  it('the default (prefer) and require use TLS too; disable is refused by this server', async () => {
    for (const query of ['', 'sslmode=require']) {
      const l = await runPgDr({
        command: 'restore',
        'database-url': query ? url('t_require', query) : pg.url('t_prefer'),
        'age-identity': identity,
        ...destinations(),
      });
      expect(l.failed, query).toBeUndefined();
    }
    const off = await runPgDr({
      command: 'restore',
      'database-url': url('t_off', 'sslmode=disable'),
      'age-identity': identity,
      ...destinations(),
    });
    expect(off.failed).toMatch(
      /Cannot connect to .*no pg_hba\.conf entry.*no encryption.*check 'database-url'/,
    );
  });

  it('verify-full refuses a server whose certificate it cannot verify, naming the input', async () => {
    const r = await runPgDr({
      command: 'backup',
      'database-url': url('app', 'sslmode=verify-full'),
      'age-recipients': await identityToRecipient(identity),
      ...destinations(),
    });
    expect(r.failed).toMatch(/Cannot connect to .*(certificate|root\.crt).*check 'database-url'/);
  });
});
