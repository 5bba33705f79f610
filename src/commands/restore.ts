import { mkdir, readdir } from 'node:fs/promises';
import { formatTime } from '../alerts/index.js';
import { extractBundle } from '../bundle/index.js';
import { InputError } from '../errors.js';
import type { RestoreSettings } from '../inputs/parse.js';
import {
  type CatalogEntry,
  databasesHeld,
  describeHeld,
  NoSuchBackup,
  ofDatabase,
  pickBackups,
  scanAll,
  UNAUTHENTICATED,
} from '../manifest/catalog.js';
import { backupPrefix } from '../manifest/id.js';
import { dumpMajor, isPhysical, type Manifest } from '../manifest/schema.js';
import { readObjectInto } from '../pipeline/readback.js';
import { tempSpace } from '../pipeline/restore-file.js';
import {
  compareRowCounts,
  type RestoreInto,
  type RowCheck,
  restoreInto,
} from '../pipeline/restore-into.js';
import { toolPath } from '../postgres/binaries.js';
import { pickClient, serverAccess } from '../postgres/clients.js';
import { parseLsn } from '../postgres/lsn.js';
import {
  checkRestorer,
  type DatabaseState,
  databaseName,
  databaseState,
  IN_PROGRESS_COMMENT,
  type Rebuild,
  randomSuffix,
  type ServerAccess,
  type ServerFacts,
  type SwitchResult,
  serverFacts,
  switchDatabase,
} from '../postgres/rebuild.js';
import { quoteLiteral } from '../postgres/sql.js';
import type { DatabaseTarget } from '../postgres/url.js';
import { describeTarget } from '../postgres/url.js';
import type { Host, SummaryTable } from '../report/host.js';
import { formatBytes, formatRate, progressTty, startProgress } from '../report/progress.js';
import { lit } from '../report/status.js';
import type { Destination } from '../storage/destination.js';
import type { CommandResult, Context } from './command.js';
import { checkKey, fallsBack, stamp } from './restore-common.js';
import { type PhysicalRestoreReport, restorePhysical } from './restore-physical.js';

export interface RestoreDeps {
  readonly host: Host;
  readonly destinations: readonly Destination[];
  readonly now: () => Date;
  readonly signal: AbortSignal;
  readonly env: NodeJS.ProcessEnv;
  /** Where PostgreSQL clients connect (an SSH tunnel's local end, when set). */
  readonly target?: DatabaseTarget;
}

export interface RestoreReport {
  readonly ok: boolean;
  readonly backupId: string;
  /** The destination the database came from. */
  readonly restoredFrom: string | null;
  readonly attempts: readonly { destination: string; ok: boolean; error: string | null }[];
  readonly seconds: number;
  readonly tables: number;
  readonly mismatches: readonly { table: string; expected: number; actual: number | null }[];
  readonly rowCounts: 'compared' | 'not compared (estimated in the manifest)' | 'not recorded';
  readonly configFiles: readonly string[] | null;
  /** The database restored into (its name once switched in). */
  readonly database: string;
  /** Where the database the restore replaced is kept, if it was. */
  readonly previous: string | null;
  /** Roles created on the target because they were missing. */
  readonly rolesCreated: readonly string[];
  /** Roles the backup names that already existed, left as they were. */
  readonly rolesExisting: readonly string[];
  /** What differs from the source, if anything. */
  readonly differences: readonly string[];
  /** A physical backup's restore into a data directory (then `database` is that folder). */
  readonly physical?: PhysicalRestoreReport | null;
}

export interface RestoreResult {
  readonly report: RestoreReport;
  readonly manifest: Manifest;
  readonly summary: SummaryTable;
}

export async function restore(
  settings: RestoreSettings,
  deps: RestoreDeps,
): Promise<RestoreResult> {
  const { host } = deps;
  const { backup, manifest } = await findBackup(settings, deps);
  const order = deps.destinations.filter((d) => backup.completeAt.includes(d.settings.name));
  host.info(
    `Backup ${backup.id} (${manifest.database.name}, ${manifest.createdAt}) is complete at ${backup.completeAt.join(', ')}`,
  );

  // Everything that can refuse the restore is checked before anything is written.
  if (isPhysical(manifest)) {
    if (!settings.physical)
      throw new InputError(
        'data-dir',
        `Backup ${backup.id} is a physical backup (pg_basebackup of the whole cluster): it is restored into a data directory, not by pg_restore into 'database-url'. Set 'data-dir' to an empty folder (and start: true to start a server on it).`,
      );
    return restorePhysical(settings, settings.physical, deps, backup, manifest);
  }
  if (settings.physical || !settings.database)
    throw new InputError(
      'data-dir',
      `Backup ${backup.id} is a logical backup (pg_dump): it is restored into 'database-url', not into a data directory. Clear 'data-dir' and set 'database-url'.`,
    );
  await checkKey(settings, manifest);
  if (settings.configDir) await checkConfigDir(settings.configDir, settings.force);
  const pgRestore = await pickClient(
    'pg_restore',
    dumpMajor(manifest),
    `the archive was written by pg_dump ${manifest.database.pgDumpVersion}`,
    settings.pgClients,
    deps.env,
    (l) => host.info(l),
  );
  const t = await checkTarget(settings, settings.database, deps, manifest);
  const run: RestoreRun = {
    settings,
    deps,
    manifest,
    target: t,
    folder: backupPrefix(settings.prefix, backup.id),
    pgRestore: toolPath(pgRestore, 'pg_restore'),
  };
  const t0 = Date.now();
  const { attempts, restored } = await restoreFromFirst(run, order, t0);
  const base = {
    restoredFrom: restored?.from ?? null,
    attempts,
    seconds: (Date.now() - t0) / 1000,
    database: t.name,
    previous: null,
    rolesCreated: [] as string[],
    rolesExisting: [] as string[],
    differences: [] as string[],
    configFiles: null,
  };
  if (!restored) {
    return done(settings, backup.id, manifest, {
      ...base,
      ok: false,
      tables: 0,
      mismatches: [],
      rowCounts: 'not recorded',
    });
  }
  const { rebuild } = restored;
  const finished = await switchIn(run, restored);
  if (!finished.switched)
    return done(settings, backup.id, manifest, {
      ...base,
      ok: false,
      ...finished.check,
      differences: rebuild.differences,
    });
  const configFiles = await restoreConfig(run, restored.from);
  return done(settings, backup.id, manifest, {
    ...base,
    ok: true,
    ...finished.check,
    previous: finished.switched.previous,
    rolesCreated: [...rebuild.rolesCreated],
    rolesExisting: [...rebuild.rolesExisting],
    differences: [...rebuild.differences],
    configFiles,
  });
}

/** The backup the settings select, among those complete at the destinations allowed. */
async function findBackup(
  settings: RestoreSettings,
  deps: RestoreDeps,
): Promise<{ backup: CatalogEntry; manifest: Manifest }> {
  const { host } = deps;
  if (!settings.trusted) host.warning(UNAUTHENTICATED);
  const { entries, unreachable } = await host.group('Find the backup', () =>
    scanAll(deps.destinations, settings.prefix, deps.now(), settings.trusted),
  );
  for (const [name, why] of unreachable) host.warning(`${name}: cannot list backups: ${why}`);
  const candidates =
    settings.restoreFrom === 'any'
      ? entries
      : entries.map((e) => ({
          ...e,
          completeAt: e.completeAt.filter((n) => n === settings.restoreFrom),
        }));
  const [backup] = pickBackups(
    ofSourceDatabase(ofMode(candidates, settings), settings, host),
    settings.backup,
    deps.now(),
  );
  if (!backup?.manifest) throw new Error('internal: a complete backup without a manifest');
  const wanted = settings.sourceDatabase;
  if (wanted !== null && backup.manifest.database.name !== wanted)
    throw new NoSuchBackup(
      `Backup ${backup.id} is of the database ${JSON.stringify(backup.manifest.database.name)}, not ${JSON.stringify(wanted)} ('source-database'): clear one of the two.`,
    );
  return { backup, manifest: backup.manifest };
}

/**
 * The backups `latest` chooses among: those of `source-database`; else, when the prefix
 * holds several databases, those of the one named like the target; else it stops and names
 * them. An id chooses itself.
 */
function ofSourceDatabase(
  entries: readonly CatalogEntry[],
  settings: RestoreSettings,
  host: RestoreDeps['host'],
): readonly CatalogEntry[] {
  if (typeof settings.backup === 'object') return entries;
  if (settings.sourceDatabase !== null) return ofDatabase(entries, settings.sourceDatabase);
  const held = databasesHeld(entries);
  if (held.length <= 1) return entries;
  const target = settings.database?.database;
  if (target !== undefined && held.some((h) => h.name === target)) {
    host.info(
      `The prefix holds backups of ${held.length} databases; restoring the latest of ${JSON.stringify(target)}, named like the target database (set 'source-database' to choose another).`,
    );
    return ofDatabase(entries, target);
  }
  throw new NoSuchBackup(
    `The prefix holds backups of ${held.length} databases: ${describeHeld(held)}. Set 'source-database' to the one to restore, or 'backup-id' to a backup.`,
  );
}

/**
 * `latest` among physical backups when a data directory is the target, among logical ones
 * otherwise; none of that kind where the other kind exists is said plainly. An id chooses itself.
 */
function ofMode(
  entries: readonly CatalogEntry[],
  settings: RestoreSettings,
): readonly CatalogEntry[] {
  if (typeof settings.backup === 'object') return entries;
  const physical = settings.physical !== null;
  const complete = entries.filter((e) => e.manifest);
  const kept = complete.filter((e) => isPhysical(e.manifest as Manifest) === physical);
  if (kept.length === 0 && complete.length > 0)
    throw new NoSuchBackup(
      physical
        ? `No physical backup at the prefix: its ${complete.length} complete backup(s) are logical (pg_dump). Clear 'data-dir' to restore the newest into 'database-url', or take one with mode: physical.`
        : `No logical backup at the prefix: its ${complete.length} complete backup(s) are physical (pg_basebackup). Set 'data-dir' to restore the newest into a data directory.`,
    );
  return kept.length === 0 ? entries : beforeTarget(kept, settings);
}

/**
 * With a recovery target, `latest` means the newest physical backup that finished before it
 * (a time) or ends before it (an LSN): recovery replays WAL forward from a base, never back.
 */
function beforeTarget(
  entries: readonly CatalogEntry[],
  settings: RestoreSettings,
): readonly CatalogEntry[] {
  const target = settings.physical?.target;
  if (!target || target.kind === 'latest') return entries;
  const fits = (m: Manifest) =>
    target.kind === 'time'
      ? Date.parse(m.finishedAt) <= target.time.getTime()
      : m.physical !== undefined && parseLsn(m.physical.endLsn) <= parseLsn(target.lsn);
  const before = entries.filter((e) => e.manifest && fits(e.manifest as Manifest));
  if (before.length === 0)
    throw new NoSuchBackup(
      `No physical backup ${target.kind === 'time' ? `finished before ${target.time.toISOString()}` : `ends before ${target.lsn}`} ('${target.kind === 'time' ? 'recovery-target-time' : 'recovery-target-lsn'}'): the oldest complete one is ${[...entries].map((e) => e.id).sort()[0] ?? 'none'}. Recovery replays WAL forward from a base backup; choose a later target.`,
    );
  return before;
}

/** The target server and database, as checked before anything is written. */
export interface TargetCheck {
  readonly server: ServerAccess;
  readonly facts: ServerFacts;
  readonly state: DatabaseState;
  /** The target database's name. */
  readonly name: string;
}

/** What one restore works with, once everything is checked. */
export interface RestoreRun {
  readonly settings: RestoreSettings;
  readonly deps: RestoreDeps;
  readonly manifest: Manifest;
  readonly target: TargetCheck;
  /** The backup's folder. */
  readonly folder: string;
  /** The pg_restore to use. */
  readonly pgRestore: string;
}

/**
 * The target server answers, pg-dr may restore there (roles, ownership), and the target
 * database is empty (or force is set) with no session (or terminate-connections is set).
 */
export async function checkTarget(
  settings: RestoreSettings,
  database: DatabaseTarget,
  deps: RestoreDeps,
  manifest: Manifest,
): Promise<TargetCheck> {
  const { host } = deps;
  const server = serverAccess(deps.target ?? database, 'database-url', ['postgres', 'template1']);
  const name = database.database;
  const { facts, state, leftovers } = await host.group('Check the target server', async () => {
    const m = await server.maintenance().catch((e: Error) => {
      throw new Error(
        `Cannot connect to the server of 'database-url' through its maintenance database (postgres, then template1): ${e.message}`,
      );
    });
    let facts: ServerFacts;
    let leftovers: string[];
    try {
      facts = await serverFacts(m);
      leftovers = (
        await m.rows<{ n: string }>(
          `SELECT datname AS n FROM pg_catalog.pg_database
           WHERE pg_catalog.shobj_description(oid, 'pg_database') = ${quoteLiteral(IN_PROGRESS_COMMENT)}`,
        )
      ).map((r) => r.n);
    } finally {
      await m.close();
    }
    const state = await databaseState(server, name);
    return { facts, state, leftovers };
  });
  for (const l of leftovers)
    host.warning(
      `Database ${JSON.stringify(l)} is left from a restore that was interrupted; drop it when no restore is running (DROP DATABASE).`,
    );
  checkTargetState(settings, name, state);
  try {
    checkRestorer(
      manifest.objects.some((o) => o.kind === 'globals'),
      facts,
      'database-url',
      settings.ownership,
    );
  } catch (e) {
    throw new InputError('database-url', (e as Error).message);
  }
  return { server, facts, state, name };
}

function checkTargetState(settings: RestoreSettings, name: string, state: DatabaseState): void {
  if (state.exists && state.objects > 0 && !settings.force)
    throw new InputError(
      'force',
      `The target database ${JSON.stringify(name)} already has ${state.objects} objects (tables, views, sequences, functions, schemas, large objects). Restore into a new or empty database, or set force: true: the restore then goes into a new database that replaces it once complete, and ${settings.dropPrevious ? 'drops it (drop-previous: true)' : `keeps it as "${name}_before_<time>"`}.`,
    );
  if (state.connections.length > 0 && !settings.terminateConnections)
    throw new InputError(
      'terminate-connections',
      `The target database ${JSON.stringify(name)} has ${state.connections.length} open connection(s) (${state.connections.slice(0, 5).join(', ')}), which switching in the restored database would break. Stop the application first, or set terminate-connections: true to end them at the switch.`,
    );
}

/** A restored (not yet switched in) database, and the destination it came from. */
export interface Restored {
  readonly rebuild: Rebuild;
  /** The new database's name. */
  readonly name: string;
  readonly from: string;
}

/**
 * Restores into a new database from each destination in turn, until one succeeds; a wrong
 * key or a cancel stops the round (another destination would not do better).
 */
async function restoreFromFirst(
  run: RestoreRun,
  order: readonly Destination[],
  t0: number,
): Promise<{ attempts: RestoreReport['attempts'][number][]; restored: Restored | null }> {
  const { host } = run.deps;
  const attempts: RestoreReport['attempts'][number][] = [];
  const db = run.manifest.objects.find((o) => o.kind === 'database');
  if (!db) throw new Error(`Backup ${run.manifest.id} has no database object.`);
  for (const dest of order) {
    const name = databaseName(`${run.target.name}_pgdr_`, randomSuffix());
    const result = await host.group(
      `Restore ${db.name} from ${dest.settings.name} into a new database ${JSON.stringify(name)}`,
      () => restoreWithProgress(run, dest, name),
    );
    const dname = dest.settings.name;
    if (result.ok) {
      attempts.push({ destination: dname, ok: true, error: null });
      host.info(
        `${dname}: restored ${formatBytes(db.encrypted.bytes)} in ${((Date.now() - t0) / 1000).toFixed(1)} s (${formatRate(db.encrypted.bytes, (Date.now() - t0) / 1000)})`,
      );
      return { attempts, restored: { rebuild: result.rebuild, name, from: dname } };
    }
    attempts.push({ destination: dname, ok: false, error: result.read.error });
    host.error(
      `${dname}: the restore FAILED; the new database and the roles it created were dropped, the target is as it was: ${result.read.error}`,
    );
    if (!fallsBack(result.read)) break;
    if (run.deps.signal.aborted) break;
  }
  return { attempts, restored: null };
}

async function restoreWithProgress(
  run: RestoreRun,
  dest: Destination,
  name: string,
): Promise<RestoreInto> {
  const { settings, deps } = run;
  const { host } = deps;
  let read = 0;
  const db = run.manifest.objects.find((o) => o.kind === 'database');
  const jobs = settings.parallel.jobs;
  const progress = startProgress(
    host,
    {
      label: `restore from ${dest.settings.name}`,
      done: () => read,
      total: () => (db ? { bytes: db.encrypted.bytes, estimate: false } : null),
      finishing: jobs > 1 ? `pg_restore -j ${jobs} restoring` : 'pg_restore finishing',
    },
    { tty: progressTty(host) },
  );
  try {
    return await restoreInto({
      destination: dest,
      folder: run.folder,
      manifest: run.manifest,
      decryption: settings.decryption,
      server: run.target.server,
      facts: run.target.facts,
      ownership: settings.ownership,
      name,
      pgRestore: run.pgRestore,
      input: 'database-url',
      signal: deps.signal,
      env: deps.env,
      log: (l) => progress.host.info(l),
      onBytes: (n) => {
        read = n;
      },
      jobs: settings.parallel.jobs,
      tempDir: tempSpace(settings.parallel.tempDir, deps.env),
    });
  } finally {
    progress.stop();
  }
}

/**
 * Compares the row counts, then applies the database's properties and switches it in as
 * the target. Rows that differ discard it (`switched` null); so does any error, thrown.
 */
export async function switchIn(
  run: RestoreRun,
  { rebuild, name }: Restored,
): Promise<{ check: RowCheck; switched: SwitchResult | null }> {
  const { host } = run.deps;
  const { server, name: targetName, state } = run.target;
  let check: RowCheck;
  let switched: SwitchResult;
  try {
    check = await host.group('Compare row counts with the manifest', () =>
      compareRowCounts(server, name, run.manifest),
    );
    if (check.mismatches.length > 0) {
      await rebuild.discard();
      return { check, switched: null };
    }
    await host.group("Apply the database's properties", () => rebuild.applyProperties());
    switched = await host.group(
      `Switch ${JSON.stringify(name)} in as ${JSON.stringify(targetName)}`,
      () =>
        switchDatabase(server, {
          fresh: name,
          target: targetName,
          previous: databaseName(`${targetName}_before_`, stamp(run.deps.now())),
          terminate: run.settings.terminateConnections,
          drop: run.settings.dropPrevious ? 'always' : 'empty',
          targetWasEmpty: !state.exists || state.objects === 0,
        }),
    );
  } catch (e) {
    await rebuild.discard().catch((d: unknown) => host.warning((d as Error).message));
    throw e;
  }
  if (switched.previous)
    host.info(
      `The database it replaced is kept as ${JSON.stringify(switched.previous)}: drop it once you no longer need it.`,
    );
  if (switched.droppedPrevious)
    host.info(`The database it replaced was dropped (${switched.droppedPrevious}).`);
  if (switched.terminated > 0)
    host.warning(`${switched.terminated} session(s) on the target were ended.`);
  return { check, switched };
}

/** The config bundle, extracted into config-dir when it is set; null when not extracted. */
async function restoreConfig(run: RestoreRun, restoredFrom: string): Promise<string[] | null> {
  const { settings, deps } = run;
  const cfg = run.manifest.objects.find((o) => o.kind === 'config');
  if (!settings.configDir || !cfg) return null;
  const from = deps.destinations.find((d) => d.settings.name === restoredFrom) as Destination;
  return deps.host.group(`Extract the config bundle into ${settings.configDir}`, () =>
    extractConfig(from, `${run.folder}${cfg.name}`, cfg, settings),
  );
}

export async function checkConfigDir(dir: string, force: boolean): Promise<void> {
  let entries: string[] = [];
  try {
    entries = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR')
      throw new InputError(
        'config-dir',
        `Invalid 'config-dir': "${dir}" is a file. Expected a folder.`,
      );
    throw e;
  }
  if (entries.length > 0 && !force)
    throw new InputError(
      'config-dir',
      `'config-dir' "${dir}" is not empty (${entries.length} entries). Expected an empty or new folder, or force: true to overwrite files of the same names.`,
    );
}

export async function extractConfig(
  dest: Destination,
  key: string,
  cfg: Manifest['objects'][number],
  settings: RestoreSettings,
): Promise<string[]> {
  const dir = settings.configDir as string;
  await mkdir(dir, { recursive: true });
  const { read, value } = await readObjectInto(
    { destination: dest, key, entry: cfg, decryption: settings.decryption },
    // At most 200 times the compressed bundle (64 MiB at least) before its checksum is known.
    (plain) =>
      extractBundle(plain, dir, {
        maxBytes: Math.max(64 * 1024 ** 2, 200 * cfg.plaintext.bytes),
        maxEntries: 100_000,
      }),
  );
  if (!read.ok || !value) throw new Error(`The config bundle could not be restored: ${read.error}`);
  return value;
}

function done(
  settings: RestoreSettings,
  backupId: string,
  manifest: Manifest,
  r: Omit<RestoreReport, 'backupId'>,
): RestoreResult {
  const report: RestoreReport = { backupId, ...r };
  return {
    report,
    manifest,
    summary: {
      title: `pg-dr restore: ${report.ok ? lit('ok', 'ok') : lit('failed', 'FAILED')}`,
      header: ['restore', 'result'],
      rows: restoreRows(settings, manifest, report),
    },
  };
}

function restoreRows(
  settings: RestoreSettings,
  manifest: Manifest,
  report: RestoreReport,
): string[][] {
  const { locale } = manifest.database;
  const rows: string[][] = [
    [
      'Backup',
      `${report.backupId} (${manifest.database.name}, made ${formatTime(manifest.createdAt)})`,
    ],
    ['Target', settings.database ? describeTarget(settings.database) : '—'],
    ['Result', report.ok ? lit('ok', 'restored') : lit('failed', 'failed')],
    ...report.attempts.map((a) => [
      `From ${a.destination}`,
      a.ok ? lit('ok', 'ok') : lit('failed', `${a.error} (dropped; the target is unchanged)`),
    ]),
    ['Duration', `${report.seconds.toFixed(1)} s`],
    [
      'Database',
      report.ok
        ? `${JSON.stringify(report.database)}${locale ? ` (${manifest.database.encoding}, ${locale.provider} ${locale.locale ?? locale.collate})` : ''}`
        : `${JSON.stringify(report.database)} unchanged`,
    ],
    ...(report.ok ? switchedRows(report) : []),
    [
      'Tables',
      `${report.tables}; row counts ${report.rowCounts}${report.mismatches.length ? `: ${report.mismatches.length} differ` : report.rowCounts === 'compared' ? ': all equal' : ''}`,
    ],
    [
      'Config files',
      report.configFiles
        ? `${report.configFiles.length} extracted into ${settings.configDir}`
        : 'not extracted',
    ],
  ];
  for (const m of report.mismatches.slice(0, 20))
    rows.push([`≠ ${m.table}`, `${m.actual ?? 'missing'} rows, manifest ${m.expected}`]);
  rows.push([
    'Differences from the source',
    report.differences.length === 0 ? (report.ok ? 'none' : '—') : report.differences.join(' '),
  ]);
  return rows;
}

/** What a restore that switched in changed on the target: the database replaced, the roles. */
function switchedRows(report: RestoreReport): string[][] {
  const { rolesCreated: created, rolesExisting: existing } = report;
  return [
    [
      'Replaced database',
      report.previous ? `kept as ${JSON.stringify(report.previous)}` : 'none kept',
    ],
    [
      'Roles',
      `${created.length} created${created.length ? ` (${created.join(', ')})` : ''}, ${existing.length} already existed${existing.length ? ` (${existing.join(', ')})` : ''}`,
    ],
  ];
}

/** The restore command: restores, and fails the step when the restore did not complete. */
export async function runRestore(settings: RestoreSettings, ctx: Context): Promise<CommandResult> {
  const r = await restore(settings, {
    host: ctx.host,
    destinations: ctx.destinations,
    now: () => new Date(),
    signal: ctx.signal,
    env: ctx.env,
    ...(ctx.target ? { target: ctx.target } : {}),
  });
  const { report } = r;
  return {
    outputs: {
      'backup-id': report.backupId,
      status: report.ok ? 'ok' : 'failed',
      manifest: r.manifest,
      report,
    },
    tables: [r.summary],
    failure: report.ok
      ? null
      : report.restoredFrom
        ? `Restored ${report.backupId} from ${report.restoredFrom}, but ${report.mismatches.length} table(s) have other row counts than the manifest.`
        : `Restore of ${report.backupId} failed everywhere: ${report.attempts.map((a) => `${a.destination}: ${a.error}`).join('; ')}`,
  };
}
