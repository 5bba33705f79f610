import { z } from 'zod';

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const bytes = z.number().int().nonnegative();
const isoTime = z.iso.datetime();

export const ObjectEntry = z.object({
  /** File name inside the backup folder, e.g. `database.dump.zst.age`. */
  name: z.string().min(1),
  /**
   * `globals`: the roles and database properties the database needs (`globals.sql`);
   * `base`: a physical base backup of the whole cluster (pg_basebackup's tar, `mode: physical`).
   */
  kind: z.enum(['database', 'config', 'globals', 'base']),
  /** What `age -d` gives back. */
  plaintext: z.object({ bytes, sha256 }),
  /** What is stored at every destination. */
  encrypted: z.object({ bytes, sha256 }),
});

export const DestinationEntry = z.object({
  name: z.string(),
  /** Host of the endpoint only: never a URL with credentials. */
  endpointHost: z.string(),
  bucket: z.string(),
  ok: z.boolean(),
  error: z.string().nullable(),
  /** ETag per object name, as returned by the store. */
  etags: z.record(z.string(), z.string()),
  /** Wall time of this destination's uploads. */
  uploadSeconds: z.number().nonnegative(),
});

export const Manifest = z.object({
  format: z.literal('pg-dr/1'),
  id: z.string().regex(/^\d{8}T\d{6}Z-[0-9a-f]{6}$/),
  createdAt: isoTime,
  finishedAt: isoTime,
  durationSeconds: z.number().nonnegative(),
  tool: z.object({ name: z.literal('pg-dr'), version: z.string() }),
  source: z.object({
    repository: z.string().nullable(),
    commit: z.string().nullable(),
    ref: z.string().nullable(),
    workflow: z.string().nullable(),
    runId: z.string().nullable(),
    runAttempt: z.string().nullable(),
    runUrl: z.string().nullable(),
    actor: z.string().nullable(),
  }),
  database: z.object({
    name: z.string(),
    serverVersion: z.string(),
    serverVersionNum: z.number().int(),
    pgDumpVersion: z.string(),
    /** pg_database_size() at dump time. */
    sizeBytes: bytes,
    compression: z.enum(['zstd', 'gzip', 'none']),
    compressionLevel: z.number().int().nullable(),
    /** Bytes of the custom-format archive before external compression; null for gzip (inside pg_dump). */
    archiveBytes: bytes.nullable(),
    dumpSeconds: z.number().nonnegative(),
    rowCounts: z.object({
      method: z.enum(['exact', 'estimate', 'off']),
      tables: z.array(z.object({ schema: z.string(), table: z.string(), rows: z.number().int() })),
    }),
    /** Encoding of the database (absent in backups made before pg-dr recorded it). */
    encoding: z.string().optional(),
    /** The default collation: provider, LC_COLLATE/LC_CTYPE, and the ICU/builtin locale. */
    locale: z
      .object({
        provider: z.enum(['libc', 'icu', 'builtin']),
        collate: z.string(),
        ctype: z.string(),
        locale: z.string().nullable(),
      })
      .optional(),
    /**
     * The cluster's system identifier (pg_control_system()), when the backup role may read it:
     * digits only, so a planted value cannot carry text into a warning or a table.
     */
    systemIdentifier: z
      .string()
      .regex(/^\d{1,20}$/)
      .nullable()
      .optional(),
  }),
  /** What `globals.sql` holds (absent in backups made before pg-dr backed up roles). */
  globals: z
    .object({
      roles: z.number().int().nonnegative(),
      /** `included`, or why the roles' password hashes are not. */
      passwords: z.string(),
    })
    .optional(),
  config: z.object({
    files: z.array(z.string()),
  }),
  objects: z.array(ObjectEntry).min(1),
  encryption: z.discriminatedUnion('mode', [
    z.object({
      scheme: z.literal('age'),
      mode: z.literal('recipients'),
      recipients: z.array(z.string()).min(1),
    }),
    z.object({ scheme: z.literal('age'), mode: z.literal('passphrase') }),
  ]),
  destinations: z.array(DestinationEntry).min(1),
  /** What the backup copies; absent in backups made before pg-dr had modes (all logical). */
  mode: z.enum(['logical', 'physical']).optional(),
  /** A physical backup's own facts (`mode: physical`), from its backup_label and backup_manifest. */
  physical: z
    .object({
      /** pg_basebackup's version, e.g. `15.10`. */
      pgBasebackupVersion: z.string(),
      /** The timeline the backup ends on. */
      timeline: z.number().int().positive(),
      startLsn: z.string().regex(/^[0-9A-F]+\/[0-9A-F]+$/),
      endLsn: z.string().regex(/^[0-9A-F]+\/[0-9A-F]+$/),
      /** The backup_label file as the server wrote it. */
      backupLabel: z.string(),
      /** Every tablespace of the cluster; `location` '' for pg_default and pg_global. */
      tablespaces: z.array(z.object({ name: z.string(), location: z.string() })),
      /** The cluster's bootstrap superuser (oid 10): how a drill enters its throwaway copy. */
      superuser: z.string().min(1).max(63).optional(),
    })
    .optional(),
  /** The public key whose signature (`manifest.json.sig`) covers these exact bytes, if signed. */
  signedBy: z.string().optional(),
});

export type Manifest = z.infer<typeof Manifest>;
export type ObjectEntry = z.infer<typeof ObjectEntry>;

/** A physical backup (pg_basebackup of the cluster): restored into a data directory, never by pg_restore. */
export function isPhysical(m: Manifest): boolean {
  return m.mode === 'physical' || m.objects.some((o) => o.kind === 'base');
}
export type DestinationEntry = z.infer<typeof DestinationEntry>;

/** Parses and checks a manifest read back from a bucket. */
export function parseManifest(text: string): Manifest {
  return Manifest.parse(JSON.parse(text));
}

/**
 * The major release of the pg_dump that wrote the archive: pg_restore must be as new. From
 * `pgDumpVersion` ("15.18" → 15; before PostgreSQL 10 the major had two parts, "9.6" → 9.6),
 * else from `serverVersionNum` (150018 → 15, 90624 → 9.6). The same rule as
 * postgres/binaries.ts parseClientVersion / formatServerVersion, read here from the manifest's
 * own fields so the manifest does not depend on postgres/; test/unit/dump-major.test.ts checks
 * that the two agree.
 */
export function dumpMajor(m: Manifest): number {
  const v = /^\s*(\d+)(?:\.(\d+))?/.exec(m.database.pgDumpVersion);
  if (v) {
    const first = Number(v[1]);
    return first >= 10 ? first : Number(`${first}.${v[2] ?? 0}`);
  }
  const num = m.database.serverVersionNum;
  const major = Math.floor(num / 10000);
  return num >= 100000 ? major : Number(`${major}.${Math.floor(num / 100) % 100}`);
}

export interface RowCountMismatch {
  readonly table: string;
  readonly expected: number;
  /** null: the table is missing. */
  readonly actual: number | null;
}

/**
 * Tables whose restored row count differs from the manifest's exact count. Empty when the
 * manifest's counts were estimated or not taken: then there is nothing exact to compare.
 */
export function rowCountMismatches(
  m: Manifest,
  restored: readonly { schema: string; table: string; rows: number }[],
): RowCountMismatch[] {
  if (m.database.rowCounts.method !== 'exact') return [];
  const actual = new Map(restored.map((c) => [`${c.schema}.${c.table}`, c.rows]));
  return m.database.rowCounts.tables
    .map((t) => ({
      table: `${t.schema}.${t.table}`,
      expected: t.rows,
      actual: actual.get(`${t.schema}.${t.table}`) ?? null,
    }))
    .filter((x) => x.actual !== x.expected);
}
