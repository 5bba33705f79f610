import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { judgeLockBudget, readLockBudget } from '../../src/postgres/locks.js';
import { openSession } from '../../src/postgres/session.js';
import { parseDatabaseUrl } from '../../src/postgres/url.js';
import { SERVER_MAJORS, serverBinDir } from '../harness/majors.js';
import { type PgCluster, startPostgres } from '../harness/postgres.js';

// The lock budget read from a real server of each major: the settings it sizes its lock
// table from (18 has autovacuum_worker_slots and the slot sync worker), and what that
// major's pg_dump locks of a small schema (src/postgres/locks.ts has the measurements).
const SCHEMA = `
  CREATE TABLE a (id serial PRIMARY KEY);
  CREATE TABLE b (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text);
  CREATE TABLE c (v int);
  CREATE INDEX ON c (v);
  CREATE SEQUENCE standalone;
  CREATE TABLE parted (k int) PARTITION BY RANGE (k);
  CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (10);
  CREATE VIEW v AS SELECT * FROM c;
  CREATE MATERIALIZED VIEW m AS SELECT * FROM c;
  CREATE TEMPORARY TABLE t (id serial)`;

describe.each(SERVER_MAJORS)('lock budget on PostgreSQL %i', (major) => {
  let server: PgCluster;

  beforeAll(async () => {
    server = await startPostgres({ name: `locks-${major}`, binDir: await serverBinDir(major) });
    await server.createDatabase('app');
  });

  afterAll(async () => {
    await server?.stop();
  });

  it("reads the settings and counts what this major's pg_dump locks", async () => {
    const session = await openSession(parseDatabaseUrl('database-url', server.url('app')));
    try {
      // The temporary table lives as long as this session: pg_dump does not see it.
      await session.exec(SCHEMA);
      const [v] = await session.rows<{ n: number }>(
        "SELECT current_setting('server_version_num')::int AS n",
      );
      const versionNum = v?.n ?? 0;
      expect(Math.floor(versionNum / 10000)).toBe(major);
      const b = await readLockBudget(session, versionNum, 0);
      // a, b, c, parted, parted_1; the sequences of a and b and standalone; v and m.
      expect(b.tables).toBe(5);
      expect(b.sequences).toBe(major >= 18 ? 0 : 3);
      expect(b.views).toBe(major >= 16 ? 0 : 2);
      expect(b.need).toBe(b.tables + b.sequences + b.views + 160);
      // The test cluster: max_connections 50; 3 autovacuum workers (16 slots on 18) and the
      // launcher (and the slot sync worker on 18), 8 worker processes, 10 WAL senders.
      expect(b.backgroundProcesses).toBe(major >= 18 ? 36 : 22);
      expect(b.slots).toBe(64 * (50 + b.backgroundProcesses));
      expect(b.limit).toBe(major >= 18 ? 9246 : 7372);
      const { verdict, message } = judgeLockBudget(b);
      expect(verdict).toBe('ok');
      expect(message).toMatch(
        major >= 18
          ? /^pg_dump locks 5 tables in one transaction/
          : major >= 16
            ? /^pg_dump locks 5 tables and 3 sequences in one transaction/
            : /^pg_dump locks 5 tables, 3 sequences and 2 views in one transaction/,
      );
    } finally {
      await session.close();
    }
  });
});
