import type { Session } from './session.js';

/**
 * The locks pg_dump takes against the server's shared lock table.
 *
 * pg_dump runs in one transaction and holds every lock it takes until it ends: `LOCK TABLE …
 * IN ACCESS SHARE MODE` on every table it dumps (relkind `r`, `p`; not indexes, foreign or
 * toast tables), about 150 catalog tables and indexes its own queries open, and on some
 * majors more (below). Measured per server major with the pg_dump of that major (16: with
 * pg_dump 17, the newest client that dumps it, as 16's own could not be had here), reading
 * `pg_locks` while pg_dump waited on an object another session held in ACCESS EXCLUSIVE
 * mode, a database of 100 tables with a serial key, a partitioned table, a view and a
 * materialized view (`scripts/bench/measure-locks.ts`; servers 13.23, 14.23, 15.18, 16.14,
 * 17.10, 18.4; pg_dump 13.16, 14.10, 15.18, 17.12, 18.6). Catalogs: the catalog tables and
 * indexes held when it read the last sequence (a schema with more kinds of objects opens
 * more); fast path: locks kept in the backend, not in the shared table.
 *
 * | major | tables | sequences | views, mat. views | catalogs | fast path |
 * | --- | --- | --- | --- | --- | --- |
 * | 13 | each | each, `SELECT last_value FROM seq` | each | 145 | 16 |
 * | 14 | each | each | each | 148 | 16 |
 * | 15 | each | each | each | 157 | 16 |
 * | 16 (pg_dump 17) | each | each | none | 157 | 16 |
 * | 17 | each | each | none | 157 | 16 |
 * | 18 | each | none: `pg_get_sequence_data()` lets go of each | none | 155 | 64 |
 *
 * What counts is the server's major: pg_dump 18 against 17 reads sequences the old way and
 * locks each; pg_dump 17 against 15 locks each view and materialized view, against 16 none
 * (the server's `pg_get_viewdef` takes the lock); pg_dump 15 against 13 as 13's own.
 *
 * The server sizes its lock table for `max_locks_per_transaction × (server processes +
 * max_prepared_transactions)` locks, where server processes are `max_connections` and the
 * background ones (autovacuum workers and launcher, background workers, WAL senders; on 18
 * autovacuum_worker_slots and the slot sync worker). Past that, the table grows into spare
 * shared memory while some lasts, shared with every other session. The most tables with a
 * serial key that `pg_dump -Fc` (pg-dr's flags) dumped, one pg_dump alone on a freshly
 * started server with the default max_locks_per_transaction (64), bisected to 10 tables
 * (the next 10 failed with "out of shared memory"); shared_buffers 32MB, and 128MB (the
 * default) where marked *; in brackets the slots, the same for 13–17:
 *
 * | max_connections | 13 | 14 | 15 | 16 | 17 | 18 |
 * | --- | --- | --- | --- | --- | --- | --- |
 * | 20 | | | 2,250 (2,688 slots) | | | 6,090 (3,584) |
 * | 50 | 3,840 | 3,820 | 3,810 (4,608) | 3,810 | 3,920 | 9,280 (5,504) |
 * | 100 | 6,260 | 6,250 | 6,250; 6,300* (7,808) | 6,240 | 6,280 | 14,810; 14,810* (8,704) |
 * | 200 | | | 11,420 (14,208) | | | |
 *
 * So one pg_dump holds, all counted (tables, sequences where locked, 160 catalogs): on 13–17
 * 1.62–1.74 × the sized table, on 18 1.71–1.75 × (its sequences hold none, and 64 locks
 * stay in the backend's fast path, not 16) — the limit is 1.6 × and 1.68 × the sized table,
 * 1.2–7.8 % under each of these (test/unit/locks.test.ts checks every row).
 */
export interface LockBudget {
  /** Tables pg_dump locks (relkind r and p it dumps). */
  readonly tables: number;
  /** Sequences pg_dump locks reading their values (before PostgreSQL 18; 0 from 18 on). */
  readonly sequences: number;
  /** Views and materialized views pg_dump locks (before PostgreSQL 16; 0 from 16 on). */
  readonly views: number;
  /** Whether this major's pg_dump holds a lock on each sequence it reads (before 18). */
  readonly locksSequences: boolean;
  /** Locks pg_dump (and pg-dr's own sessions) hold at once: the above + catalogs + a count batch. */
  readonly need: number;
  /** What the lock table is sized for: max_locks_per_transaction × (processes + prepared). */
  readonly slots: number;
  /** Above this pg_dump fails even alone on the server: 1.6 × slots, 1.68 × on 18 (measured). */
  readonly limit: number;
  readonly maxLocksPerTransaction: number;
  readonly maxConnections: number;
  /** Background server processes that also get lock slots (autovacuum, workers, WAL senders). */
  readonly backgroundProcesses: number;
  readonly maxPreparedTransactions: number;
}

/** Catalog tables and indexes pg_dump's own queries lock (measured: 145–157 on 13–18). */
export const CATALOG_LOCKS = 160;

/** What pg_dump locks on a server of `versionNum`, and the locks one pg_dump alone gets. */
export function dumpLocksOf(versionNum: number): {
  /** Each sequence it reads (`SELECT … FROM seq` before 18; 18 reads them and lets go). */
  readonly sequences: boolean;
  /** Each view and materialized view (servers 13–15, whichever pg_dump; not from 16). */
  readonly views: boolean;
  /** The most locks it holds alone, over what the lock table is sized for (see above). */
  readonly capacity: number;
} {
  return {
    sequences: versionNum < 180000,
    views: versionNum < 160000,
    capacity: versionNum >= 180000 ? 1.68 : 1.6,
  };
}

/** Relations pg_dump locks: outside system schemas, not an extension's, not temporary. */
const BUDGET_SQL = `
  SELECT current_setting('max_locks_per_transaction')::int AS max_locks,
         current_setting('max_connections')::int AS max_connections,
         current_setting('max_prepared_transactions')::int AS max_prepared,
         current_setting('max_worker_processes')::int AS workers,
         current_setting('max_wal_senders')::int AS wal_senders,
         current_setting($1)::int AS autovacuum,
         t.tables, t.sequences, t.views, t.indexes
  FROM (SELECT count(*) FILTER (WHERE c.relkind IN ('r', 'p'))::int AS tables,
               count(*) FILTER (WHERE c.relkind = 'S')::int AS sequences,
               count(*) FILTER (WHERE c.relkind IN ('v', 'm'))::int AS views,
               coalesce(sum((SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid))
                 FILTER (WHERE c.relkind IN ('r', 'p')), 0)::int AS indexes
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'S', 'v', 'm')
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
    views: number;
    indexes: number;
  }>(BUDGET_SQL, [v18 ? 'autovacuum_worker_slots' : 'autovacuum_max_workers']);
  if (!row) throw new Error('The server returned no settings.');
  return lockBudget({
    versionNum,
    tables: row.tables,
    sequences: row.sequences,
    views: row.views,
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

/**
 * The budget of a server of `versionNum`: `tables`, `sequences` and `views` are what the
 * database has; what pg_dump locks of them depends on the major (`dumpLocksOf`). `extra`:
 * the locks of pg-dr's own count batch.
 */
export function lockBudget(o: {
  versionNum: number;
  tables: number;
  sequences: number;
  views: number;
  extra: number;
  maxLocksPerTransaction: number;
  maxConnections: number;
  backgroundProcesses: number;
  maxPreparedTransactions: number;
}): LockBudget {
  const locks = dumpLocksOf(o.versionNum);
  const sequences = locks.sequences ? o.sequences : 0;
  const views = locks.views ? o.views : 0;
  const slots =
    o.maxLocksPerTransaction *
    (o.maxConnections + o.backgroundProcesses + o.maxPreparedTransactions);
  return {
    tables: o.tables,
    sequences,
    views,
    locksSequences: locks.sequences,
    need: o.tables + sequences + views + CATALOG_LOCKS + o.extra,
    slots,
    // The measured ceiling of one pg_dump on an idle server (see above), a little under it.
    limit: Math.floor(locks.capacity * slots),
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

/** `4,000 tables and 4,000 sequences`, `… tables, … sequences and 3 views`, `9,000 tables` (18+). */
function whatIsLocked(b: LockBudget): string {
  const n = (x: number) => x.toLocaleString('en-US');
  const parts = [`${n(b.tables)} tables`];
  if (b.locksSequences) parts.push(`${n(b.sequences)} sequences`);
  if (b.views > 0) parts.push(`${n(b.views)} views`);
  const last = parts.pop() as string;
  return parts.length === 0 ? last : `${parts.join(', ')} and ${last}`;
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
  const needs = `pg_dump locks ${whatIsLocked(b)} in one transaction (${n(b.need)} locks with its catalogs and pg-dr's row counts)`;
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
