import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { type PgCluster, quoteIdent } from './postgres.js';

/** An age X25519 key pair: the identity (`AGE-SECRET-KEY-1…`) and its recipient (`age1…`). */
export interface AgeKeyPair {
  readonly identity: string;
  readonly recipient: string;
}

/** A fresh age X25519 key pair. */
export async function ageKeyPair(): Promise<AgeKeyPair> {
  const identity = await generateX25519Identity();
  return { identity, recipient: await identityToRecipient(identity) };
}

/** A new temporary directory `pg-dr-<label>-XXXXXX`; the caller removes it (`rm`). */
export function tempDir(label: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `pg-dr-${label}-`));
}

/** The workspace most files back up: a compose file and a deploy script. */
export const COMPOSE_WORKSPACE: Readonly<Record<string, string>> = {
  'docker-compose.yml': 'services:\n  db:\n    image: postgres\n',
  'deploy/run.sh': 'echo run\n',
};

/** Writes each `relative path → content` under `root`, making folders as needed; returns `root`. */
export async function writeTree(
  root: string,
  files: Readonly<Record<string, string>>,
): Promise<string> {
  await mkdir(root, { recursive: true });
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
  return root;
}

/** Rows each seeded table gets; the keys are `schema.table` with raw (unquoted) names. */
export const SEED_ROW_COUNTS: Readonly<Record<string, number>> = {
  'public.customers': 1_000,
  'public.orders': 20_000,
  'public.attachments': 64,
  'public.audit_log': 0,
  'public.MixedCase': 7,
  'billing.invoices': 500,
};

/** Each attachment is 2048 × 16 random bytes = 32 KiB; 64 of them ≈ 2 MiB, incompressible. */
const ATTACHMENT_CHUNKS = 2_048;

/**
 * One transaction, deterministic (setseed), no extensions needed. Covers: unicode and
 * emoji text, quotes/tabs/newlines, numeric, timestamptz, jsonb, an enum, FKs and
 * indexes, a generated column, random bytea in TOAST, an empty table, a second schema,
 * a mixed-case quoted table name, a standalone sequence and a view.
 */
const SEED_SQL = `
BEGIN;
SELECT setseed(0.42);

CREATE SCHEMA billing;
CREATE TYPE public.order_status AS ENUM ('pending', 'paid', 'shipped', 'cancelled');

CREATE TABLE public.customers (
  id          bigserial PRIMARY KEY,
  name        text NOT NULL,
  email       text NOT NULL UNIQUE,
  balance     numeric(14, 2) NOT NULL DEFAULT 0,
  created_at  timestamptz NOT NULL,
  profile     jsonb NOT NULL DEFAULT '{}'
);
INSERT INTO public.customers (name, email, balance, created_at, profile)
SELECT
  (ARRAY['Zoë Müller', 'José Ñúñez', '李小龙', 'Ольга Петрова', '🚀 Rocket Co 🐘',
         'O''Brien "the quoted"', E'tab\\there\\nnewline', 'Plain Name'])[1 + i % 8] || ' #' || i,
  'customer' || i || '@example.test',
  round((random() * 200000 - 50000)::numeric, 2),
  timestamptz '2024-01-01 00:00:00+00' + (i * interval '37 minutes'),
  jsonb_build_object('tier', (ARRAY['free', 'pro', 'enterprise'])[1 + i % 3],
                     'tags', jsonb_build_array('t' || (i % 5), '✓'),
                     'score', i * 1.5)
FROM generate_series(1, ${SEED_ROW_COUNTS['public.customers']}) AS i;

CREATE TABLE public.orders (
  id           bigserial PRIMARY KEY,
  customer_id  bigint NOT NULL REFERENCES public.customers (id),
  status       public.order_status NOT NULL,
  amount       numeric(12, 2) NOT NULL,
  placed_at    timestamptz NOT NULL,
  note         text
);
INSERT INTO public.orders (customer_id, status, amount, placed_at, note)
SELECT
  1 + (i * 7919) % ${SEED_ROW_COUNTS['public.customers']},
  (ARRAY['pending', 'paid', 'shipped', 'cancelled']::public.order_status[])[1 + i % 4],
  round((random() * 1000)::numeric, 2),
  timestamptz '2025-01-01 00:00:00+00' + (i * interval '90 seconds'),
  CASE WHEN i % 10 = 0 THEN NULL ELSE 'order note ' || md5(i::text) END
FROM generate_series(1, ${SEED_ROW_COUNTS['public.orders']}) AS i;
CREATE INDEX orders_customer_id_idx ON public.orders (customer_id);
CREATE INDEX orders_placed_at_idx ON public.orders (placed_at DESC);

CREATE TABLE public.attachments (
  id              serial PRIMARY KEY,
  order_id        bigint REFERENCES public.orders (id) ON DELETE SET NULL,
  filename        text NOT NULL,
  content         bytea NOT NULL,
  content_sha256  bytea GENERATED ALWAYS AS (sha256(content)) STORED
);
INSERT INTO public.attachments (order_id, filename, content)
SELECT
  a * 100,
  'scan-' || a || '.bin',
  (SELECT decode(string_agg(md5(random()::text || a || c), ''), 'hex')
     FROM generate_series(1, ${ATTACHMENT_CHUNKS}) AS c)
FROM generate_series(1, ${SEED_ROW_COUNTS['public.attachments']}) AS a;

CREATE TABLE public.audit_log (
  id       bigserial PRIMARY KEY,
  at       timestamptz NOT NULL DEFAULT now(),
  message  text NOT NULL
);

CREATE TABLE public."MixedCase" (
  "Id"     integer PRIMARY KEY,
  "Value"  text
);
INSERT INTO public."MixedCase" ("Id", "Value")
SELECT i, 'Value ' || i FROM generate_series(1, ${SEED_ROW_COUNTS['public.MixedCase']}) AS i;

CREATE SEQUENCE billing.invoice_number_seq START WITH 100000;
CREATE TABLE billing.invoices (
  id           bigint PRIMARY KEY DEFAULT nextval('billing.invoice_number_seq'),
  customer_id  bigint NOT NULL REFERENCES public.customers (id),
  total        numeric(14, 2) NOT NULL,
  issued_on    date NOT NULL,
  paid         boolean NOT NULL DEFAULT false,
  lines        jsonb NOT NULL
);
ALTER SEQUENCE billing.invoice_number_seq OWNED BY billing.invoices.id;
INSERT INTO billing.invoices (customer_id, total, issued_on, paid, lines)
SELECT
  1 + i % ${SEED_ROW_COUNTS['public.customers']},
  round((random() * 5000)::numeric, 2),
  date '2025-01-01' + i,
  i % 3 = 0,
  jsonb_build_array(jsonb_build_object('sku', 'SKU-' || i, 'qty', 1 + i % 4))
FROM generate_series(1, ${SEED_ROW_COUNTS['billing.invoices']}) AS i;
CREATE INDEX invoices_customer_id_idx ON billing.invoices (customer_id);

CREATE VIEW public.customer_order_totals AS
SELECT c.id, c.name, count(o.id) AS orders, coalesce(sum(o.amount), 0) AS total
FROM public.customers c LEFT JOIN public.orders o ON o.customer_id = c.id
GROUP BY c.id, c.name;

COMMIT;
ANALYZE;
`;

/**
 * Creates a realistic mixed schema in `database` (which must exist and be empty) and
 * returns the exact row count of every table it created, keyed by `schema.table`.
 */
export async function seedDatabase(
  cluster: PgCluster,
  database: string,
): Promise<Record<string, number>> {
  await cluster.query(database, SEED_SQL);
  return { ...SEED_ROW_COUNTS };
}

/** The database the cluster pool seeds once per cluster (`seedDatabase`), as a template. */
export const SEED_TEMPLATE = 'pgdr_seed_template';

/**
 * Creates `database` holding what `seedDatabase` puts there and returns its row counts:
 * a copy of the cluster's seed template when it has one (a pooled cluster), else created
 * and seeded here.
 */
export async function createSeededDatabase(
  cluster: PgCluster,
  database: string,
): Promise<Record<string, number>> {
  const [template] = await cluster.query(
    'postgres',
    'SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate',
    [SEED_TEMPLATE],
  );
  if (template === undefined) {
    await cluster.createDatabase(database);
    return seedDatabase(cluster, database);
  }
  await cluster.query(
    'postgres',
    `CREATE DATABASE ${quoteIdent(database)} TEMPLATE ${quoteIdent(SEED_TEMPLATE)}`,
  );
  return { ...SEED_ROW_COUNTS };
}

/**
 * Exact `count(*)` of every ordinary table outside the system schemas, keyed by
 * `schema.table` (raw names, e.g. `public.MixedCase`). Views, materialized views,
 * sequences and partitioned parents are not counted (their partitions are).
 */
export async function tableRowCounts(
  cluster: PgCluster,
  database: string,
): Promise<Record<string, number>> {
  const tables = await cluster.query<{ schema: string; name: string }>(
    database,
    `SELECT n.nspname AS schema, c.relname AS name
       FROM pg_catalog.pg_class c
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r'
        AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND n.nspname NOT LIKE 'pg\\_toast%'
        AND n.nspname NOT LIKE 'pg\\_temp\\_%'
      ORDER BY 1, 2`,
  );
  // 500 tables per query, each query its own transaction: one query over thousands of
  // tables would lock every table and index at once, more than a default server holds.
  const counts: Record<string, number> = {};
  for (let from = 0; from < tables.length; from += 500) {
    const batch = tables.slice(from, from + 500);
    const union = batch
      .map(
        ({ schema, name }, index) =>
          `SELECT ${index} AS i, count(*)::bigint AS n FROM ${quoteIdent(schema)}.${quoteIdent(name)}`,
      )
      .join('\nUNION ALL\n');
    for (const { i, n } of await cluster.query<{ i: number; n: string }>(database, union)) {
      const table = batch[i];
      if (table === undefined) throw new Error(`tableRowCounts: unexpected index ${i}`);
      counts[`${table.schema}.${table.name}`] = Number(n);
    }
  }
  return counts;
}
