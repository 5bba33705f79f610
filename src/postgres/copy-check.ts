import type { Session } from './session.js';
import { quoteIdent } from './sql.js';

/**
 * What a drill reads in a started copy of a physical backup: every table of the database
 * read through (exact row counts), every heap checked page by page (amcheck's verify_heapam,
 * PostgreSQL 14+) and every B-tree index checked against its table (bt_index_check with
 * heapallindexed: every row's index entry is there) — when contrib's amcheck is installed
 * beside the server; the extension is created in the throwaway copy only.
 */
export interface CopyCheck {
  readonly tables: { schema: string; table: string; rows: number }[];
  /** `null`: amcheck is not installed beside the server, so nothing was checked with it. */
  readonly amcheck: { heaps: number; indexes: number } | null;
  /** Each corruption amcheck found, naming the relation. */
  readonly corruptions: string[];
}

/** How many corruptions are named before the rest is only counted. */
const MAX_NAMED = 20;

export async function checkCopy(s: Session, versionNum: number): Promise<CopyCheck> {
  const rels = await s.rows<{ oid: number; schema: string; table: string; unlogged: boolean }>(
    `SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS "table", c.relpersistence = 'u' AS unlogged
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't'
        AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
        AND (c.relkind = 'r' OR c.relispopulated)
      ORDER BY 2, 3`,
  );
  const tables: CopyCheck['tables'] = [];
  for (const r of rels) {
    const [row] = await s.rows<{ n: string }>(
      `SELECT count(*)::text AS n FROM ${quoteIdent(r.schema)}.${quoteIdent(r.table)}`,
    );
    tables.push({ schema: r.schema, table: r.table, rows: Number(row?.n ?? 0) });
  }
  const available = await s.rows<{ ok: boolean }>(
    "SELECT true AS ok FROM pg_catalog.pg_available_extensions WHERE name = 'amcheck'",
  );
  if (available.length === 0) return { tables, amcheck: null, corruptions: [] };
  await s.exec('CREATE EXTENSION IF NOT EXISTS amcheck');
  const corruptions: string[] = [];
  const note = (what: string) => {
    if (corruptions.length < MAX_NAMED) corruptions.push(what);
  };
  let heaps = 0;
  if (versionNum >= 140000)
    for (const r of rels) {
      const bad = await s.rows<{ blkno: string; msg: string }>(
        'SELECT blkno::text, msg FROM verify_heapam($1::int8::regclass) LIMIT 3',
        [r.oid],
      );
      heaps++;
      for (const b of bad)
        note(`${JSON.stringify(`${r.schema}.${r.table}`)} block ${b.blkno}: ${b.msg}`);
    }
  const indexes = await s.rows<{ oid: number; name: string }>(
    `SELECT i.indexrelid::int8 AS oid, n.nspname || '.' || c.relname AS name
       FROM pg_catalog.pg_index i
       JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_catalog.pg_am a ON a.oid = c.relam
      WHERE a.amname = 'btree' AND i.indisvalid AND i.indisready AND c.relpersistence <> 't'
        AND n.nspname NOT LIKE 'pg\\_toast%'
      ORDER BY 2`,
  );
  for (const ix of indexes) {
    try {
      await s.exec('SELECT bt_index_check($1::int8::regclass, true)', [ix.oid]);
    } catch (e) {
      note(`index ${JSON.stringify(ix.name)}: ${(e as Error).message}`);
    }
  }
  return { tables, amcheck: { heaps, indexes: indexes.length }, corruptions };
}
