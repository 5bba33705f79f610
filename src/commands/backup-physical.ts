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
import { createPhysicalSlot, readSlot } from '../postgres/slots.js';
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
  await keepWalFromHere(session, server.versionNum, settings, host);
  return {
    client,
    tablespaces,
    clusterBytes: await clusterSize(session, server.sizeBytes),
    superuser: await bootstrapSuperuser(session),
  };
}

/**
 * With `wal-slot`: the slot exists before pg_basebackup starts (created here with
 * `create-slot: true`), so the server keeps the WAL from the base backup's start until the
 * first `wal` run ships it, whatever checkpoints happen in between. pg_basebackup's own
 * `-S`/`-C` cannot do it here: they need `-X stream`, which tar on stdout does not allow.
 */
export async function keepWalFromHere(
  session: Session,
  versionNum: number,
  settings: BackupSettings,
  host: Host,
): Promise<void> {
  const name = settings.walSlot;
  if (name === null) return;
  const slot = await readSlot(session, name, versionNum);
  if (!slot) {
    if (!settings.createSlot)
      throw new BackupFailed(
        `The replication slot "${name}" (wal-slot) does not exist. Fix: set create-slot: true (the backup creates it before it starts), or create it: SELECT pg_create_physical_replication_slot('${name}', true).`,
        null,
      );
    await createPhysicalSlot(session, name);
    const made = await readSlot(session, name, versionNum);
    host.info(
      `Created the replication slot "${name}" at ${made?.restartLsn ?? '?'}: the WAL from this backup's start is kept until wal ships it.`,
    );
    return;
  }
  if (slot.type !== 'physical' || slot.walStatus === 'lost' || slot.restartLsn === null)
    throw new BackupFailed(
      `The replication slot "${name}" (wal-slot) cannot keep this backup's WAL: ${slot.type !== 'physical' ? `it is a ${slot.type} slot` : slot.walStatus === 'lost' ? 'the server invalidated it (wal_status lost)' : 'it reserves no WAL'}. Fix: SELECT pg_drop_replication_slot('${name}'), then back up with create-slot: true${slot.type !== 'physical' ? ' (or choose another wal-slot name)' : ''}.`,
      null,
    );
  host.info(`The replication slot "${name}" keeps the WAL from ${slot.restartLsn} on.`);
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
