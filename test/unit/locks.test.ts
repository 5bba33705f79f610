import { describe, expect, it } from 'vitest';
import {
  CATALOG_LOCKS,
  dumpLocksOf,
  judgeLockBudget,
  lockBudget,
  suggestedMaxLocks,
} from '../../src/postgres/locks.js';

/** PostgreSQL 13–17 defaults: 3 autovacuum workers + launcher, 8 workers, 10 WAL senders. */
const DEFAULTS = {
  versionNum: 150000,
  extra: 0,
  sequences: 0,
  views: 0,
  maxLocksPerTransaction: 64,
  maxConnections: 100,
  backgroundProcesses: 22,
  maxPreparedTransactions: 0,
};

/** PostgreSQL 18 adds 16 autovacuum worker slots and the slot sync worker: 36. */
const BACKGROUND = (major: number) => (major >= 18 ? 16 + 2 + 8 + 10 : 3 + 1 + 8 + 10);

/**
 * The most tables with a serial key one `pg_dump -Fc` dumped alone on a fresh server with
 * max_locks_per_transaction 64, and the next count tried, which failed with "out of shared
 * memory" (scripts/bench/measure-locks.ts; the table in src/postgres/locks.ts).
 */
const MEASURED = [
  { major: 13, maxConnections: 50, ok: 3840, failed: 3850 },
  { major: 13, maxConnections: 100, ok: 6260, failed: 6270 },
  { major: 14, maxConnections: 50, ok: 3820, failed: 3830 },
  { major: 14, maxConnections: 100, ok: 6250, failed: 6260 },
  { major: 15, maxConnections: 20, ok: 2250, failed: 2260 },
  { major: 15, maxConnections: 50, ok: 3810, failed: 3820 },
  { major: 15, maxConnections: 100, ok: 6250, failed: 6260 },
  { major: 15, maxConnections: 200, ok: 11_420, failed: 11_430 },
  { major: 16, maxConnections: 50, ok: 3810, failed: 3820 },
  { major: 16, maxConnections: 100, ok: 6240, failed: 6250 },
  { major: 17, maxConnections: 50, ok: 3920, failed: 3930 },
  { major: 17, maxConnections: 100, ok: 6280, failed: 6290 },
  { major: 18, maxConnections: 20, ok: 6090, failed: 6100 },
  { major: 18, maxConnections: 50, ok: 9280, failed: 9290 },
  { major: 18, maxConnections: 100, ok: 14_810, failed: 14_820 },
];

describe('lock budget', () => {
  it('sizes the lock table as PostgreSQL does: max_locks × (processes + prepared)', () => {
    const b = lockBudget({ ...DEFAULTS, tables: 1000 });
    expect(b.slots).toBe(64 * 122);
    expect(b.limit).toBe(Math.floor(1.6 * 7808));
    expect(b.need).toBe(1000 + CATALOG_LOCKS);
    expect(judgeLockBudget(b).verdict).toBe('ok');
  });

  it('counts sequences and the row-count batch', () => {
    const b = lockBudget({ ...DEFAULTS, tables: 5000, sequences: 5000, extra: 400 });
    expect(b.need).toBe(10_560);
    const j = judgeLockBudget(b);
    expect(j.verdict).toBe('warn');
    expect(j.message).toMatch(/^pg_dump locks 5,000 tables and 5,000 sequences .*135% of/);
  });

  it('refuses past the limit, with the figures, the setting, the restart and a value that fits', () => {
    const b = lockBudget({ ...DEFAULTS, tables: 13_000 });
    const j = judgeLockBudget(b);
    expect(j.verdict).toBe('refuse');
    expect(j.message).toContain(
      'max_locks_per_transaction 64 × (max_connections 100 + 22 background processes + max_prepared_transactions 0) = 7,808 lock slots',
    );
    expect(j.message).toContain('it holds about 12,492 at most');
    expect(j.message).toMatch(/server restart.*Nothing was uploaded\.$/);
    const v = suggestedMaxLocks(b);
    expect(v % 64).toBe(0);
    // The suggested value sizes the table for the need, with a quarter spare, without spare memory.
    expect(v * 122).toBeGreaterThanOrEqual(b.need * 1.25);
    const after = lockBudget({ ...DEFAULTS, tables: 13_000, maxLocksPerTransaction: v });
    expect(judgeLockBudget(after).verdict).toBe('ok');
  });

  it('prepared transactions get slots too', () => {
    expect(lockBudget({ ...DEFAULTS, tables: 1, maxPreparedTransactions: 10 }).slots).toBe(
      64 * 132,
    );
  });
});

describe('lock budget per major', () => {
  it('sequences are locked before 18, views and materialized views before 16', () => {
    expect(dumpLocksOf(130000)).toEqual({ sequences: true, views: true, capacity: 1.6 });
    expect(dumpLocksOf(159999)).toEqual({ sequences: true, views: true, capacity: 1.6 });
    expect(dumpLocksOf(160014)).toEqual({ sequences: true, views: false, capacity: 1.6 });
    expect(dumpLocksOf(170000)).toEqual({ sequences: true, views: false, capacity: 1.6 });
    expect(dumpLocksOf(179999)).toEqual({ sequences: true, views: false, capacity: 1.6 });
    expect(dumpLocksOf(180000)).toEqual({ sequences: false, views: false, capacity: 1.68 });
    expect(dumpLocksOf(190000)).toEqual({ sequences: false, views: false, capacity: 1.68 });
  });

  it.each([
    {
      versionNum: 130023,
      need: 1000 + 1000 + 30 + CATALOG_LOCKS,
      text: '1,000 tables, 1,000 sequences and 30 views',
    },
    {
      versionNum: 150018,
      need: 1000 + 1000 + 30 + CATALOG_LOCKS,
      text: '1,000 tables, 1,000 sequences and 30 views',
    },
    {
      versionNum: 160014,
      need: 1000 + 1000 + CATALOG_LOCKS,
      text: '1,000 tables and 1,000 sequences',
    },
    {
      versionNum: 170010,
      need: 1000 + 1000 + CATALOG_LOCKS,
      text: '1,000 tables and 1,000 sequences',
    },
    { versionNum: 180004, need: 1000 + CATALOG_LOCKS, text: '1,000 tables' },
  ])('on $versionNum pg_dump locks $text', ({ versionNum, need, text }) => {
    const b = lockBudget({ ...DEFAULTS, versionNum, tables: 1000, sequences: 1000, views: 30 });
    expect(b.need).toBe(need);
    expect(judgeLockBudget(b).message).toMatch(
      new RegExp(`^pg_dump locks ${text} in one transaction \\(`),
    );
  });

  it('a database with no sequence says 0 sequences before 18', () => {
    expect(judgeLockBudget(lockBudget({ ...DEFAULTS, tables: 10 })).message).toMatch(
      /^pg_dump locks 10 tables and 0 sequences in one/,
    );
  });

  it.each(MEASURED)(
    '$major, max_connections $maxConnections: refuses $failed serial-key tables (pg_dump failed), a little under $ok (it succeeded)',
    ({ major, maxConnections, ok, failed }) => {
      const budget = (tables: number) =>
        lockBudget({
          ...DEFAULTS,
          versionNum: major * 10000,
          maxConnections,
          backgroundProcesses: BACKGROUND(major),
          tables,
          sequences: tables,
        });
      expect(judgeLockBudget(budget(failed)).verdict).toBe('refuse');
      // Not much under what pg_dump managed: within 8 %.
      const b = budget(ok);
      expect(b.limit).toBeLessThan(b.need);
      expect(b.limit).toBeGreaterThan(0.92 * b.need);
    },
  );

  it('18 sizes the table for more background processes, and pg_dump holds one lock per serial-key table', () => {
    const b = lockBudget({
      ...DEFAULTS,
      versionNum: 180004,
      maxConnections: 50,
      backgroundProcesses: BACKGROUND(18),
      tables: 9000,
      sequences: 9000,
    });
    expect(b.slots).toBe(5504);
    expect(b.limit).toBe(9246);
    expect(b.need).toBe(9000 + CATALOG_LOCKS);
    expect(judgeLockBudget(b).verdict).toBe('warn');
    // On 17 the same database would need twice the locks: refused.
    const on17 = lockBudget({
      ...DEFAULTS,
      versionNum: 170010,
      maxConnections: 50,
      tables: 9000,
      sequences: 9000,
    });
    expect(on17.slots).toBe(4608);
    expect(judgeLockBudget(on17).verdict).toBe('refuse');
  });
});
