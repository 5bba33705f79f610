import type { Session } from './session.js';
import { quoteIdent, quoteLiteral } from './sql.js';

export type RowCountMethod = 'exact' | 'estimate' | 'off';

export interface TableRowCount {
  readonly schema: string;
  readonly table: string;
  readonly rows: number;
}

export interface ServerInfo {
  readonly versionNum: number;
  readonly database: string;
  readonly sizeBytes: number;
}

export async function readServerInfo(session: Session): Promise<ServerInfo> {
  const [row] = await session.rows<{ v: string; db: string; size: string }>(
    `SELECT current_setting('server_version_num') AS v, current_database() AS db,
            pg_database_size(current_database())::text AS size`,
  );
  if (!row) throw new Error('The server returned no version.');
  return { versionNum: Number(row.v), database: row.db, sizeBytes: Number(row.size) };
}

/** The cluster's system identifier, or null when the role may not read pg_control_system(). */
export async function readSystemIdentifier(session: Session): Promise<string | null> {
  const [allowed] = await session.rows<{ ok: boolean }>(
    `SELECT pg_catalog.has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE') AS ok`,
  );
  if (!allowed?.ok) return null;
  const [row] = await session.rows<{ id: string }>(
    'SELECT system_identifier::text AS id FROM pg_catalog.pg_control_system()',
  );
  return row?.id ?? null;
}

/**
 * Opens a repeatable-read transaction and exports its snapshot, so pg_dump
 * (`--snapshot`) and the row counts see the same data. The session must stay open
 * until pg_dump has started and the counts are done.
 */
export async function exportSnapshot(session: Session): Promise<string> {
  await session.exec('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
  const [row] = await session.rows<{ s: string }>('SELECT pg_export_snapshot() AS s');
  if (!row) throw new Error('pg_export_snapshot() returned nothing.');
  return row.s;
}

/** The tables whose data pg_dump writes: ordinary tables outside system schemas and extensions. */
const TABLES_SQL = `
  SELECT n.nspname AS schema, c.relname AS table, c.reltuples::float8 AS estimate
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r'
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
  ORDER BY 1, 2`;

/**
 * Row counts of every dumped table, read in the session's current transaction (the
 * exported snapshot). `exact` counts rows; `estimate` reads planner statistics
 * (-1 when the table was never analyzed).
 */
/**
 * Counts in batches, each in a short transaction of its own on `open()`'s session that
 * imports `snapshot` (SET TRANSACTION SNAPSHOT): the counts are exactly the dump's, and
 * a batch holds the locks of its own tables only, released at its commit. Counting every
 * table in the snapshot's own transaction instead holds a lock on each until the dump
 * ends, beside pg_dump's: twice the lock table pg_dump alone needs.
 */
export interface SnapshotCounting {
  readonly snapshot: string;
  readonly open: () => Promise<Session>;
}

/** Tables counted per statement and per transaction. */
export const COUNT_BATCH = 200;

export async function countRows(
  session: Session,
  method: RowCountMethod,
  inSnapshot: SnapshotCounting | null = null,
): Promise<TableRowCount[]> {
  if (method === 'off') return [];
  const tables = await session.rows<{ schema: string; table: string; estimate: number }>(
    TABLES_SQL,
  );
  if (method === 'estimate') {
    return tables.map((t) => ({
      schema: t.schema,
      table: t.table,
      rows: Math.max(-1, Math.round(t.estimate)),
    }));
  }
  const out: TableRowCount[] = [];
  const counter = inSnapshot ? await inSnapshot.open() : session;
  try {
    for (let i = 0; i < tables.length; i += COUNT_BATCH) {
      const batch = tables.slice(i, i + COUNT_BATCH);
      const sql = batch
        .map(
          (t) =>
            `SELECT ${quoteLiteral(t.schema)} AS schema, ${quoteLiteral(t.table)} AS table, count(*)::int8::text AS rows FROM ${quoteIdent(t.schema)}.${quoteIdent(t.table)}`,
        )
        .join(' UNION ALL ');
      if (inSnapshot) {
        await counter.exec('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
        await counter.exec(`SET TRANSACTION SNAPSHOT ${quoteLiteral(inSnapshot.snapshot)}`);
      }
      const rows = await counter.rows<{ schema: string; table: string; rows: string }>(sql);
      if (inSnapshot) await counter.exec('COMMIT');
      for (const r of rows) out.push({ schema: r.schema, table: r.table, rows: Number(r.rows) });
    }
  } finally {
    if (inSnapshot) await counter.close();
  }
  return out.sort((a, b) =>
    a.schema === b.schema ? cmp(a.table, b.table) : cmp(a.schema, b.schema),
  );
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
