import { mkdir, readdir } from 'node:fs/promises';
import { extractBundle } from '../bundle/index.js';
import { recipientsOf } from '../crypto/age.js';
import { InputError } from '../errors.js';
import type { RestoreSettings } from '../inputs/parse.js';
import { pickBackups, scanAll, UNAUTHENTICATED } from '../manifest/catalog.js';
import { backupPrefix } from '../manifest/id.js';
import { dumpMajor, type Manifest } from '../manifest/schema.js';
import { type ReadBackResult, readObjectInto } from '../pipeline/readback.js';
import { compareRowCounts, type RowCheck, restoreInto } from '../pipeline/restore-into.js';
import { toolPath } from '../postgres/binaries.js';
import { pickClient, serverAccess } from '../postgres/clients.js';
import {
  checkRestorer,
  databaseName,
  databaseState,
  IN_PROGRESS_COMMENT,
  type Rebuild,
  randomSuffix,
  type ServerFacts,
  type SwitchResult,
  serverFacts,
  switchDatabase,
} from '../postgres/rebuild.js';
import { quoteLiteral } from '../postgres/sql.js';
import type { DatabaseTarget } from '../postgres/url.js';
import { describeTarget } from '../postgres/url.js';
import type { Host, SummaryTable } from '../report/host.js';
import { formatBytes, formatRate, startProgress } from '../report/progress.js';
import type { Destination } from '../storage/destination.js';
import type { CommandResult, Context } from './command.js';

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
  const target = deps.target ?? settings.database;
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
  const [backup] = pickBackups(candidates, settings.backup, deps.now());
  if (!backup?.manifest) throw new Error('internal: a complete backup without a manifest');
  const manifest = backup.manifest;
  const order = deps.destinations.filter((d) => backup.completeAt.includes(d.settings.name));
  host.info(
    `Backup ${backup.id} (${manifest.database.name}, ${manifest.createdAt}) is complete at ${backup.completeAt.join(', ')}`,
  );

  // Everything that can refuse the restore is checked before anything is written.
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
  const server = serverAccess(target, 'database-url', ['postgres', 'template1']);
  const targetName = settings.database.database;
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
    const state = await databaseState(server, targetName);
    return { facts, state, leftovers };
  });
  for (const l of leftovers)
    host.warning(
      `Database ${JSON.stringify(l)} is left from a restore that was interrupted; drop it when no restore is running (DROP DATABASE).`,
    );
  if (state.exists && state.objects > 0 && !settings.force)
    throw new InputError(
      'force',
      `The target database ${JSON.stringify(targetName)} already has ${state.objects} objects (tables, views, sequences, functions, schemas, large objects). Restore into a new or empty database, or set force: true: the restore then goes into a new database that replaces it once complete, and ${settings.dropPrevious ? 'drops it (drop-previous: true)' : `keeps it as "${targetName}_before_<time>"`}.`,
    );
  if (state.connections.length > 0 && !settings.terminateConnections)
    throw new InputError(
      'terminate-connections',
      `The target database ${JSON.stringify(targetName)} has ${state.connections.length} open connection(s) (${state.connections.slice(0, 5).join(', ')}), which switching in the restored database would break. Stop the application first, or set terminate-connections: true to end them at the switch.`,
    );
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

  const folder = backupPrefix(settings.prefix, backup.id);
  const attempts: { destination: string; ok: boolean; error: string | null }[] = [];
  const t0 = Date.now();
  let restoredFrom: string | null = null;
  let restored: { rebuild: Rebuild; name: string } | null = null;
  const db = manifest.objects.find((o) => o.kind === 'database');
  if (!db) throw new Error(`Backup ${backup.id} has no database object.`);
  for (const dest of order) {
    const name = databaseName(`${targetName}_pgdr_`, randomSuffix());
    const result = await host.group(
      `Restore ${db.name} from ${dest.settings.name} into a new database ${JSON.stringify(name)}`,
      async () => {
        let read = 0;
        const stop = startProgress(
          host,
          [{ label: `${dest.settings.name} download`, bytes: () => read }],
          { tty: host.kind === 'cli' ? process.stderr : undefined },
        );
        try {
          return await restoreInto({
            destination: dest,
            folder,
            manifest,
            decryption: settings.decryption,
            server,
            facts,
            ownership: settings.ownership,
            name,
            pgRestore: toolPath(pgRestore, 'pg_restore'),
            input: 'database-url',
            signal: deps.signal,
            env: deps.env,
            log: (l) => host.info(l),
            onBytes: (n) => {
              read = n;
            },
          });
        } finally {
          stop();
        }
      },
    );
    const dname = dest.settings.name;
    if (result.ok) {
      attempts.push({ destination: dname, ok: true, error: null });
      restoredFrom = dname;
      restored = { rebuild: result.rebuild, name };
      host.info(
        `${dname}: restored ${formatBytes(db.encrypted.bytes)} in ${((Date.now() - t0) / 1000).toFixed(1)} s (${formatRate(db.encrypted.bytes, (Date.now() - t0) / 1000)})`,
      );
      break;
    }
    attempts.push({ destination: dname, ok: false, error: result.read.error });
    host.error(
      `${dname}: the restore FAILED; the new database and the roles it created were dropped, the target is as it was: ${result.read.error}`,
    );
    if (!fallsBack(result.read)) break;
    if (deps.signal.aborted) break;
  }
  const seconds = (Date.now() - t0) / 1000;
  const base = {
    restoredFrom,
    attempts,
    seconds,
    database: targetName,
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
  const { rebuild, name } = restored;
  let check: RowCheck;
  let switched: SwitchResult;
  try {
    check = await host.group('Compare row counts with the manifest', () =>
      compareRowCounts(server, name, manifest),
    );
    if (check.mismatches.length > 0) {
      await rebuild.discard();
      return done(settings, backup.id, manifest, {
        ...base,
        ok: false,
        ...check,
        differences: rebuild.differences,
      });
    }
    await host.group("Apply the database's properties", () => rebuild.applyProperties());
    switched = await host.group(
      `Switch ${JSON.stringify(name)} in as ${JSON.stringify(targetName)}`,
      () =>
        switchDatabase(server, {
          fresh: name,
          target: targetName,
          previous: databaseName(`${targetName}_before_`, stamp(deps.now())),
          terminate: settings.terminateConnections,
          drop: settings.dropPrevious ? 'always' : 'empty',
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

  let configFiles: string[] | null = null;
  const cfg = manifest.objects.find((o) => o.kind === 'config');
  if (settings.configDir && cfg) {
    const from = deps.destinations.find((d) => d.settings.name === restoredFrom) as Destination;
    configFiles = await host.group(`Extract the config bundle into ${settings.configDir}`, () =>
      extractConfig(from, `${folder}${cfg.name}`, cfg, settings),
    );
  }
  return done(settings, backup.id, manifest, {
    ...base,
    ok: true,
    ...check,
    previous: switched.previous,
    rolesCreated: [...rebuild.rolesCreated],
    rolesExisting: [...rebuild.rolesExisting],
    differences: [...rebuild.differences],
    configFiles,
  });
}

/** `20261130T101500Z`: when the previous database was set aside. */
function stamp(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

/** A missing, truncated or altered object is worth another destination; a wrong key is not. */
function fallsBack(r: ReadBackResult): boolean {
  return r.failure !== 'key';
}

async function checkKey(settings: RestoreSettings, manifest: Manifest): Promise<void> {
  const enc = manifest.encryption;
  const dec = settings.decryption;
  if (enc.mode === 'passphrase' && dec.mode !== 'passphrase')
    throw new InputError(
      'passphrase',
      "This backup was encrypted with a passphrase: set 'passphrase', not 'age-identity'.",
    );
  if (enc.mode === 'recipients') {
    if (dec.mode !== 'identities')
      throw new InputError(
        'age-identity',
        `This backup was encrypted to age public keys (${enc.recipients.join(', ')}): set 'age-identity' to a matching secret key.`,
      );
    const mine = await recipientsOf(dec.identities);
    if (!mine.some((r) => enc.recipients.includes(r)))
      throw new InputError(
        'age-identity',
        `Invalid 'age-identity': its public key${mine.length > 1 ? 's' : ''} (${mine.join(', ')}) match${mine.length > 1 ? '' : 'es'} none of the backup's recipients (${enc.recipients.join(', ')}). Expected the secret key of one of them.`,
      );
  }
}

async function checkConfigDir(dir: string, force: boolean): Promise<void> {
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

async function extractConfig(
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
  const rows: string[][] = [
    ['Backup', `${backupId} (${manifest.database.name}, made ${manifest.createdAt})`],
    ['Target', describeTarget(settings.database)],
    ['Result', report.ok ? '✅ restored' : '❌ failed'],
    ...report.attempts.map((a) => [
      `From ${a.destination}`,
      a.ok ? '✅ ok' : `❌ ${a.error} (dropped; the target is unchanged)`,
    ]),
    ['Duration', `${report.seconds.toFixed(1)} s`],
    [
      'Database',
      report.ok
        ? `${JSON.stringify(report.database)}${manifest.database.locale ? ` (${manifest.database.encoding}, ${manifest.database.locale.provider} ${manifest.database.locale.locale ?? manifest.database.locale.collate})` : ''}`
        : `${JSON.stringify(report.database)} unchanged`,
    ],
    ...(report.ok
      ? [
          [
            'Replaced database',
            report.previous ? `kept as ${JSON.stringify(report.previous)}` : 'none kept',
          ],
          [
            'Roles',
            `${report.rolesCreated.length} created${report.rolesCreated.length ? ` (${report.rolesCreated.join(', ')})` : ''}, ${report.rolesExisting.length} already existed${report.rolesExisting.length ? ` (${report.rolesExisting.join(', ')})` : ''}`,
          ],
        ]
      : []),
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
  return {
    report,
    manifest,
    summary: { title: `pg-dr restore: ${report.ok ? 'ok' : 'FAILED'}`, header: ['', ''], rows },
  };
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
