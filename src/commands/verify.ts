import { verificationFailed } from '../alerts/conditions.js';
import type { AlertCondition } from '../alerts/index.js';
import type { DecryptionSettings } from '../crypto/age.js';
import type { Signer } from '../crypto/sshsig.js';
import { InputError } from '../errors.js';
import type { VerifySettings } from '../inputs/parse.js';
import {
  type BackupAtDestination,
  type CatalogEntry,
  databasesHeld,
  latestVerification,
  ofDatabase,
  pickBackups,
  scanAll,
  UNAUTHENTICATED,
} from '../manifest/catalog.js';
import { backupIdTime, backupPrefix, SIGNATURE_SUFFIX } from '../manifest/id.js';
import { dumpMajor, isPhysical, type Manifest } from '../manifest/schema.js';
import { type Verification, verificationKey } from '../manifest/verification.js';
import { type ReadBackResult, readBack, type Sink } from '../pipeline/readback.js';
import { tempSpace } from '../pipeline/restore-file.js';
import { compareRowCounts, type RestoreInto, restoreInto } from '../pipeline/restore-into.js';
import { toolPath } from '../postgres/binaries.js';
import { pickClient, serverAccess } from '../postgres/clients.js';
import {
  databaseName,
  randomSuffix,
  type ServerAccess,
  type ServerFacts,
  serverFacts,
} from '../postgres/rebuild.js';
import { startArchiveList } from '../postgres/restore.js';
import type { DatabaseTarget } from '../postgres/url.js';
import type { Host, SummaryTable } from '../report/host.js';
import { progressTty, startProgress } from '../report/progress.js';
import { lit } from '../report/status.js';
import { describeSource } from '../source/index.js';
import type { Destination } from '../storage/destination.js';
import { VERSION } from '../version.js';
import { type CommandResult, type Context, withAlerts } from './command.js';
import { checkBase } from './verify-physical.js';

export interface VerifyDeps {
  readonly host: Host;
  readonly destinations: readonly Destination[];
  readonly now: () => Date;
  readonly signal: AbortSignal;
  readonly env: NodeJS.ProcessEnv;
  /** Link to the run doing the verification, recorded with it. */
  readonly runUrl: string | null;
  /** The database target a drill connects to (an SSH tunnel's local end, when set). */
  readonly drillTarget?: DatabaseTarget;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly level: VerifySettings['level'];
  readonly verifications: readonly Verification[];
  /** Destinations that could not be listed. */
  readonly unreachable: Record<string, string>;
}

export interface VerifyResult {
  readonly report: VerifyReport;
  readonly summary: SummaryTable;
  /** The newest backup known to verify (this run, or its latest record); undefined when none is known. */
  readonly lastGood: AlertCondition['lastGood'];
}

/**
 * The backups to verify: an id; `recent` (every database's, or `source-database`'s); `latest`
 * of `source-database`, else the latest of each database the prefix holds.
 */
function chooseBackups(
  entries: readonly CatalogEntry[],
  settings: VerifySettings,
  now: Date,
): CatalogEntry[] {
  if (typeof settings.backup === 'object') return pickBackups(entries, settings.backup, now);
  if (settings.sourceDatabase !== null)
    return pickBackups(ofDatabase(entries, settings.sourceDatabase), settings.backup, now);
  const held = databasesHeld(entries);
  if (settings.backup === 'recent' || held.length <= 1)
    return pickBackups(entries, settings.backup, now);
  return held.flatMap((h) => pickBackups(ofDatabase(entries, h.name), 'latest', now));
}

export async function verify(settings: VerifySettings, deps: VerifyDeps): Promise<VerifyResult> {
  const { host } = deps;
  if (!settings.trusted) host.warning(UNAUTHENTICATED);
  const { entries, unreachable } = await host.group('Find backups', () =>
    scanAll(deps.destinations, settings.prefix, deps.now(), settings.trusted),
  );
  for (const [name, why] of unreachable) host.warning(`${name}: cannot list backups: ${why}`);
  const backups = chooseBackups(entries, settings, deps.now());
  host.info(`Verifying ${backups.map((b) => b.id).join(', ')} at level ${settings.level}`);
  const drillServer = await drillServerFor(backups, settings, deps);

  const verifications: Verification[] = [];
  for (const backup of backups) {
    let drilled = false;
    for (const dest of deps.destinations) {
      const name = dest.settings.name;
      const at = backup.at.find((a) => a.destination === name);
      const v = await host.group(`Verify ${backup.id} at ${name} (${settings.level})`, () =>
        verifyAt(
          settings,
          deps,
          backup,
          dest,
          at,
          unreachable.get(name) ?? null,
          drilled ? null : drillServer,
          settings.level === 'restore' && !drilled,
        ),
      );
      if (v.drill) drilled = true;
      verifications.push(v);
      if (v.ok)
        host.info(
          `${name}: ${backup.id} verified (${settings.level}) in ${v.durationSeconds.toFixed(1)} s`,
        );
      else host.error(`${name}: ${backup.id} FAILED verification: ${v.error}`);
      if (!unreachable.has(name)) await record(dest, settings.prefix, v, host, settings.signer);
    }
  }
  const report: VerifyReport = {
    ok: verifications.every((v) => v.ok),
    level: settings.level,
    verifications,
    unreachable: Object.fromEntries(unreachable),
  };
  const lastGood = report.ok
    ? undefined
    : await lastVerified(entries, verifications, settings, deps);
  return { report, summary: verifySummary(report), lastGood };
}

/** How many of the newest other backups a failed verify reads the records of, for its issue. */
const LAST_GOOD_READS = 5;

/**
 * The newest backup known to be good, for the `verification-failed` issue: one this run
 * verified at some destination, else the newest of the few newest other complete backups
 * whose latest record there passed. Undefined when none of those is known to be good.
 */
async function lastVerified(
  entries: readonly CatalogEntry[],
  verifications: readonly Verification[],
  settings: VerifySettings,
  deps: VerifyDeps,
): Promise<AlertCondition['lastGood']> {
  const passed = verifications.filter((v) => v.ok);
  const best = passed
    .map((v) => v.backupId)
    .sort()
    .at(-1);
  const good = (id: string, where: string[]) => ({
    id,
    time: backupIdTime(id).toISOString(),
    where,
  });
  if (best !== undefined)
    return good(
      best,
      passed.filter((v) => v.backupId === best).map((v) => v.destination),
    );
  const tried = new Set(verifications.map((v) => v.backupId));
  const others = entries.filter((e) => e.completeAt.length > 0 && !tried.has(e.id));
  for (const e of others.slice(0, LAST_GOOD_READS)) {
    const where: string[] = [];
    for (const dest of deps.destinations) {
      const at = e.at.find((a) => a.destination === dest.settings.name && a.problem === null);
      if (!at) continue;
      const v = await latestVerification(dest, at, deps.now(), settings.trusted).catch(() => null);
      if (v?.ok) where.push(dest.settings.name);
    }
    if (where.length > 0) return good(e.id, where);
  }
  return undefined;
}

/** Writes the verification record next to the backup, at the destination it describes. */
async function record(
  dest: Destination,
  prefix: string,
  v: Verification,
  host: Host,
  signer: Signer | null,
): Promise<void> {
  const key = verificationKey(prefix, v.backupId, new Date(v.startedAt));
  const body = `${JSON.stringify(v, null, 2)}\n`;
  try {
    if (signer)
      await dest.put(`${key}${SIGNATURE_SUFFIX}`, signer.sign(Buffer.from(body)), 'text/plain');
    await dest.put(key, body, 'application/json');
  } catch (e) {
    host.warning(`${dest.settings.name}: could not write ${key}: ${dest.describeError(e)}`);
  }
}

async function verifyAt(
  settings: VerifySettings,
  deps: VerifyDeps,
  backup: CatalogEntry,
  dest: Destination,
  at: BackupAtDestination | undefined,
  unreachable: string | null,
  drillServer: DrillServer | null,
  drillNow: boolean,
): Promise<Verification> {
  const started = deps.now();
  const t0 = Date.now();
  const base = {
    format: 'pg-dr-verification/1' as const,
    backupId: backup.id,
    destination: dest.settings.name,
    level: settings.level,
    startedAt: started.toISOString(),
    tool: { name: 'pg-dr' as const, version: VERSION },
    runUrl: deps.runUrl,
    archive: null,
    drill: null,
  };
  const manifest = backup.manifest as Manifest;
  const problem =
    unreachable !== null
      ? `cannot list the bucket: ${unreachable}`
      : !at
        ? 'the backup is not at this destination'
        : at.problem;
  if (problem !== null) {
    return {
      ...base,
      ok: false,
      durationSeconds: (Date.now() - t0) / 1000,
      objects: [],
      error: problem,
    };
  }
  const folder = backupPrefix(settings.prefix, backup.id);
  const objects: Verification['objects'][number][] = [];
  let archive: Verification['archive'] = null;
  let drill: Verification['drill'] = null;
  const byConsumer: string[] = [];
  for (const o of manifest.objects) {
    const v = await verifyWithProgress(
      { settings, deps, manifest, dest, folder, drillServer, drillNow },
      o,
    );
    objects.push(v.object);
    if (v.failure === 'consumer' && v.object.error) byConsumer.push(v.object.error);
    if (v.archive !== undefined) archive = v.archive;
    if (v.drill !== undefined) drill = v.drill;
  }
  const errors = failureLines(objects, byConsumer, archive, drill);
  return {
    ...base,
    ok: errors.length === 0,
    durationSeconds: (Date.now() - t0) / 1000,
    objects,
    archive,
    drill,
    error: errors.length ? errors.join('; ') : null,
  };
}

/**
 * What failed, each cause once (the verification's one line joins them). A read that
 * failed before its consumer (a checksum, the decryption, the decompression) is the
 * object's error: the archive that then does not open and the drill that then fails say
 * nothing more. A read that failed in its consumer (pg_restore) is told as what that
 * consumer was doing: opening the archive, or the drill.
 */
function failureLines(
  objects: readonly Verification['objects'][number][],
  byConsumer: readonly string[],
  archive: Verification['archive'],
  drill: Verification['drill'],
): string[] {
  const drillError = drill && !drill.ok ? drill.error : null;
  const archiveError = archive && !archive.ok ? archive.error : null;
  const told = objects
    .filter((o) => !o.ok)
    .map((o) => o.error)
    .filter(
      (e): e is string =>
        e !== null && !(byConsumer.includes(e) && (e === drillError || e === archiveError)),
    );
  return [
    ...told,
    archiveError !== null && !told.includes(archiveError) && archiveError !== drillError
      ? `archive does not open: ${archiveError}`
      : null,
    drillError !== null && !told.includes(drillError)
      ? `restore drill failed: ${drillError}`
      : null,
  ].filter((e): e is string => e !== null);
}

/** One backup at one destination, being verified. */
interface VerifyAt {
  readonly settings: VerifySettings;
  readonly deps: VerifyDeps;
  readonly manifest: Manifest;
  readonly dest: Destination;
  /** The backup's folder. */
  readonly folder: string;
  /** Where to drill a logical backup, when this destination is the one drilled from. */
  readonly drillServer: DrillServer | null;
  /** This destination is the one drilled from (a physical backup's drill needs no server). */
  readonly drillNow: boolean;
  /** Bytes of the object read so far, for progress. */
  readonly onBytes?: (n: number) => void;
}

/** `verifyObject` with a progress line: the object's bytes read of its size in the manifest. */
async function verifyWithProgress(
  at: VerifyAt,
  o: Manifest['objects'][number],
): ReturnType<typeof verifyObject> {
  const { host } = at.deps;
  let read = 0;
  const progress = startProgress(
    host,
    {
      label: `verify ${o.name} at ${at.dest.settings.name}`,
      done: () => read,
      total: () => ({ bytes: o.encrypted.bytes, estimate: false }),
      ...(at.drillServer && o.kind === 'database' ? { finishing: 'pg_restore finishing' } : {}),
    },
    { tty: progressTty(host) },
  );
  try {
    return await verifyObject(
      {
        ...at,
        deps: { ...at.deps, host: progress.host },
        onBytes: (n) => {
          read = n;
        },
      },
      o,
    );
  } finally {
    progress.stop();
  }
}

/**
 * Reads one object back (and past the checksum level, decrypts it; the database's archive
 * is opened by pg_restore, or restored in a drill). `archive` and `drill` are set only
 * when this object decided them.
 */
async function verifyObject(
  at: VerifyAt,
  o: Manifest['objects'][number],
): Promise<{
  object: Verification['objects'][number];
  /** Why the read failed, if it did. */
  failure: ReadBackResult['failure'];
  archive?: Verification['archive'];
  drill?: Verification['drill'];
}> {
  const { settings, deps, manifest } = at;
  if (settings.level !== 'checksum' && o.kind === 'base') return verifyBase(at, o);
  const archiveCheck =
    settings.level !== 'checksum' && o.kind === 'database' ? await checkArchive(at) : null;
  const r =
    archiveCheck?.read ??
    (await readBack({
      destination: at.dest,
      key: `${at.folder}${o.name}`,
      encrypted: o.encrypted,
      ...(settings.level !== 'checksum'
        ? {
            decrypt: {
              settings: settings.decryption as DecryptionSettings,
              plaintext: o.plaintext,
              compression: o.kind === 'database' ? manifest.database.compression : null,
              sink: archiveCheck?.sink ?? null,
            },
          }
        : {}),
      signal: deps.signal,
      env: deps.env,
      ...(at.onBytes ? { onBytes: at.onBytes } : {}),
    }));
  const object = {
    name: o.name,
    ok: r.ok,
    bytes: r.encrypted?.bytes ?? null,
    sha256: r.encrypted?.sha256 ?? null,
    error: r.error,
  };
  if (!archiveCheck) return { object, failure: r.failure };
  const { entries } = archiveCheck;
  const archive = entries
    ? await entries.then(
        (lines) => ({ ok: true, entries: lines.length, error: null }),
        // The read's failure says why (a checksum, the decryption, the decompression, or
        // pg_restore's own error when nothing before it failed).
        (e: Error) => ({
          ok: false,
          entries: 0,
          error: r.ok ? e.message : r.error,
        }),
      )
    : archiveCheck.read
      ? { ok: r.ok, entries: 0, error: r.ok ? null : r.error }
      : undefined;
  return {
    object,
    failure: r.failure,
    ...(archive !== undefined ? { archive } : {}),
    ...(archiveCheck.drill !== undefined ? { drill: archiveCheck.drill } : {}),
  };
}

/** A physical backup's base object: extracted, pg_verifybackup, and at level restore a drill. */
async function verifyBase(
  at: VerifyAt,
  o: Manifest['objects'][number],
): ReturnType<typeof verifyObject> {
  const c = await checkBase({
    settings: at.settings,
    manifest: at.manifest,
    dest: at.dest,
    folder: at.folder,
    drill: at.drillNow,
    host: at.deps.host,
    env: at.deps.env,
    signal: at.deps.signal,
    ...(at.onBytes ? { onBytes: at.onBytes } : {}),
  });
  const r = c.read;
  return {
    object: {
      name: o.name,
      ok: r.ok,
      bytes: r.encrypted?.bytes ?? null,
      sha256: r.encrypted?.sha256 ?? null,
      error: r.error,
    },
    failure: r.failure,
    archive: c.archive,
    ...(c.drill !== undefined ? { drill: c.drill } : {}),
  };
}

/**
 * The drill server of the logical backups to drill (level restore), checked before any work;
 * null when there are none. Physical backups are drilled on a throwaway server of pg-dr's own.
 */
async function drillServerFor(
  backups: readonly CatalogEntry[],
  settings: VerifySettings,
  deps: VerifyDeps,
): Promise<DrillServer | null> {
  if (settings.level !== 'restore') return null;
  if (!backups.some((b) => b.manifest && !isPhysical(b.manifest as Manifest))) return null;
  if (settings.drill === null)
    throw new InputError(
      'drill-database-url',
      "Missing 'drill-database-url'. Expected the URL of a server for restore drills and a database on it to connect to (each drill creates and drops its own database). Logical backups are drilled there; physical ones on a throwaway server pg-dr starts itself.",
    );
  return checkDrillServer(settings, deps);
}

/**
 * How the database's archive is checked: by a restore drill, whose read is the object's
 * (`read`), or else by pg_restore listing it as it is read (`sink`, `entries`).
 */
async function checkArchive(at: VerifyAt): Promise<{
  read: ReadBackResult | null;
  drill?: Verification['drill'];
  sink: Sink | null;
  entries: Promise<string[]> | null;
}> {
  const { settings, deps, manifest } = at;
  const pgRestore = toolPath(
    await pickClient(
      'pg_restore',
      dumpMajor(manifest),
      `the archive was written by pg_dump ${manifest.database.pgDumpVersion}`,
      settings.pgClients,
      deps.env,
      (l) => deps.host.info(l),
    ),
    'pg_restore',
  );
  let drill: Verification['drill'] | undefined;
  if (at.drillServer) {
    const d = await drillFrom(
      settings,
      deps,
      at.drillServer,
      manifest,
      at.dest,
      at.folder,
      pgRestore,
      at.onBytes,
    );
    drill = d.drill;
    if (d.read) return { read: d.read, drill, sink: null, entries: null };
  }
  const list = startArchiveList(pgRestore);
  return {
    read: null,
    ...(drill !== undefined ? { drill } : {}),
    sink: { stdin: list.stdin, done: list.done, abort: () => list.abort(), mayStopEarly: true },
    entries: list.done,
  };
}

type Drill = NonNullable<Verification['drill']>;

interface DrillServer {
  readonly server: ServerAccess;
  readonly facts: ServerFacts;
}

/**
 * The drill server, checked before any work: it answers, and pg-dr connects as a superuser
 * there (a drill creates roles and a database, with owners and privileges).
 */
async function checkDrillServer(settings: VerifySettings, deps: VerifyDeps): Promise<DrillServer> {
  const target = deps.drillTarget ?? (settings.drill as DatabaseTarget);
  const server = serverAccess(target, 'drill-database-url', [target.database]);
  const m = await server.maintenance();
  let facts: ServerFacts;
  try {
    facts = await serverFacts(m);
  } finally {
    await m.close();
  }
  if (!facts.superuser)
    throw new InputError(
      'drill-database-url',
      `Invalid 'drill-database-url': it connects as ${JSON.stringify(facts.user)}, not a superuser. Expected a superuser of a scratch server: a drill creates the backup's roles and a database of its own there (and drops both afterwards).`,
    );
  return { server, facts };
}

/**
 * A restore drill from one destination: a NEW database on the drill server (`pg_dr_drill_…`),
 * the backup's roles created where missing, the archive restored with owners and privileges,
 * the database's properties applied and every row count compared; then the database and the
 * roles it created are dropped, whatever happened. No database of the user's is written.
 * `read` is null when the drill could not start (the object is then read without it).
 */
async function drillFrom(
  settings: VerifySettings,
  deps: VerifyDeps,
  { server, facts }: DrillServer,
  manifest: Manifest,
  dest: Destination,
  folder: string,
  pgRestore: string,
  onBytes?: (n: number) => void,
): Promise<{ read: ReadBackResult | null; drill: Drill }> {
  const t0 = Date.now();
  const failed = (error: string, read: ReadBackResult | null = null) => ({
    read,
    drill: { ok: false, seconds: (Date.now() - t0) / 1000, tables: 0, mismatches: [], error },
  });
  const name = databaseName(
    'pg_dr_drill_',
    `${manifest.id.slice(0, 15).toLowerCase()}_${randomSuffix()}`,
  );
  let result: RestoreInto;
  try {
    deps.host.info(`Drill into a new database ${JSON.stringify(name)} (dropped afterwards)`);
    result = await restoreInto({
      destination: dest,
      folder,
      manifest,
      decryption: settings.decryption as DecryptionSettings,
      server,
      facts,
      ownership: 'source',
      name,
      pgRestore,
      input: 'drill-database-url',
      signal: deps.signal,
      env: deps.env,
      log: (l) => deps.host.info(l),
      ...(onBytes ? { onBytes } : {}),
      jobs: settings.parallel.jobs,
      tempDir: tempSpace(settings.parallel.tempDir, deps.env),
    });
  } catch (e) {
    return failed((e as Error).message);
  }
  if (!result.ok) return failed(result.read.error ?? 'failed', result.read);
  const seconds = (Date.now() - t0) / 1000;
  let drill: Drill;
  try {
    const check = await compareRowCounts(server, name, manifest);
    await result.rebuild.applyProperties();
    drill = {
      ok: check.mismatches.length === 0,
      seconds,
      tables: check.tables,
      mismatches: [...check.mismatches],
      error: check.mismatches.length
        ? `${check.mismatches.length} table(s) with other row counts than the manifest`
        : null,
      ...(result.rebuild.differences.length
        ? { differences: [...result.rebuild.differences] }
        : {}),
    };
  } catch (e) {
    drill = { ok: false, seconds, tables: 0, mismatches: [], error: (e as Error).message };
  }
  try {
    await result.rebuild.discard();
  } catch (e) {
    drill = {
      ...drill,
      ok: false,
      error: [drill.error, (e as Error).message].filter(Boolean).join('; '),
    };
  }
  return { read: result.read, drill };
}

function verifySummary(r: VerifyReport): SummaryTable {
  return {
    title: `pg-dr verify (${r.level}): ${r.ok ? lit('ok', 'ok') : lit('failed', 'FAILED')}`,
    header: ['backup', 'destination', 'level', 'result', 'duration'],
    rows: r.verifications.map((v) => [
      v.backupId,
      v.destination,
      v.level,
      v.ok
        ? lit(
            'ok',
            `ok${v.drill ? ` (${v.drill.proven ? `started a copy: ${v.drill.proven.slice(1).join('; ')}` : `restored ${v.drill.tables} tables`} in ${v.drill.seconds.toFixed(1)} s)` : ''}`,
          )
        : lit('failed', v.error ?? 'failed'),
      `${v.durationSeconds.toFixed(1)} s`,
    ]),
  };
}

/** The verify command: verifies, raises or clears the verification alerts. */
export async function runVerify(settings: VerifySettings, ctx: Context): Promise<CommandResult> {
  const { host, env, feed } = ctx;
  const r = await verify(settings, {
    host,
    destinations: ctx.destinations,
    now: () => new Date(),
    signal: ctx.signal,
    env,
    runUrl: (await describeSource(env, settings.workspace)).runUrl,
    ...(ctx.target ? { drillTarget: ctx.target } : {}),
  });
  const ids = [...new Set(r.report.verifications.map((v) => v.backupId))];
  const failed = r.report.verifications.filter((v) => !v.ok);
  const alerts =
    failed.length > 0
      ? [
          await feed.raise({
            ...verificationFailed(failed),
            ...(r.lastGood !== undefined ? { lastGood: r.lastGood } : {}),
          }),
        ]
      : [
          await feed.clear(
            'verification-failed',
            `backup ${ids.join(', ')} verified (${settings.level}) at every destination.`,
          ),
          await feed.clear('verification-stale', `a verification (${settings.level}) just passed.`),
        ];
  return {
    outputs: {
      'backup-id': ids.join(','),
      status: r.report.ok ? 'ok' : 'failed',
      report: r.report,
    },
    tables: withAlerts([r.summary], alerts),
    failure: r.report.ok
      ? null
      : `Verification failed: ${failed.map((v) => `${v.backupId} at ${v.destination}: ${v.error}`).join('; ')}`,
  };
}
