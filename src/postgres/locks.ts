import type { Session } from './session.js';

/**
 * The locks pg_dump takes against the server's shared lock table.
 *
 * pg_dump runs in one transaction and takes `LOCK TABLE … IN ACCESS SHARE MODE` on every
 * table whose data or definition it dumps — ordinary and partitioned tables (relkind `r`,
 * `p`), not indexes, views, materialized views or foreign tables (measured on PostgreSQL 15
 * from `pg_locks` while pg_dump waited on a table another session held) — then reads each
 * sequence's value (`SELECT last_value … FROM seq`), which locks the sequence too (a
 * `serial` or identity column has one), plus about thirty catalog tables and indexes of its
 * own queries. It holds them all until it ends.
 *
 * The server sizes its lock table for `max_locks_per_transaction × (server processes +
 * max_prepared_transactions)` locks, where server processes are `max_connections` and the
 * background ones (autovacuum workers and launcher, background workers, WAL senders).
 * Past that, the table grows into spare shared memory while some lasts, shared with every
 * other session. Measured on PostgreSQL 15 with the default max_locks_per_transaction (64),
 * one pg_dump alone on an idle server, tables with a serial primary key: max_connections 50
 * → sized for 4,608; `pg_dump -Fc` of 3,810 such tables (7,620 tables and sequences)
 * succeeded, 3,820 failed; `--schema-only` (no sequence reads) succeeded with 7,780 tables.
 * max_connections 100 → sized for 7,808; `--schema-only` succeeded with 12,500 tables.
 * Hence the limit: 1.25 × sized + 1,800 (7,560 and 11,560), a little under both.
 */
export interface LockBudget {
  /** Tables pg_dump locks (relkind r and p it dumps). */
  readonly tables: number;
  /** Sequences pg_dump reads (and so locks) for their values. */
  readonly sequences: number;
  /** Locks pg_dump (and pg-dr's own sessions) hold at once: tables + catalogs + a count batch. */
  readonly need: number;
  /** What the lock table is sized for: max_locks_per_transaction × (processes + prepared). */
  readonly slots: number;
  /** Above this pg_dump fails even alone on the server: 1.25 × slots + 1,800 (measured). */
  readonly limit: number;
  readonly maxLocksPerTransaction: number;
  readonly maxConnections: number;
  /** Background server processes that also get lock slots (autovacuum, workers, WAL senders). */
  readonly backgroundProcesses: number;
  readonly maxPreparedTransactions: number;
}

/** Catalog tables and indexes pg_dump's own queries lock (measured: 31 on PostgreSQL 15). */
export const CATALOG_LOCKS = 40;

/** Tables pg_dump locks: outside system schemas, not an extension's, not temporary. */
const BUDGET_SQL = `
  SELECT current_setting('max_locks_per_transaction')::int AS max_locks,
         current_setting('max_connections')::int AS max_connections,
         current_setting('max_prepared_transactions')::int AS max_prepared,
         current_setting('max_worker_processes')::int AS workers,
         current_setting('max_wal_senders')::int AS wal_senders,
         current_setting($1)::int AS autovacuum,
         t.tables, t.sequences, t.indexes
  FROM (SELECT count(*) FILTER (WHERE c.relkind <> 'S')::int AS tables,
               count(*) FILTER (WHERE c.relkind = 'S')::int AS sequences,
               coalesce(sum((SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid)), 0)::int AS indexes
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'S')
           AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
           AND NOT EXISTS (SELECT 1 FROM pg_depend d
                           WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                             AND d.deptype = 'e')) t`;

/**
 * Reads the lock budget of the server `session` is connected to. `countBatch`: the tables
 * pg-dr counts in one transaction beside pg_dump (0 without exact counts); counting a
 * table also locks its indexes (the planner opens them).
 */
export async function readLockBudget(
  session: Session,
  versionNum: number,
  countBatch: number,
): Promise<LockBudget> {
  // PostgreSQL 18 sizes autovacuum's slots apart from its worker count, and adds the
  // slot sync worker to the launcher as a second special process.
  const v18 = versionNum >= 180000;
  const [row] = await session.rows<{
    max_locks: number;
    max_connections: number;
    max_prepared: number;
    workers: number;
    wal_senders: number;
    autovacuum: number;
    tables: number;
    sequences: number;
    indexes: number;
  }>(BUDGET_SQL, [v18 ? 'autovacuum_worker_slots' : 'autovacuum_max_workers']);
  if (!row) throw new Error('The server returned no settings.');
  return lockBudget({
    tables: row.tables,
    sequences: row.sequences,
    extra:
      row.tables === 0
        ? 0
        : Math.ceil(Math.min(countBatch, row.tables) * (1 + row.indexes / row.tables)),
    maxLocksPerTransaction: row.max_locks,
    maxConnections: row.max_connections,
    backgroundProcesses: row.autovacuum + (v18 ? 2 : 1) + row.workers + row.wal_senders,
    maxPreparedTransactions: row.max_prepared,
  });
}

export function lockBudget(o: {
  tables: number;
  sequences: number;
  extra: number;
  maxLocksPerTransaction: number;
  maxConnections: number;
  backgroundProcesses: number;
  maxPreparedTransactions: number;
}): LockBudget {
  const slots =
    o.maxLocksPerTransaction *
    (o.maxConnections + o.backgroundProcesses + o.maxPreparedTransactions);
  return {
    tables: o.tables,
    sequences: o.sequences,
    need: o.tables + o.sequences + CATALOG_LOCKS + o.extra,
    slots,
    // The measured ceiling of one pg_dump on an idle server (see above), a little under it.
    limit: Math.floor(1.25 * slots) + 1800,
    maxLocksPerTransaction: o.maxLocksPerTransaction,
    maxConnections: o.maxConnections,
    backgroundProcesses: o.backgroundProcesses,
    maxPreparedTransactions: o.maxPreparedTransactions,
  };
}

/** A max_locks_per_transaction that sizes the lock table for `need` with a quarter spare. */
export function suggestedMaxLocks(b: LockBudget): number {
  const processes = b.maxConnections + b.backgroundProcesses + b.maxPreparedTransactions;
  const wanted = Math.ceil((b.need * 1.25) / processes / 64) * 64;
  return Math.max(wanted, b.maxLocksPerTransaction * 2);
}

function describeSlots(b: LockBudget): string {
  const n = (x: number) => x.toLocaleString('en-US');
  return (
    `max_locks_per_transaction ${b.maxLocksPerTransaction} × (max_connections ${b.maxConnections} + ` +
    `${b.backgroundProcesses} background processes + max_prepared_transactions ${b.maxPreparedTransactions}) = ${n(b.slots)} lock slots`
  );
}

function raise(b: LockBudget): string {
  const v = suggestedMaxLocks(b);
  return (
    `Raise max_locks_per_transaction to ${v} (ALTER SYSTEM SET max_locks_per_transaction = ${v}, ` +
    "or in postgresql.conf / your provider's parameter group); it takes effect only after a server restart."
  );
}

/**
 * What the budget means for the backup: `refuse` (pg_dump cannot succeed: the message says
 * why and what to do), `warn` (pg_dump leans on spare shared memory, or leaves other
 * sessions little), or `ok`.
 */
export function judgeLockBudget(b: LockBudget): {
  verdict: 'ok' | 'warn' | 'refuse';
  message: string;
} {
  const n = (x: number) => x.toLocaleString('en-US');
  const needs = `pg_dump locks ${n(b.tables)} tables and ${n(b.sequences)} sequences in one transaction (${n(b.need)} locks with its catalogs and pg-dr's row counts)`;
  if (b.need > b.limit)
    return {
      verdict: 'refuse',
      message:
        `Not enough lock slots for pg_dump: ${needs}, and this server has ${describeSlots(b)}; ` +
        `with the spare shared memory it holds about ${n(b.limit)} at most, so pg_dump would fail with "out of shared memory". ` +
        `${raise(b)} Nothing was uploaded.`,
    };
  if (b.need > 0.8 * b.slots)
    return {
      verdict: 'warn',
      message:
        `${needs}: ${Math.round((100 * b.need) / b.slots)}% of the server's ${describeSlots(b)}. ` +
        'Past the lock table, pg_dump relies on spare shared memory, which other sessions use too; it may fail with "out of shared memory". ' +
        raise(b),
    };
  return { verdict: 'ok', message: `${needs}; the server has ${describeSlots(b)}.` };
}
