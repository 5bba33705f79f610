// A realistic database for the benchmark: text, jsonb, numeric, timestamps, several
// indexes and ~10% incompressible bytea (attachments) — not pgbench, whose rows compress
// ~35:1 and flatter every compressor. Grown batch by batch until pg_database_size reaches
// the target.
import type { PgCluster } from '../../test/harness/postgres.js';

export interface Generated {
  readonly database: string;
  /** pg_database_size after generation (indexes and catalog included). */
  readonly sizeBytes: number;
  /** Bytes of random bytea content (the incompressible part). */
  readonly byteaBytes: number;
  readonly rows: Readonly<Record<string, number>>;
  readonly seconds: number;
}

const WORDS = [
  'order',
  'shipped',
  'payment',
  'declined',
  'refund',
  'customer',
  'invoice',
  'warehouse',
  'delivery',
  'delayed',
  'address',
  'updated',
  'session',
  'login',
  'failed',
  'password',
  'reset',
  'coupon',
  'applied',
  'cart',
  'abandoned',
  'checkout',
  'started',
  'completed',
  'subscription',
  'renewed',
  'cancelled',
  'trial',
  'expired',
  'email',
  'sent',
  'bounced',
  'opened',
  'clicked',
  'support',
  'ticket',
  'opened',
  'closed',
  'escalated',
  'priority',
  'low',
  'high',
  'urgent',
  'stock',
  'reserved',
  'released',
  'price',
  'changed',
  'tax',
  'calculated',
  'region',
  'europe',
  'americas',
  'asia',
  'mobile',
  'desktop',
  'api',
  'webhook',
  'retry',
  'timeout',
];
const SCHEMA = `
CREATE TABLE customers (
  id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL, country char(2) NOT NULL,
  balance numeric(14,2) NOT NULL, created_at timestamptz NOT NULL, profile jsonb NOT NULL);
CREATE UNIQUE INDEX customers_email_key ON customers (email);
CREATE TABLE orders (
  id bigint PRIMARY KEY, customer_id bigint NOT NULL, status text NOT NULL,
  currency char(3) NOT NULL, amount numeric(12,2) NOT NULL, placed_at timestamptz NOT NULL,
  shipped_at timestamptz, lines jsonb NOT NULL, note text);
CREATE INDEX orders_customer_idx ON orders (customer_id);
CREATE INDEX orders_placed_idx ON orders (placed_at);
CREATE TABLE events (
  id bigint PRIMARY KEY, occurred_at timestamptz NOT NULL, kind text NOT NULL,
  actor_id bigint, payload jsonb NOT NULL, message text NOT NULL);
CREATE INDEX events_occurred_idx ON events (occurred_at);
CREATE INDEX events_kind_idx ON events (kind, occurred_at);
CREATE TABLE attachments (
  id bigint PRIMARY KEY, order_id bigint NOT NULL, filename text NOT NULL, mime text NOT NULL,
  created_at timestamptz NOT NULL, content bytea NOT NULL);
CREATE INDEX attachments_order_idx ON attachments (order_id);
`;

const w = () =>
  `(ARRAY[${WORDS.map((x) => `'${x}'`).join(',')}])[1 + floor(random() * ${WORDS.length})::int]`;
const words = (n: number) => Array.from({ length: n }, w).join(` || ' ' || `);

/** One batch: `n` orders, n/10 customers, 2n events; ids continue from `from`. */
function rowsBatch(from: number, n: number): string {
  const c0 = Math.floor(from / 10);
  const nc = Math.max(1, Math.floor(n / 10));
  return `
INSERT INTO customers
SELECT ${c0} + i,
  initcap(${w()}) || ' ' || initcap(${w()}) || ' ' || i,
  'user' || (${c0} + i) || '.' || substr(md5(i::text), 1, 6) || '@example.com',
  (ARRAY['DE','FR','US','GB','JP','BR','IN','NL','ES','IT'])[1 + i % 10],
  round((random() * 20000 - 2000)::numeric, 2),
  timestamptz '2020-01-01' + (${c0} + i) * interval '47 seconds',
  jsonb_build_object('tier', (ARRAY['free','pro','team','enterprise'])[1 + i % 4],
    'newsletter', i % 3 = 0, 'locale', (ARRAY['en-US','de-DE','fr-FR','ja-JP'])[1 + i % 4],
    'tags', jsonb_build_array(${w()}, ${w()}), 'score', round((random() * 100)::numeric, 1))
FROM generate_series(1, ${nc}) i;
INSERT INTO orders
SELECT ${from} + i, ${c0} + 1 + (i::bigint * 7919) % ${nc},
  (ARRAY['pending','paid','shipped','delivered','refunded'])[1 + i % 5],
  (ARRAY['EUR','USD','GBP','JPY'])[1 + i % 4],
  round((random() * 900 + 5)::numeric, 2),
  timestamptz '2023-01-01' + (${from} + i) * interval '9 seconds',
  CASE WHEN i % 5 > 1 THEN timestamptz '2023-01-02' + (${from} + i) * interval '9 seconds' END,
  jsonb_build_array(
    jsonb_build_object('sku', 'SKU-' || (i * 31 % 5000), 'qty', 1 + i % 4, 'price', round((random() * 200)::numeric, 2)),
    jsonb_build_object('sku', 'SKU-' || (i * 17 % 5000), 'qty', 1 + i % 3, 'price', round((random() * 80)::numeric, 2))),
  CASE WHEN i % 4 = 0 THEN ${words(6)} END
FROM generate_series(1, ${n}) i;
INSERT INTO events
SELECT ${2 * from} + i,
  timestamptz '2023-01-01' + (${2 * from} + i) * interval '4 seconds',
  (ARRAY['page_view','add_to_cart','checkout','login','logout','api_call','email'])[1 + i % 7],
  CASE WHEN i % 9 <> 0 THEN ${c0} + 1 + (i::bigint * 104729) % ${nc} END,
  jsonb_build_object('ip', '10.' || (i % 200) || '.' || (i * 7 % 250) || '.' || (i * 13 % 250),
    'ua', (ARRAY['Mozilla/5.0 (X11; Linux x86_64) Firefox/132.0','Mozilla/5.0 (Macintosh) Safari/605.1.15','okhttp/4.12.0','curl/8.5.0'])[1 + i % 4],
    'session', md5((${2 * from} + i / 20)::text), 'path', '/' || ${w()} || '/' || (i % 997),
    'ms', floor(random() * 900)::int),
  ${words(8)} || ' #' || md5(random()::text)
FROM generate_series(1, ${2 * n}) i;
`;
}

/** `count` attachments of random (incompressible) content, 2–30 KiB (16 KiB on average). */
function attachmentsBatch(
  fromId: number,
  orderFrom: number,
  orders: number,
  count: number,
): string {
  // 16 random bytes per gen_random_uuid (core since PostgreSQL 13): no extension needed.
  return `
INSERT INTO attachments
SELECT ${fromId} + i, ${orderFrom} + 1 + (i::bigint * 7919) % ${orders},
  'scan-' || (${fromId} + i) || (ARRAY['.pdf','.png','.jpg'])[1 + i % 3],
  (ARRAY['application/pdf','image/png','image/jpeg'])[1 + i % 3],
  timestamptz '2023-01-01' + (${fromId} + i) * interval '61 seconds',
  (SELECT string_agg(uuid_send(gen_random_uuid()), ''::bytea)
     FROM generate_series(1, 128 + (i::bigint * 7919) % 1793 + 0 * i))
FROM generate_series(1, ${count}) i;
`;
}

async function dbSize(pg: PgCluster, db: string): Promise<number> {
  const [r] = await pg.query<{ s: string }>(
    db,
    'SELECT pg_database_size(current_database())::text AS s',
  );
  return Number(r?.s ?? 0);
}

/**
 * Creates `db` and grows it to about `targetBytes` (pg_database_size). After each batch of
 * rows, attachments top the random bytea up to 1/9 of the rest: ~10% of the database.
 */
export async function generateDatabase(
  pg: PgCluster,
  db: string,
  targetBytes: number,
  log: (s: string) => void = () => undefined,
): Promise<Generated> {
  const t0 = Date.now();
  await pg.createDatabase(db);
  await pg.query(db, SCHEMA);
  const empty = await dbSize(pg, db);
  const want = Math.max(targetBytes - empty, 1024 * 1024);
  // ~1 KiB of table+index per order unit (measured); batches of ~1/12 of the target, ≥ 2000.
  const n = Math.max(2000, Math.min(200_000, Math.round(want / 12 / 1400)));
  let from = 0;
  let attId = 0;
  let byteaBytes = 0;
  let size = empty;
  while (size < targetBytes) {
    await pg.query(db, rowsBatch(from, n));
    size = await dbSize(pg, db);
    // Random content tops up to 1/9 of the rest, so it makes ~10% of the whole.
    const bytes = Math.max(0, (size - empty - byteaBytes) / 9 - byteaBytes);
    if (bytes > 64 * 1024) {
      const count = Math.max(1, Math.round(bytes / (16 * 1024)));
      await pg.query(db, attachmentsBatch(attId, from, n, count));
      attId += count;
      for (let i = 1; i <= count; i++) byteaBytes += 16 * (128 + ((i * 7919) % 1793));
    }
    from += n;
    size = await dbSize(pg, db);
    log(`  ${db}: ${(size / 1e6).toFixed(0)} / ${(targetBytes / 1e6).toFixed(0)} MB`);
  }
  await pg.query(db, 'VACUUM ANALYZE');
  const rows: Record<string, number> = {};
  for (const t of ['customers', 'orders', 'events', 'attachments']) {
    const [r] = await pg.query<{ n: string }>(db, `SELECT count(*)::text AS n FROM ${t}`);
    rows[t] = Number(r?.n ?? 0);
  }
  const [b] = await pg.query<{ s: string }>(
    db,
    'SELECT coalesce(sum(octet_length(content)), 0)::text AS s FROM attachments',
  );
  byteaBytes = Number(b?.s ?? byteaBytes);
  return {
    database: db,
    sizeBytes: await dbSize(pg, db),
    byteaBytes,
    rows,
    seconds: (Date.now() - t0) / 1000,
  };
}
