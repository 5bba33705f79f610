import { describe, expect, it } from 'vitest';
import { judgeLockBudget, lockBudget, suggestedMaxLocks } from '../../src/postgres/locks.js';

/** PostgreSQL 13–17 defaults: 3 autovacuum workers + launcher, 8 workers, 10 WAL senders. */
const DEFAULTS = {
  extra: 0,
  sequences: 0,
  maxLocksPerTransaction: 64,
  maxConnections: 100,
  backgroundProcesses: 22,
  maxPreparedTransactions: 0,
};

describe('lock budget', () => {
  it('sizes the lock table as PostgreSQL does: max_locks × (processes + prepared)', () => {
    const b = lockBudget({ ...DEFAULTS, tables: 1000 });
    expect(b.slots).toBe(64 * 122);
    expect(b.limit).toBe(Math.floor(1.25 * 7808) + 1800);
    expect(b.need).toBe(1040);
    expect(judgeLockBudget(b).verdict).toBe('ok');
  });

  it('counts sequences and the row-count batch', () => {
    const b = lockBudget({ ...DEFAULTS, tables: 5000, sequences: 5000, extra: 400 });
    expect(b.need).toBe(10_440);
    const j = judgeLockBudget(b);
    expect(j.verdict).toBe('warn');
    expect(j.message).toMatch(/^pg_dump locks 5,000 tables and 5,000 sequences .*134% of/);
  });

  it('refuses past the limit, with the figures, the setting, the restart and a value that fits', () => {
    const b = lockBudget({ ...DEFAULTS, tables: 12_000 });
    const j = judgeLockBudget(b);
    expect(j.verdict).toBe('refuse');
    expect(j.message).toContain(
      'max_locks_per_transaction 64 × (max_connections 100 + 22 background processes + max_prepared_transactions 0) = 7,808 lock slots',
    );
    expect(j.message).toMatch(/server restart.*Nothing was uploaded\.$/);
    const v = suggestedMaxLocks(b);
    expect(v % 64).toBe(0);
    // The suggested value sizes the table for the need, with a quarter spare, without spare memory.
    expect(v * 122).toBeGreaterThanOrEqual(b.need * 1.25);
    const after = lockBudget({ ...DEFAULTS, tables: 12_000, maxLocksPerTransaction: v });
    expect(judgeLockBudget(after).verdict).toBe('ok');
  });

  it('prepared transactions get slots too', () => {
    expect(lockBudget({ ...DEFAULTS, tables: 1, maxPreparedTransactions: 10 }).slots).toBe(
      64 * 132,
    );
  });
});
