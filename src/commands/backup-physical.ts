import type { Compression } from '../compression/index.js';
import { findZstd } from '../compression/index.js';
import { BackupFailed } from '../errors.js';
import type { BackupSettings } from '../inputs/parse.js';
import type { PrefixNeighbours } from '../manifest/catalog.js';
import { liveEstimate } from '../pipeline/estimate.js';
import type { Stored, StoreOptions } from '../pipeline/store.js';
import {
  type BaseBackupFacts,
  bootstrapSuperuser,
  checkPhysicalServer,
  checkReplicationRole,
  checkTablespaces,
  clusterSize,
  readTablespaces,
  startBaseBackup,
  type Tablespace,
} from '../postgres/basebackup.js';
import type { ClientInstall } from '../postgres/binaries.js';
import { pickSameMajor } from '../postgres/clients.js';
import type { Session } from '../postgres/session.js';
import { countRows, type RowCountMethod, type TableRowCount } from '../postgres/snapshot.js';
import type { DatabaseTarget } from '../postgres/url.js';
import type { Host } from '../report/host.js';
import type { Destination } from '../storage/destination.js';

/** Stores one object of this backup (its encryption, host and signal given). */
export type Store = (o: Omit<StoreOptions, 'encryption' | 'host' | 'signal'>) => Promise<Stored>;

/**
 * Before a physical backup: a server with backup_manifest (13+), no tablespace of its own
 * (one tar on stdout holds one), and pg_basebackup of the server's own major.
 */
export async function preparePhysical(
  session: Session,
  server: { versionNum: number; version: string; major: number; sizeBytes: number },
  settings: BackupSettings,
  env: NodeJS.ProcessEnv,
  host: Host,
): Promise<{
  client: ClientInstall;
  tablespaces: Tablespace[];
  clusterBytes: number;
  superuser: string | null;
}> {
  checkPhysicalServer(server.versionNum, server.version);
  await checkReplicationRole(session);
  const tablespaces = await readTablespaces(session);
  checkTablespaces(tablespaces);
  const client = await pickSameMajor(
    'pg_basebackup',
    server.major,
    `the server runs PostgreSQL ${server.version}`,
    settings.pgClients,
    env,
    (l) => host.info(l),
  ).catch((e: Error) => {
    throw new BackupFailed(e.message, null);
  });
  return {
    client,
    tablespaces,
    clusterBytes: await clusterSize(session, server.sizeBytes),
    superuser: await bootstrapSuperuser(session),
  };
}

/**
 * Row counts of a physical backup: a second session cannot count rows as they stand at the
 * base backup's end LSN (no snapshot matches a physical copy), so exact counts are not taken;
 * planner estimates are, labelled `estimate` (nothing exact for a drill to compare with).
 */
export function physicalRowCounts(wanted: RowCountMethod): RowCountMethod {
  return wanted === 'off' ? 'off' : 'estimate';
}

/** pg_basebackup of the cluster, streamed through compression and encryption to the destinations. */
export async function baseBackup(o: {
  session: Session;
  target: DatabaseTarget;
  client: ClientInstall;
  compression: Compression;
  key: string;
  live: readonly Destination[];
  sizeBytes: number;
  rowCounts: RowCountMethod;
  env: NodeJS.ProcessEnv;
  store: Store;
  id: string;
  host: Host;
  neighbours: Promise<PrefixNeighbours | string>;
}): Promise<{
  stored: Stored;
  archiveBytes: number | null;
  tables: TableRowCount[];
  facts: BaseBackupFacts;
}> {
  const tables = await countRows(o.session, o.rowCounts);
  const run = startBaseBackup({
    pgBasebackup: `${o.client.binDir}/pg_basebackup`,
    target: o.target,
    compression: o.compression,
    zstd: o.compression === 'zstd' ? await findZstd(o.env) : null,
    label: `pg-dr ${o.id}`,
  });
  const stored = await o.store({
    input: run.stream,
    producers: run.done,
    key: o.key,
    kind: 'base',
    live: o.live,
    expectedBytes: o.sizeBytes,
    total: liveEstimate(o.sizeBytes, o.compression, o.neighbours),
    kill: () => run.kill(),
  });
  const facts = await run.facts.catch((e: Error) => {
    throw new BackupFailed(e.message, o.id);
  });
  o.host.info(
    `Base backup on timeline ${facts.timeline} from ${facts.startLsn} to ${facts.endLsn}`,
  );
  return { stored, archiveBytes: run.rawBytes(), tables, facts };
}
