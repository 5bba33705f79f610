import type { DecryptionSettings } from '../crypto/age.js';
import { InputError } from '../errors.js';
import type { VerifySettings } from '../inputs/parse.js';
import {
  type BackupAtDestination,
  type CatalogEntry,
  pickBackups,
  scanAll,
} from '../manifest/catalog.js';
import { backupPrefix } from '../manifest/id.js';
import { dumpMajor, type Manifest, rowCountMismatches } from '../manifest/schema.js';
import { type Verification, verificationKey } from '../manifest/verification.js';
import { type ReadBackResult, readBack, type Sink } from '../pipeline/readback.js';
import { toolPath } from '../postgres/binaries.js';
import { connect, pickClient } from '../postgres/clients.js';
import {
  countUserTables,
  emptyDatabase,
  startArchiveList,
  startRestore,
} from '../postgres/restore.js';
import { countRows } from '../postgres/snapshot.js';
import type { DatabaseTarget } from '../postgres/url.js';
import type { Host, SummaryTable } from '../report/host.js';
import type { Destination } from '../storage/destination.js';
import { describeS3Error } from '../storage/destination.js';
import { VERSION } from '../version.js';

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
}

export async function verify(settings: VerifySettings, deps: VerifyDeps): Promise<VerifyResult> {
  const { host } = deps;
  const { entries, unreachable } = await host.group('Find backups', () =>
    scanAll(deps.destinations, settings.prefix),
  );
  for (const [name, why] of unreachable) host.warning(`${name}: cannot list backups: ${why}`);
  const backups = pickBackups(entries, settings.backup, deps.now());
  host.info(`Verifying ${backups.map((b) => b.id).join(', ')} at level ${settings.level}`);

  const verifications: Verification[] = [];
  for (const backup of backups) {
    let drilled = false;
    for (const dest of deps.destinations) {
      const name = dest.settings.name;
      const at = backup.at.find((a) => a.destination === name);
      const v = await host.group(`Verify ${backup.id} at ${name} (${settings.level})`, () =>
        verifyAt(settings, deps, backup, dest, at, unreachable.get(name) ?? null, !drilled),
      );
      if (v.drill) drilled = true;
      verifications.push(v);
      if (v.ok)
        host.info(
          `${name}: ${backup.id} verified (${settings.level}) in ${v.durationSeconds.toFixed(1)} s`,
        );
      else host.error(`${name}: ${backup.id} FAILED verification: ${v.error}`);
      if (!unreachable.has(name)) await record(dest, settings.prefix, v, host);
    }
  }
  const report: VerifyReport = {
    ok: verifications.every((v) => v.ok),
    level: settings.level,
    verifications,
    unreachable: Object.fromEntries(unreachable),
  };
  return { report, summary: verifySummary(report) };
}

/** Writes the verification record next to the backup, at the destination it describes. */
async function record(
  dest: Destination,
  prefix: string,
  v: Verification,
  host: Host,
): Promise<void> {
  const key = verificationKey(prefix, v.backupId, new Date(v.startedAt));
  try {
    await dest.put(key, `${JSON.stringify(v, null, 2)}\n`, 'application/json');
  } catch (e) {
    host.warning(`${dest.settings.name}: could not write ${key}: ${describeS3Error(e)}`);
  }
}

async function verifyAt(
  settings: VerifySettings,
  deps: VerifyDeps,
  backup: CatalogEntry,
  dest: Destination,
  at: BackupAtDestination | undefined,
  unreachable: string | null,
  mayDrill: boolean,
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
  const objects: Verification['objects'] = [];
  let archive: Verification['archive'] = null;
  let drill: Verification['drill'] = null;
  for (const o of manifest.objects) {
    const key = `${folder}${o.name}`;
    let sink: Sink | null = null;
    let drillRun: DrillRun | null = null;
    let entries: Promise<number> | null = null;
    if (settings.level !== 'checksum' && o.kind === 'database') {
      const pgRestore = await pickClient(
        'pg_restore',
        dumpMajor(manifest),
        `the archive was written by pg_dump ${manifest.database.pgDumpVersion}`,
        settings.pgClients,
        deps.env,
        (l) => deps.host.info(l),
      );
      if (settings.level === 'restore' && mayDrill) {
        drillRun = await prepareDrill(settings, deps, manifest, toolPath(pgRestore, 'pg_restore'));
        sink = drillRun.sink;
      } else {
        const list = startArchiveList(toolPath(pgRestore, 'pg_restore'));
        entries = list.done;
        sink = {
          stdin: list.stdin,
          done: list.done,
          abort: () => list.abort(),
          mayStopEarly: true,
        };
      }
    }
    const drillStarted = Date.now();
    const r: ReadBackResult = await readBack({
      destination: dest,
      key,
      encrypted: o.encrypted,
      ...(settings.level !== 'checksum'
        ? {
            decrypt: {
              settings: settings.decryption as DecryptionSettings,
              plaintext: o.plaintext,
              compression: o.kind === 'database' ? manifest.database.compression : null,
              sink,
            },
          }
        : {}),
      signal: deps.signal,
      env: deps.env,
    });
    objects.push({
      name: o.name,
      ok: r.ok,
      bytes: r.encrypted?.bytes ?? null,
      sha256: r.encrypted?.sha256 ?? null,
      error: r.error,
    });
    if (entries) {
      const n = await entries.then(
        (count) => ({ ok: true, entries: count, error: null }),
        (e: Error) => ({ ok: false, entries: 0, error: e.message }),
      );
      archive = n;
    }
    if (drillRun) {
      drill = await drillRun.finish(r, (Date.now() - drillStarted) / 1000);
      archive = { ok: r.ok, entries: 0, error: r.ok ? null : r.error };
    }
  }
  const errors = [
    ...objects.filter((o) => !o.ok).map((o) => o.error),
    archive && !archive.ok ? `archive does not open: ${archive.error}` : null,
    drill && !drill.ok ? `restore drill failed: ${drill.error}` : null,
  ].filter((e): e is string => e !== null);
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

interface DrillRun {
  readonly sink: Sink;
  finish(read: ReadBackResult, seconds: number): Promise<NonNullable<Verification['drill']>>;
}

/** Empties the scratch database and starts pg_restore into it. */
async function prepareDrill(
  settings: VerifySettings,
  deps: VerifyDeps,
  manifest: Manifest,
  pgRestore: string,
): Promise<DrillRun> {
  const target = deps.drillTarget ?? (settings.drill as DatabaseTarget);
  if (target.database === manifest.database.name && !settings.force)
    throw new InputError(
      'drill-database-url',
      `'drill-database-url' names database "${target.database}", the backup's source database. The drill empties it first: use a scratch database, or set force: true if this really is a copy.`,
    );
  const session = await connect(target, settings.pgClients, deps.env, 'drill-database-url');
  try {
    const before = await countUserTables(session);
    if (before > 0) deps.host.info(`Emptying the drill database (${before} relations)`);
    await emptyDatabase(session);
  } finally {
    await session.close();
  }
  const restore = startRestore(pgRestore, target, false);
  return {
    sink: {
      stdin: restore.stdin,
      done: restore.done,
      abort: () => restore.abort(),
      mayStopEarly: false,
    },
    async finish(read, seconds) {
      if (!read.ok) return { ok: false, seconds, tables: 0, mismatches: [], error: read.error };
      const s = await connect(target, settings.pgClients, deps.env, 'drill-database-url');
      try {
        const counts = await countRows(s, 'exact');
        const mismatches = rowCountMismatches(manifest, counts);
        return {
          ok: mismatches.length === 0,
          seconds,
          tables: counts.length,
          mismatches,
          error: mismatches.length
            ? `${mismatches.length} table(s) with other row counts than the manifest`
            : null,
        };
      } finally {
        await s.close();
      }
    },
  };
}

function verifySummary(r: VerifyReport): SummaryTable {
  return {
    title: `pg-dr verify (${r.level}): ${r.ok ? 'ok' : 'FAILED'}`,
    header: ['backup', 'destination', 'level', 'result', 'duration'],
    rows: r.verifications.map((v) => [
      v.backupId,
      v.destination,
      v.level,
      v.ok
        ? `✅ ok${v.drill ? ` (restored ${v.drill.tables} tables in ${v.drill.seconds.toFixed(1)} s)` : ''}`
        : `❌ ${v.error ?? 'failed'}`,
      `${v.durationSeconds.toFixed(1)} s`,
    ]),
  };
}
