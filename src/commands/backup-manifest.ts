import { type Compression, ZSTD_LEVEL } from '../compression/index.js';
import type { BackupSettings } from '../inputs/parse.js';
import { Manifest } from '../manifest/schema.js';
import type { Stored } from '../pipeline/store.js';
import type { BaseBackupFacts, Tablespace } from '../postgres/basebackup.js';
import type { Globals } from '../postgres/globals.js';
import type { ServerInfo, TableRowCount } from '../postgres/snapshot.js';
import type { SourceInfo } from '../source/index.js';
import type { Destination } from '../storage/destination.js';
import { VERSION } from '../version.js';

/** Everything a backup learnt on its way, that its manifest records. */
export interface ManifestParts {
  readonly id: string;
  readonly started: Date;
  readonly finished: Date;
  readonly source: SourceInfo;
  readonly server: ServerInfo;
  /** `16.4`: the server's version as people write it. */
  readonly serverVersion: string;
  readonly pgDumpVersion: string;
  readonly compression: Compression;
  /** pg_dump's archive size, before encryption (null when unknown). */
  readonly archiveBytes: number | null;
  readonly dumpSeconds: number;
  readonly tables: readonly TableRowCount[];
  /** `mode: physical`: what the base backup's tar said, and the cluster's tablespaces. */
  readonly physical?: {
    facts: BaseBackupFacts;
    tablespaces: readonly Tablespace[];
    superuser: string | null;
  } | null;
  readonly globals: Globals;
  readonly systemIdentifier: string | null;
  /** The config files bundled, relative to the workspace. */
  readonly files: readonly string[];
  /** The stored objects, in the manifest's order. */
  readonly objects: readonly Stored[];
  /** Every destination configured; `live` those that answered, `unreachable` why the others did not. */
  readonly destinations: readonly Destination[];
  readonly live: readonly Destination[];
  readonly unreachable: ReadonlyMap<Destination, string>;
}

/** The backup's manifest, before the commit: a destination is `ok` where every object is stored. */
export function buildManifest(settings: BackupSettings, p: ManifestParts): Manifest {
  return Manifest.parse({
    format: 'pg-dr/1',
    id: p.id,
    createdAt: p.started.toISOString(),
    finishedAt: p.finished.toISOString(),
    durationSeconds: (p.finished.getTime() - p.started.getTime()) / 1000,
    tool: { name: 'pg-dr', version: VERSION },
    source: p.source,
    database: databaseEntry(settings, p),
    globals: {
      roles: p.globals.roles.length,
      passwords:
        p.globals.passwords === 'included'
          ? 'included'
          : 'not included: the backup role cannot read pg_authid (not a superuser)',
    },
    config: { files: p.files },
    mode: settings.mode,
    ...(p.physical
      ? {
          physical: {
            pgBasebackupVersion: p.pgDumpVersion,
            timeline: p.physical.facts.timeline,
            startLsn: p.physical.facts.startLsn,
            endLsn: p.physical.facts.endLsn,
            backupLabel: p.physical.facts.backupLabel,
            tablespaces: p.physical.tablespaces,
            ...(p.physical.superuser !== null ? { superuser: p.physical.superuser } : {}),
          },
        }
      : {}),
    objects: p.objects.map((o) => o.entry),
    encryption:
      settings.encryption.mode === 'recipients'
        ? { scheme: 'age', mode: 'recipients', recipients: [...settings.encryption.recipients] }
        : { scheme: 'age', mode: 'passphrase' },
    destinations: p.destinations.map((d) => destinationEntry(d, p)),
  });
}

function databaseEntry(settings: BackupSettings, p: ManifestParts) {
  const { server, compression, globals } = p;
  return {
    name: server.database,
    serverVersion: p.serverVersion,
    serverVersionNum: server.versionNum,
    pgDumpVersion: p.pgDumpVersion,
    sizeBytes: server.sizeBytes,
    compression,
    compressionLevel: compression === 'zstd' ? ZSTD_LEVEL : compression === 'gzip' ? 6 : null,
    archiveBytes: p.archiveBytes,
    dumpSeconds: p.dumpSeconds,
    rowCounts: { method: settings.rowCounts, tables: p.tables },
    encoding: globals.database.encoding,
    locale: {
      provider: globals.database.localeProvider,
      collate: globals.database.collate,
      ctype: globals.database.ctype,
      locale: globals.database.locale,
    },
    systemIdentifier: p.systemIdentifier,
  };
}

function destinationEntry(d: Destination, p: ManifestParts) {
  const name = d.settings.name;
  const rs = p.objects.map((o) => o.results.find((r) => r.destination === name));
  const ok = rs.every((r) => r?.ok === true);
  const error =
    rs.find((r) => r && !r.ok)?.error ??
    (p.live.includes(d) ? null : (p.unreachable.get(d) ?? 'unreachable'));
  return {
    name,
    endpointHost: new URL(d.settings.endpoint).host,
    bucket: d.settings.bucket,
    ok,
    error: ok ? null : (error ?? 'not stored'),
    etags: Object.fromEntries(
      p.objects.flatMap((o) => {
        const r = o.results.find((x) => x.destination === name);
        return r?.etag ? [[o.entry.name, r.etag]] : [];
      }),
    ),
    uploadSeconds: rs.reduce((s, r) => s + (r?.seconds ?? 0), 0),
  };
}
