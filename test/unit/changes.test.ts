import { describe, expect, it } from 'vitest';
import { othersWarning } from '../../src/commands/backup-changes.js';
import {
  type CatalogEntry,
  databasesHeld,
  ofDatabase,
  prefixNeighbours,
} from '../../src/manifest/catalog.js';
import { compareBackups } from '../../src/manifest/changes.js';
import { MANIFEST_NAME } from '../../src/manifest/id.js';
import { type Manifest, parseManifest } from '../../src/manifest/schema.js';
import { type PruneCandidate, planPruneByDatabase } from '../../src/retention/plan.js';
import { memoryDestination } from '../harness/memory-destination.js';
import { plantedManifest } from '../harness/plant.js';

const NOW = new Date('2026-11-30T12:00:00Z');

/** A backup of `name` on cluster `cluster` with these row counts and archive size. */
function backup(
  id: string,
  o: {
    name?: string;
    cluster?: string | null;
    rows?: Record<string, number>;
    method?: 'exact' | 'estimate' | 'off';
    archive?: number | null;
  } = {},
): Manifest {
  const m = plantedManifest({
    id,
    createdAt: `${id.slice(0, 4)}-${id.slice(4, 6)}-${id.slice(6, 8)}T${id.slice(9, 11)}:${id.slice(11, 13)}:${id.slice(13, 15)}.000Z`,
    version: '0.1.0',
    objects: [{ name: 'database.dump.zst.age', kind: 'database', data: Buffer.alloc(10) }],
    destinations: [
      {
        name: 'b2',
        endpointHost: 'b2.example.com',
        bucket: 'dr',
        ok: true,
        error: null,
        etags: {},
        uploadSeconds: 1,
      },
    ],
  });
  return {
    ...m,
    database: {
      ...m.database,
      name: o.name ?? 'app',
      systemIdentifier: o.cluster === undefined ? '7311' : o.cluster,
      archiveBytes: o.archive === undefined ? 1_000_000 : o.archive,
      rowCounts: {
        method: o.method ?? 'exact',
        tables: Object.entries(o.rows ?? {}).map(([k, rows]) => {
          const [schema, table] = k.split('.') as [string, string];
          return { schema, table, rows };
        }),
      },
    },
  };
}

const A = '20261128T020000Z-aaaaaa';
const B = '20261129T020000Z-bbbbbb';
const C = '20261130T020000Z-cccccc';

describe('compareBackups', () => {
  const rows = { 'public.events': 80_000, 'public.orders': 20_000, 'public.tiny': 3 };

  it('an emptied table and a dropped one are reasons; growth and small losses are not', () => {
    const c = compareBackups(
      backup(A, { rows }),
      backup(B, { rows: { 'public.events': 0, 'public.orders': 25_000, 'public.new': 5 } }),
      50,
    );
    expect(c.dropped).toEqual([{ table: 'public.events', before: 80_000, after: 0 }]);
    expect(c.disappeared).toEqual([{ table: 'public.tiny', before: 3 }]);
    expect(c.appeared).toEqual([{ table: 'public.new', after: 5 }]);
    expect(c.totalRows).toEqual({ before: 100_000, after: 25_000 });
    expect(c.reasons).toEqual([
      'a table lost more than 50% of its rows (public.events: 80000 → 0)',
      'a table disappeared (public.tiny)',
    ]);
    expect(c.largest.map((d) => d.table)).toEqual(['public.events', 'public.orders']);
  });

  it('the limit is strict: exactly the percentage is not more than it', () => {
    const half = compareBackups(
      backup(A, { rows: { 'public.t': 100 } }),
      backup(B, { rows: { 'public.t': 50 } }),
      50,
    );
    expect(half.reasons).toEqual([]);
    const more = compareBackups(
      backup(A, { rows: { 'public.t': 100 } }),
      backup(B, { rows: { 'public.t': 49 } }),
      50,
    );
    expect(more.dropped).toHaveLength(1);
    // 100 leaves only disappeared tables.
    const off = compareBackups(
      backup(A, { rows: { 'public.t': 100, 'public.u': 1 } }),
      backup(B, { rows: { 'public.t': 0 }, archive: 1 }),
      100,
    );
    expect(off.reasons).toEqual(['a table disappeared (public.u)']);
  });

  it('the archive shrinking by more than the limit is a reason, compared only when measured alike', () => {
    const shrunk = compareBackups(
      backup(A, { archive: 1_000_000 }),
      backup(B, { archive: 400_000 }),
      50,
    );
    expect(shrunk.archive).toEqual({ before: 1_000_000, after: 400_000, basis: 'archive' });
    expect(shrunk.reasons).toEqual(['the archive shrank by 60% (1000000 → 400000 bytes)']);
    // gzip backups have no archive size; the stored sizes compare only at the same compression.
    const gz = { ...backup(B, { archive: null }) };
    const other = { ...gz, database: { ...gz.database, compression: 'gzip' as const } };
    expect(compareBackups(backup(A, { archive: null }), other, 50).archive).toBeNull();
    expect(compareBackups(backup(A, { archive: null }), gz, 50).archive?.basis).toBe('stored');
  });

  it('a logical and a physical backup (pg_dump archive vs cluster tar) are not compared by size', () => {
    const physical = { ...backup(B, { archive: 400_000 }), mode: 'physical' as const };
    const c = compareBackups(backup(A, { archive: 1_000_000 }), physical, 50);
    expect(c.archive).toBeNull();
    expect(c.reasons).toEqual([]);
    const both = compareBackups(
      { ...backup(A, { archive: 1_000_000 }), mode: 'physical' },
      physical,
      50,
    );
    expect(both.archive).toEqual({ before: 1_000_000, after: 400_000, basis: 'archive' });
  });

  it('row counts taken differently, or not at all, are not compared', () => {
    const mixed = compareBackups(
      backup(A, { rows, method: 'estimate' }),
      backup(B, { rows: {}, method: 'exact' }),
      50,
    );
    expect(mixed.rowsNotCompared).toBe(
      'row counts were taken differently (estimate before, exact now)',
    );
    expect(mixed.disappeared).toEqual([]);
    expect(
      compareBackups(backup(A, { method: 'off' }), backup(B, { method: 'off' }), 50)
        .rowsNotCompared,
    ).toBe('row counts were not taken (row-counts: off)');
    // An estimate of -1 (never analysed) is not a count.
    const est = compareBackups(
      backup(A, { rows: { 'public.t': -1 }, method: 'estimate' }),
      backup(B, { rows: { 'public.t': 0 }, method: 'estimate' }),
      50,
    );
    expect(est.dropped).toEqual([]);
  });

  it('a table name from the catalog that needs quoting is shown quoted', () => {
    const c = compareBackups(
      backup(A, { rows: { 'public.Big Table': 10 } }),
      backup(B, { rows: {} }),
      50,
    );
    expect(c.disappeared[0]?.table).toBe('public."Big Table"');
  });
});

/** A destination holding these manifests under `db/`, all complete. */
function holding(manifests: readonly Manifest[]) {
  const { destination, store } = memoryDestination('b2');
  const bucket = store.buckets.get('dr') as Map<string, unknown>;
  for (const m of manifests) {
    const put = (key: string, data: Buffer) =>
      bucket.set(key, { data, contentType: 'application/octet-stream', lastModified: NOW });
    put(`db/${m.id}/${MANIFEST_NAME}`, Buffer.from(JSON.stringify(m)));
    put(`db/${m.id}/database.dump.zst.age`, Buffer.alloc(10));
  }
  return destination;
}

describe('the cluster a manifest names', () => {
  it('is digits only: a planted identifier with text in it makes the manifest unreadable', () => {
    const m = backup(A);
    expect(parseManifest(JSON.stringify(m)).database.systemIdentifier).toBe('7311');
    const planted = { ...m, database: { ...m.database, systemIdentifier: '1\n::error::x' } };
    expect(() => parseManifest(JSON.stringify(planted))).toThrow();
  });
});

describe('prefixNeighbours and the warning about another set-up', () => {
  const self = { name: 'app', systemIdentifier: '7311' };
  const opts = { now: NOW, trusted: null, exclude: '20261130T120000Z-ffffff' };

  it('the previous backup of the same database; another database newer than it is named', async () => {
    const dest = holding([
      backup(A),
      backup(B, { name: 'billing' }),
      backup(C, { name: 'billing' }),
    ]);
    const found = await prefixNeighbours(dest, 'db/', self, opts);
    expect(found.previous?.id).toBe(A);
    expect(found.others.map((m) => m.id)).toEqual([C, B]);
    expect(othersWarning(found, self)).toBe(
      `The prefix also holds backups of "billing" (newest ${C}). Give each database its own 'prefix': list shows them together, prune keeps each database's backups by its own rules, and restore or verify of 'latest' needs 'source-database' to choose.`,
    );
  });

  it('the same name from another cluster: preferred after this cluster; a move is said once', async () => {
    const moved = holding([backup(A, { cluster: '9999' }), backup(B, { cluster: '9999' })]);
    const first = await prefixNeighbours(moved, 'db/', self, opts);
    // No backup from this cluster yet: the old cluster's newest is compared with.
    expect(first.previous?.id).toBe(B);
    expect(othersWarning(first, self)).toBeNull();
    const after = holding([
      backup(A, { cluster: '9999' }),
      backup(B, { cluster: '9999' }),
      backup(C),
    ]);
    const next = await prefixNeighbours(after, 'db/', self, opts);
    expect(next.previous?.id).toBe(C);
    expect(next.others).toEqual([]);
    // Two clusters writing "app" in turn: the other one is newer than ours, every time.
    const twins = holding([backup(A), backup(B, { cluster: '9999' })]);
    const both = await prefixNeighbours(twins, 'db/', self, opts);
    expect(both.previous?.id).toBe(A);
    expect(othersWarning(both, self)).toMatch(
      /^The prefix also holds backups of "app" from another cluster \(system identifier 9999, newest 20261129T020000Z-bbbbbb\)\./,
    );
  });

  it('reads only the newest few manifests, never the backup in flight', async () => {
    const many = Array.from({ length: 30 }, (_, i) =>
      backup(`202611${String(i + 1).padStart(2, '0')}T020000Z-${String(i).padStart(6, '0')}`, {
        name: i < 25 ? 'app' : 'billing',
      }),
    );
    const dest = holding(many);
    let reads = 0;
    const counting = {
      ...dest,
      get: (key: string) => {
        reads++;
        return dest.get(key);
      },
    };
    const found = await prefixNeighbours(counting, 'db/', self, { ...opts, maxReads: 10 });
    expect(reads).toBe(10);
    expect(found.previous?.id).toBe(many[24]?.id);
    expect(found.others).toHaveLength(5);
  });
});

/** Catalog entries, complete at b2, of these manifests (newest first, as scanAll gives). */
function entries(ms: readonly Manifest[]): CatalogEntry[] {
  return [...ms]
    .sort((a, b) => (a.id < b.id ? 1 : -1))
    .map((m) => ({ id: m.id, manifest: m, at: [], completeAt: ['b2'] }));
}

describe('choosing by database', () => {
  it('databasesHeld names each database once, the most recently backed up first', () => {
    const e = entries([backup(A), backup(B, { name: 'billing' }), backup(C)]);
    expect(databasesHeld(e)).toEqual([
      { name: 'app', newest: C, complete: 2 },
      { name: 'billing', newest: B, complete: 1 },
    ]);
    expect(ofDatabase(e, 'billing').map((x) => x.id)).toEqual([B]);
    expect(() => ofDatabase(e, 'bill')).toThrow(
      `No complete backup of the database "bill" was found ('source-database'). The prefix holds backups of: "app" (newest ${C}, 2 complete), "billing" (newest ${B}, 1 complete).`,
    );
  });
});

describe('planPruneByDatabase', () => {
  const candidate = (id: string, database: string | null, complete = true): PruneCandidate => ({
    id,
    time: new Date(`${id.slice(0, 4)}-${id.slice(4, 6)}-${id.slice(6, 8)}T02:00:00Z`),
    complete,
    latestVerification: null,
    database,
  });
  const rules = { last: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0 };
  /** An hour after C: B is 25 h old, within the default 26. */
  const PRUNE_NOW = new Date('2026-11-30T03:00:00Z');

  it('keep-last counts each database on its own; one database gone stale holds back only itself', () => {
    const plan = planPruneByDatabase({
      entries: [
        candidate(A, 'app'),
        candidate(B, 'app'),
        candidate('20261127T020000Z-dddddd', 'billing'),
        candidate(C, 'billing'),
      ],
      rules,
      now: PRUNE_NOW,
      maxBackupAgeHours: 26,
    });
    expect(plan.refused).toBeNull();
    expect(Object.fromEntries(plan.decisions.map((d) => [d.id, d.action]))).toEqual({
      [C]: 'keep',
      [B]: 'keep',
      [A]: 'delete',
      '20261127T020000Z-dddddd': 'delete',
    });

    const stale = planPruneByDatabase({
      entries: [
        candidate(A, 'app'),
        candidate(B, 'app'),
        candidate('20261120T020000Z-dddddd', 'billing'),
        candidate('20261119T020000Z-eeeeee', 'billing'),
      ],
      rules,
      now: PRUNE_NOW,
      maxBackupAgeHours: 48,
    });
    expect(stale.refused).toMatch(
      /^"billing": the newest complete backup \(20261120T020000Z-dddddd\) is \d+ h old/,
    );
    expect(stale.decisions.filter((d) => d.action === 'delete').map((d) => d.id)).toEqual([A]);
  });

  it('max-deletions bounds the run as a whole, not each database', () => {
    const plan = planPruneByDatabase({
      entries: [
        candidate(A, 'app'),
        candidate(B, 'app'),
        candidate(C, 'app'),
        candidate('20261127T020000Z-dddddd', 'billing'),
        candidate('20261129T120000Z-eeeeee', 'billing'),
      ],
      rules,
      now: PRUNE_NOW,
      maxBackupAgeHours: 26,
      maxDeletions: 2,
    });
    expect(plan.refused).toMatch(/^this run would delete 3 backups, more than max-deletions \(2\)/);
    expect(plan.decisions.every((d) => d.action === 'keep')).toBe(true);
  });

  it('one database: exactly planPrune (no database reason added)', () => {
    const plan = planPruneByDatabase({
      entries: [candidate(A, 'app'), candidate(B, 'app'), candidate(C, null, false)],
      rules,
      now: PRUNE_NOW,
      maxBackupAgeHours: 26,
    });
    expect(plan.decisions.find((d) => d.id === B)?.reasons).toEqual(['newest', 'last']);
  });
});
