import { Readable } from 'node:stream';
import { backupChanged, backupDegraded, backupFailed } from '../alerts/conditions.js';
import { Heartbeat } from '../alerts/heartbeat.js';
import type { AlertCondition, AlertOutcome } from '../alerts/index.js';
import { collectConfigFiles, createBundleStream } from '../bundle/index.js';
import { type Compression, DUMP_EXTENSION, findZstd } from '../compression/index.js';
import { withinOr } from '../concurrency.js';
import type { Signer } from '../crypto/sshsig.js';
import { BackupFailed } from '../errors.js';
import type { BackupSettings } from '../inputs/parse.js';
import { newestCompleteAt, type PrefixNeighbours } from '../manifest/catalog.js';
import {
  backupIdTime,
  backupPrefix,
  MANIFEST_NAME,
  newBackupId,
  SIGNATURE_SUFFIX,
} from '../manifest/id.js';
import type { Manifest } from '../manifest/schema.js';
import { liveEstimate } from '../pipeline/estimate.js';
import { reasonOf, type Stored, storeObject } from '../pipeline/store.js';
import type { BaseBackupFacts, Tablespace } from '../postgres/basebackup.js';
import { type ClientInstall, formatServerVersion, toolPath } from '../postgres/binaries.js';
import { connect, pickClient } from '../postgres/clients.js';
import { startDump } from '../postgres/dump.js';
import { type Globals, globalsScript, readGlobals } from '../postgres/globals.js';
import { judgeLockBudget, readLockBudget } from '../postgres/locks.js';
import type { Session } from '../postgres/session.js';
import {
  COUNT_BATCH,
  countRows,
  exportSnapshot,
  readServerInfo,
  readSystemIdentifier,
  type ServerInfo,
  type TableRowCount,
} from '../postgres/snapshot.js';
import { type DatabaseTarget, describeTarget } from '../postgres/url.js';
import type { Host, SummaryTable } from '../report/host.js';
import { formatBytes, formatRate } from '../report/progress.js';
import { lit } from '../report/status.js';
import { describeSource, type SourceInfo } from '../source/index.js';
import type { Destination } from '../storage/destination.js';
import { VERSION } from '../version.js';
import {
  type ChangeCheck,
  changesSummary,
  checkChanges,
  NEIGHBOURS_WAIT_MS,
  othersWarning,
  readNeighbours,
  settle,
} from './backup-changes.js';
import { buildManifest } from './backup-manifest.js';
import { baseBackup, physicalRowCounts, preparePhysical, type Store } from './backup-physical.js';
import {
  type CommandResult,
  type Context,
  describeError,
  type Outputs,
  withAlerts,
} from './command.js';
import { prune, raiseUntrusted } from './prune.js';

export type BackupStatus = 'ok' | 'degraded' | 'failed';

export interface BackupResult {
  readonly id: string;
  readonly status: BackupStatus;
  readonly manifest: Manifest;
  readonly summary: SummaryTable;
  /** This backup compared with the previous one of the same database. */
  readonly changes: ChangeCheck;
}

/** What the backup command needs from the world, so a test can hand in its own. */
export interface BackupDeps {
  readonly host: Host;
  readonly destinations: readonly Destination[];
  readonly source: () => Promise<SourceInfo>;
  readonly now: () => Date;
  /** Aborted on cancellation (SIGTERM/SIGINT) or a dropped tunnel: the run stops and commits nothing. */
  readonly signal: AbortSignal;
  readonly env: NodeJS.ProcessEnv;
  /** Where PostgreSQL clients connect (an SSH tunnel's local end, when set). */
  readonly target?: DatabaseTarget;
}

export async function backup(settings: BackupSettings, deps: BackupDeps): Promise<BackupResult> {
  const { host } = deps;
  const started = deps.now();
  const target = deps.target ?? settings.database;
  if (deps.destinations.length < 2) {
    host.warning(
      'No secondary destination is configured: this backup will exist in one place only.',
    );
  }

  // The connection is opened while the destinations answer (each a round trip, long on a
  // far link); it is closed again when they stop the backup.
  const connecting = connect(target);
  connecting.catch(() => undefined);
  const { live, unreachable } = await host
    .group('Check destinations', () => checkDestinations(deps))
    .catch((e: unknown) => {
      // Not awaited: a database that does not answer must not delay this error.
      void connecting.then((s) => s.close()).catch(() => undefined);
      throw e;
    });

  const session = await host.group('Connect to PostgreSQL', async () => {
    host.info(`Connecting to ${describeTarget(settings.database)}`);
    return connecting.catch((e: Error) => {
      throw new BackupFailed(e.message, null);
    });
  });
  try {
    const facts = await inspectServer(session, settings, deps);
    const compression = await resolveCompression(settings.compression, deps);
    const files = await collectConfigFiles(settings.workspace, settings.configPaths);
    const id = newBackupId(started);
    const folder = backupPrefix(settings.prefix, id);
    // The previous backup of this database is read while the dump runs.
    const self = { name: facts.server.database, systemIdentifier: facts.systemIdentifier };
    const neighbours = readNeighbours(live, settings.prefix, self, {
      now: started,
      trusted: settings.trusted,
      exclude: id,
    });
    host.info(
      `Backup ${id} → ${live.map((d) => `${d.settings.name} (${d.settings.bucket}/${folder})`).join(', ')}`,
    );
    const store: Store = (o) =>
      storeObject({ ...o, encryption: settings.encryption, host, signal: deps.signal });

    const { globals } = facts;
    const before = { settings, files, globals, id, folder, live };
    const [config, globalsObject] = await storeBeforeDump(host, store, before);
    const dumpStarted = Date.now();
    const dumped = await copyDatabase({
      session,
      target,
      facts,
      compression,
      folder,
      live: storedAt(live, [config, globalsObject]),
      settings,
      deps,
      store,
      id,
      neighbours,
    });
    const dumpSeconds = (Date.now() - dumpStarted) / 1000;
    await session.exec('COMMIT').catch(() => undefined);

    const manifest = buildManifest(dumped.settings, {
      id,
      started,
      finished: deps.now(),
      source: await deps.source(),
      ...facts,
      pgDumpVersion: facts.client.version,
      compression,
      archiveBytes: dumped.archiveBytes,
      dumpSeconds,
      tables: dumped.tables,
      physical: dumped.physical,
      files,
      objects: [dumped.stored, config, globalsObject],
      destinations: deps.destinations,
      live,
      unreachable,
    });
    const committed = await commitBackup(settings, deps, manifest, folder);
    const found = await settle(neighbours, NEIGHBOURS_WAIT_MS);
    const others = othersWarning(found, self);
    if (others !== null) host.warning(others);
    return {
      ...committed,
      changes: checkChanges(found, committed.manifest, settings.maxRowDropPercent),
    };
  } catch (e) {
    if (e instanceof BackupFailed && e.id) await cleanup(backupPrefix(settings.prefix, e.id), deps);
    throw e;
  } finally {
    await session.close();
  }
}

/** What the backup learns from the server before it starts, and the pg_dump it uses. */
interface ServerInspection {
  readonly server: ServerInfo;
  /** `16.4`. */
  readonly serverVersion: string;
  readonly client: ClientInstall;
  readonly globals: Globals;
  readonly systemIdentifier: string | null;
  /** `mode: physical`: the cluster's tablespaces, and about how many bytes it holds. */
  readonly cluster: {
    readonly tablespaces: Tablespace[];
    readonly bytes: number;
    readonly superuser: string | null;
  } | null;
}

async function inspectServer(
  session: Session,
  settings: BackupSettings,
  deps: BackupDeps,
): Promise<ServerInspection> {
  const { host } = deps;
  const server = await readServerInfo(session);
  const serverVersion = formatServerVersion(server.versionNum);
  if (settings.mode === 'physical') return inspectForPhysical(session, server, settings, deps);
  const client = await pickClient(
    'pg_dump',
    serverVersion.major,
    `the server runs PostgreSQL ${serverVersion.version} and pg_dump cannot dump a newer server`,
    settings.pgClients,
    deps.env,
    (l) => host.info(l),
  ).catch((e: Error) => {
    throw new BackupFailed(e.message, null);
  });
  host.info(
    `Server ${serverVersion.version}, database "${server.database}" ${formatBytes(server.sizeBytes)}; pg_dump ${client.version} from ${client.binDir}`,
  );
  await checkLockBudget(session, server.versionNum, settings, host);
  const globals = await readGlobals(session, server.versionNum);
  const systemIdentifier = await readSystemIdentifier(session);
  if (globals.passwords !== 'included')
    host.warning(
      `The backup role cannot read password hashes (pg_authid): the ${globals.roles.length} roles are backed up without passwords, and a restore creates them without one.`,
    );
  host.info(
    `Database ${server.database}: encoding ${globals.database.encoding}, ${describeLocale(globals)}; ${globals.roles.length} roles`,
  );
  return {
    server,
    serverVersion: serverVersion.version,
    client,
    globals,
    systemIdentifier,
    cluster: null,
  };
}

/** What a physical backup checks before it starts: server, tablespaces, pg_basebackup. */
async function inspectForPhysical(
  session: Session,
  server: ServerInfo,
  settings: BackupSettings,
  deps: BackupDeps,
): Promise<ServerInspection> {
  const v = formatServerVersion(server.versionNum);
  const { client, tablespaces, clusterBytes, superuser } = await preparePhysical(
    session,
    { versionNum: server.versionNum, ...v, sizeBytes: server.sizeBytes },
    settings,
    deps.env,
    deps.host,
  );
  deps.host.info(
    `Server ${v.version}, cluster about ${formatBytes(clusterBytes)} (database "${server.database}" ${formatBytes(server.sizeBytes)}); pg_basebackup ${client.version} from ${client.binDir}`,
  );
  const globals = await readGlobals(session, server.versionNum);
  const systemIdentifier = await readSystemIdentifier(session);
  return {
    server,
    serverVersion: v.version,
    client,
    globals,
    systemIdentifier,
    cluster: { tablespaces, bytes: clusterBytes, superuser },
  };
}

/** The database's copy: pg_dump (logical), or pg_basebackup of the cluster (physical). */
async function copyDatabase(o: {
  session: Session;
  target: DatabaseTarget;
  facts: ServerInspection;
  compression: Compression;
  folder: string;
  live: readonly Destination[];
  settings: BackupSettings;
  deps: BackupDeps;
  store: Store;
  id: string;
  neighbours: Promise<PrefixNeighbours | string>;
}): Promise<{
  stored: Stored;
  archiveBytes: number | null;
  tables: TableRowCount[];
  /** The settings the manifest records (physical: row counts as taken). */
  settings: BackupSettings;
  physical: {
    facts: BaseBackupFacts;
    tablespaces: Tablespace[];
    superuser: string | null;
  } | null;
}> {
  const { host } = o.deps;
  const ext = DUMP_EXTENSION[o.compression];
  const cluster = o.facts.cluster;
  if (cluster === null) {
    const dumped = await host.group('Dump, compress, encrypt, upload', () =>
      dumpDatabase({ ...o, key: `${o.folder}database.dump.${ext}.age` }),
    );
    return { ...dumped, settings: o.settings, physical: null };
  }
  const rowCounts = physicalRowCounts(o.settings.rowCounts);
  if (rowCounts !== o.settings.rowCounts)
    host.info(
      "row-counts: a physical copy has no snapshot a second session could count in; planner estimates are recorded instead ('estimate').",
    );
  const based = await host.group('Base backup (pg_basebackup), compress, encrypt, upload', () =>
    baseBackup({
      ...o,
      client: o.facts.client,
      key: `${o.folder}base.tar.${ext}.age`,
      sizeBytes: cluster.bytes,
      rowCounts,
      env: o.deps.env,
      host,
    }),
  );
  return {
    ...based,
    settings: { ...o.settings, rowCounts },
    physical: {
      facts: based.facts,
      tablespaces: cluster.tablespaces,
      superuser: cluster.superuser,
    },
  };
}

/**
 * pg_dump holds a lock on every table until it ends: a database with more tables than the
 * server's lock table can hold fails, so it is refused here, before anything is uploaded.
 */
async function checkLockBudget(
  session: Session,
  versionNum: number,
  settings: BackupSettings,
  host: Host,
): Promise<void> {
  const budget = await readLockBudget(
    session,
    versionNum,
    settings.rowCounts === 'exact' ? COUNT_BATCH : 0,
  );
  const { verdict, message } = judgeLockBudget(budget);
  if (verdict === 'refuse') throw new BackupFailed(message, null);
  if (verdict === 'warn') host.warning(message);
  else host.info(message);
}

/** The live destinations where every one of `objects` is stored. */
function storedAt(live: readonly Destination[], objects: readonly Stored[]): Destination[] {
  return live.filter((d) =>
    objects.every((o) => o.results.find((r) => r.destination === d.settings.name)?.ok),
  );
}

/** The config bundle, then the globals script where the bundle is stored. */
async function storeBeforeDump(
  host: Host,
  store: Store,
  o: {
    settings: BackupSettings;
    files: readonly string[];
    globals: Globals;
    id: string;
    folder: string;
    live: readonly Destination[];
  },
): Promise<[Stored, Stored]> {
  const { settings, files, globals, id, folder, live } = o;
  const config = await host.group(`Config bundle (${files.length} files)`, () =>
    store({
      input: createBundleStream(settings.workspace, files),
      producers: Promise.resolve(),
      key: `${folder}config.tar.gz.age`,
      kind: 'config',
      live,
      expectedBytes: 0,
    }),
  );
  const globalsObject = await host.group(`Globals (${globals.roles.length} roles)`, () =>
    store({
      input: Readable.from([
        Buffer.from(globalsScript(globals, { backupId: id, tool: `pg-dr ${VERSION}` })),
      ]),
      producers: Promise.resolve(),
      key: `${folder}globals.sql.age`,
      kind: 'globals',
      live: storedAt(live, [config]),
      expectedBytes: 0,
    }),
  );
  return [config, globalsObject];
}

/**
 * pg_dump in the exported snapshot, streamed through compression and encryption to the
 * destinations, while the rows are counted in the same snapshot.
 */
async function dumpDatabase(o: {
  session: Session;
  target: DatabaseTarget;
  facts: ServerInspection;
  compression: Compression;
  key: string;
  live: readonly Destination[];
  settings: BackupSettings;
  deps: BackupDeps;
  store: Store;
  id: string;
  /** The previous backup, being read: its ratio refines the progress's estimate. */
  neighbours: Promise<PrefixNeighbours | string>;
}): Promise<{ stored: Stored; archiveBytes: number | null; tables: TableRowCount[] }> {
  const { session, target, compression } = o;
  const snapshot = await exportSnapshot(session);
  const dump = startDump({
    pgDump: toolPath(o.facts.client, 'pg_dump'),
    target,
    snapshot,
    compression,
    zstd: compression === 'zstd' ? await findZstd(o.deps.env) : null,
  });
  const counting = countRows(session, o.settings.rowCounts, {
    snapshot,
    open: () => connect(target),
  });
  // When a count fails, pg-dr stops pg_dump: the count's error is the cause, pg_dump's
  // "terminated by user" only its echo.
  const countFailed = (e: Error) =>
    new BackupFailed(`Counting rows failed: ${e.message} (pg-dr then stopped pg_dump)`, o.id);
  const failure: { count?: Error } = {};
  counting.catch((e: Error) => {
    failure.count = e;
    dump.kill();
  });
  const stored = await o
    .store({
      input: dump.stream,
      producers: dump.done,
      key: o.key,
      kind: 'database',
      live: o.live,
      expectedBytes: o.facts.server.sizeBytes,
      total: liveEstimate(o.facts.server.sizeBytes, compression, o.neighbours),
      kill: () => dump.kill(),
    })
    .catch((e: unknown) => {
      throw failure.count ? countFailed(failure.count) : e;
    });
  const archiveBytes = dump.rawBytes();
  const tables = await counting.catch((e: Error) => {
    throw countFailed(e);
  });
  return { stored, archiveBytes, tables };
}

/** The commit point, and the backup's status from where its manifest was written. */
async function commitBackup(
  settings: BackupSettings,
  deps: BackupDeps,
  manifest: Manifest,
  folder: string,
): Promise<Omit<BackupResult, 'changes'>> {
  const { id } = manifest;
  // The commit point: a manifest only where every object is stored.
  if (deps.signal.aborted)
    throw new BackupFailed(
      `${reasonOf(deps.signal)} before the commit point; nothing was committed.`,
      id,
    );
  const final = await deps.host.group('Commit (manifest)', () =>
    commit(
      settings.signer ? { ...manifest, signedBy: settings.signer.publicKey } : manifest,
      folder,
      deps,
      settings.signer,
    ),
  );
  const committed = final.destinations.filter((d) => d.ok).map((d) => d.name);
  const status: BackupStatus =
    committed.length === 0
      ? 'failed'
      : committed.length < deps.destinations.length
        ? 'degraded'
        : 'ok';
  if (status === 'failed') {
    throw new BackupFailed(
      `Backup ${id} failed at every destination: ${final.destinations.map((d) => `${d.name}: ${d.error}`).join('; ')}`,
      id,
    );
  }
  return { id, status, manifest: final, summary: backupSummary(final, status, committed) };
}

/** `libc C.UTF-8` or `icu de-DE (C.UTF-8)`. */
export function describeLocale(g: Pick<Globals, 'database'>): string {
  const d = g.database;
  const libc = d.collate === d.ctype ? d.collate : `${d.collate}/${d.ctype}`;
  return d.localeProvider === 'libc'
    ? `locale libc ${libc}`
    : `locale ${d.localeProvider} ${d.locale ?? '?'} (${libc})`;
}

/** The destinations that answered, and why the others did not (backup and wal). */
export async function checkDestinations(
  deps: Pick<BackupDeps, 'destinations' | 'host'>,
): Promise<{ live: Destination[]; unreachable: Map<Destination, string> }> {
  const live: Destination[] = [];
  const unreachable = new Map<Destination, string>();
  // All at once (each check is a round trip, long on a far link); reported in order.
  const checks = await Promise.allSettled(deps.destinations.map((d) => d.check()));
  for (const [i, d] of deps.destinations.entries()) {
    const c = checks[i] as PromiseSettledResult<void>;
    if (c.status === 'fulfilled') {
      live.push(d);
      deps.host.info(
        `${d.settings.name}: bucket ${d.settings.bucket} at ${new URL(d.settings.endpoint).host} is reachable`,
      );
      continue;
    }
    const e = c.reason as Error;
    if (e.name === 'InputError') throw e;
    unreachable.set(d, e.message);
    deps.host.warning(e.message);
  }
  if (live.length === 0)
    throw new BackupFailed(
      `No destination is reachable: ${[...deps.destinations].map((d) => unreachable.get(d)).join('; ')}`,
      null,
    );
  return { live, unreachable };
}

async function resolveCompression(wanted: Compression, deps: BackupDeps): Promise<Compression> {
  if (wanted !== 'zstd' || (await findZstd(deps.env))) return wanted;
  deps.host.warning(
    "compression 'zstd' was asked for but no zstd binary is on PATH: using pg_dump's gzip (slower).",
  );
  return 'gzip';
}

/**
 * Writes the manifest to each destination where every object is stored. Returns the
 * manifest as it stands after the commit: a destination whose manifest could not be
 * written is not complete there, and says why.
 */
async function commit(
  manifest: Manifest,
  folder: string,
  deps: BackupDeps,
  signer: Signer | null,
): Promise<Manifest> {
  const body = `${JSON.stringify(manifest, null, 2)}\n`;
  // The signature goes first: a manifest is never readable before its signature is there.
  const signature = signer ? signer.sign(Buffer.from(body)) : null;
  const failed = new Map<string, string>();
  const writing = deps.destinations.filter(
    (d) => manifest.destinations.find((x) => x.name === d.settings.name)?.ok,
  );
  // Every destination at once; each writes its signature before its manifest.
  const written = await Promise.allSettled(
    writing.map(async (d) => {
      if (signature)
        await d.put(`${folder}${MANIFEST_NAME}${SIGNATURE_SUFFIX}`, signature, 'text/plain');
      await d.put(`${folder}${MANIFEST_NAME}`, body, 'application/json');
    }),
  );
  for (const [i, d] of writing.entries()) {
    const w = written[i] as PromiseSettledResult<void>;
    if (w.status === 'fulfilled') {
      deps.host.info(
        `${d.settings.name}: manifest written — backup ${manifest.id} is complete there`,
      );
      continue;
    }
    const why = d.describeError(w.reason);
    failed.set(d.settings.name, `manifest not written: ${why}`);
    deps.host.warning(
      `${d.settings.name}: manifest could not be written (${why}): the backup is incomplete there`,
    );
  }
  return {
    ...manifest,
    destinations: manifest.destinations.map((x) =>
      failed.has(x.name)
        ? { ...x, ok: false, error: failed.get(x.name) ?? 'manifest not written' }
        : x,
    ),
  };
}

/**
 * Best effort: removes the objects a failed backup left (never a manifest: none was written).
 * Bounded: after a cancel the job must end within the runner's grace period, and a
 * hanging destination would not let it. What is left, prune removes (incomplete, > 24 h).
 */
async function cleanup(folder: string, deps: BackupDeps): Promise<void> {
  await Promise.race([
    removeAll(folder, deps),
    new Promise((r) => setTimeout(r, deps.signal.aborted ? 2000 : 10_000).unref()),
  ]);
}

async function removeAll(folder: string, deps: BackupDeps): Promise<void> {
  for (const d of deps.destinations) {
    try {
      for await (const o of d.list(folder)) await d.remove(o.key);
    } catch {
      // Left for prune, which removes incomplete backups older than a day.
    }
  }
}

function backupSummary(
  m: Manifest,
  status: BackupStatus,
  committed: readonly string[],
): SummaryTable {
  const db = m.objects.find((o) => o.kind === 'database' || o.kind === 'base');
  const ratio =
    db && m.database.archiveBytes ? (m.database.archiveBytes / db.plaintext.bytes).toFixed(2) : '—';
  const rows: string[][] = [
    ['Status', lit(status, status)],
    ['Database', `${m.database.name} (${formatBytes(m.database.sizeBytes)})`],
    m.physical
      ? [
          'Server / pg_basebackup',
          `${m.database.serverVersion} / ${m.physical.pgBasebackupVersion} (physical: timeline ${m.physical.timeline}, ${m.physical.startLsn} → ${m.physical.endLsn})`,
        ]
      : ['Server / pg_dump', `${m.database.serverVersion} / ${m.database.pgDumpVersion}`],
    [
      'Encoding / locale',
      m.database.encoding && m.database.locale
        ? `${m.database.encoding} / ${m.database.locale.provider} ${m.database.locale.locale ?? m.database.locale.collate}`
        : '—',
    ],
    ['Roles', m.globals ? `${m.globals.roles} (passwords ${m.globals.passwords})` : '—'],
    [
      'Archive → stored',
      `${m.database.archiveBytes === null ? '—' : formatBytes(m.database.archiveBytes)} → ${db ? formatBytes(db.encrypted.bytes) : '—'}`,
    ],
    ['Compression', `${m.database.compression} (ratio ${ratio})`],
    [
      'Tables',
      `${m.database.rowCounts.tables.length} (row counts: ${m.database.rowCounts.method})`,
    ],
    ['Config files', String(m.config.files.length)],
    [
      'Duration',
      `${m.durationSeconds.toFixed(1)} s (dump ${m.database.dumpSeconds.toFixed(1)} s, ${db ? formatRate(m.database.sizeBytes, m.database.dumpSeconds) : '—'} of database)`,
    ],
    [
      'Commit',
      [m.source.repository, m.source.commit?.slice(0, 12), m.source.ref]
        .filter(Boolean)
        .join(' ') || '—',
    ],
  ];
  for (const d of m.destinations) {
    rows.push([
      `Destination ${d.name}`,
      committed.includes(d.name)
        ? `✅ stored in ${d.bucket} at ${d.endpointHost}`
        : `❌ ${d.error ?? 'manifest not written'}`,
    ]);
  }
  return { title: `pg-dr backup: ${lit(status, status)}`, header: ['Backup', m.id], rows };
}

/** The backup command: backs up, raises or clears its alerts, prunes after it when asked. */
export async function runBackup(settings: BackupSettings, ctx: Context): Promise<CommandResult> {
  const heartbeat = new Heartbeat(settings.heartbeatUrl, ctx.host);
  heartbeat.start();
  const result = await backupAndAlert(settings, ctx).catch(async (e: unknown) => {
    await heartbeat.finish('fail', `pg-dr backup failed: ${describeError(e)}`);
    throw e;
  });
  await heartbeat.finish(
    result.failure ? 'fail' : 'success',
    result.failure ? `pg-dr backup failed: ${result.failure}` : 'pg-dr backup ok',
  );
  return result;
}

async function backupAndAlert(settings: BackupSettings, ctx: Context): Promise<CommandResult> {
  const { host, env, feed, destinations } = ctx;
  const r = await backup(settings, {
    host,
    destinations,
    source: () => describeSource(env, settings.workspace),
    now: () => new Date(),
    signal: ctx.signal,
    env,
    ...(ctx.target ? { target: ctx.target } : {}),
  }).catch(async (e: unknown) => {
    // Looked for only when an issue can be written, and not on a cancelled run: the runner
    // kills the job seconds after cancelling it, and the issue must go out first.
    const lastGood =
      settings.githubToken !== '' && !ctx.signal.aborted
        ? await lastGoodBackup(settings, destinations)
        : undefined;
    await feed.raise({
      ...backupFailed(describeError(e), settings.database.database),
      ...(lastGood !== undefined ? { lastGood } : {}),
    });
    throw e;
  });
  const alerts = [
    await feed.clear('backup-failed', `backup ${r.id} completed (${r.status}).`),
    r.status === 'degraded'
      ? await feed.raise(backupDegraded(r.manifest))
      : await feed.clear('backup-degraded', `backup ${r.id} is complete at every destination.`),
  ];
  const changed = await changeAlert(settings, r, feed);
  if (changed) alerts.push(changed);
  const changes = changesSummary(r.changes, settings.maxRowDropPercent);
  const tables = changes ? [r.summary, changes] : [r.summary];
  const pruned =
    settings.pruneAfter && r.status !== 'failed'
      ? await prune(
          { ...settings, ...settings.pruneAfter, command: 'prune' },
          { host, destinations, now: () => new Date() },
        )
      : null;
  if (pruned) alerts.push(...(await raiseUntrusted(feed, pruned.report)));
  return {
    outputs: { ...(pruned ? { report: { prune: pruned.report } } : {}), ...backupOutputs(r) },
    tables: withAlerts(pruned ? [...tables, pruned.summary] : tables, alerts),
    failure:
      degradedFailure(settings, r) ??
      (pruned && !pruned.report.ok
        ? 'The backup succeeded, but pruning after it did not (see the prune table).'
        : null),
  };
}

/**
 * Raises `backup-changed` when this backup differs sharply from the previous one of its
 * database; clears it when the comparison found nothing. Left as it is when there was
 * nothing to compare with, or the previous backup could not be read.
 */
async function changeAlert(
  settings: BackupSettings,
  r: BackupResult,
  feed: Context['feed'],
): Promise<AlertOutcome | null> {
  if (r.changes.state !== 'compared') return null;
  const c = r.changes.changes;
  if (c.reasons.length > 0)
    return feed.raise(backupChanged(r.manifest, c, settings.maxRowDropPercent));
  return feed.clear(
    'backup-changed',
    `backup ${r.id} shows no sharp change since ${c.previous.id}.`,
  );
}

/** How long a failed backup looks for the last good one before its alert goes without it. */
const LAST_GOOD_TIMEOUT_MS = 10_000;

/**
 * The newest complete backup, for the `backup-failed` issue: per destination one listing and
 * the newest committed manifest (a few reads, not the whole catalog), all at once, within
 * {@link LAST_GOOD_TIMEOUT_MS}. Null when no destination holds one; undefined ("not known")
 * when a destination that could hold a newer one was not read.
 */
async function lastGoodBackup(
  settings: BackupSettings,
  destinations: readonly Destination[],
): Promise<AlertCondition['lastGood']> {
  const now = new Date();
  // Per destination: the newest complete id, 'none', or null when it cannot be told.
  const found: (string | null)[] = await Promise.all(
    destinations.map((d) =>
      withinOr(
        newestCompleteAt(d, settings.prefix, now, settings.trusted).then(
          (b) => (b === undefined ? null : (b?.id ?? 'none')),
          () => null,
        ),
        LAST_GOOD_TIMEOUT_MS,
        () => null,
      ),
    ),
  );
  const ids = found.filter((id): id is string => id !== null && id !== 'none').sort();
  const best = ids.at(-1);
  if (best === undefined) return found.every((id) => id === 'none') ? null : undefined;
  return {
    id: best,
    time: backupIdTime(best).toISOString(),
    where: destinations.filter((_, i) => found[i] === best).map((d) => d.settings.name),
  };
}

function backupOutputs(r: BackupResult): Outputs {
  const db = r.manifest.objects.find((o) => o.kind === 'database' || o.kind === 'base');
  return {
    'backup-id': r.id,
    status: r.status,
    manifest: r.manifest,
    'database-sha256': db?.encrypted.sha256 ?? '',
    'size-bytes': String(r.manifest.objects.reduce((s, o) => s + o.encrypted.bytes, 0)),
    destinations: r.manifest.destinations.map((d) => ({
      name: d.name,
      bucket: d.bucket,
      endpointHost: d.endpointHost,
      ok: d.ok,
      error: d.error,
    })),
  };
}

/** Why a degraded backup fails the step, when fail-on-degraded is set. */
function degradedFailure(settings: BackupSettings, r: BackupResult): string | null {
  if (r.status !== 'degraded' || !settings.failOnDegraded) return null;
  const where = r.manifest.destinations
    .filter((d) => !d.ok)
    .map((d) => (d.error?.startsWith(`${d.name}:`) ? d.error : `${d.name}: ${d.error}`))
    .join('; ');
  return `Backup ${r.id} is degraded: ${where} (set fail-on-degraded: false to accept one destination).`;
}
