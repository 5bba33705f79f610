import { mkdir, readdir } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { extractBundle } from '../bundle/index.js';
import { recipientsOf } from '../crypto/age.js';
import { InputError } from '../errors.js';
import type { RestoreSettings } from '../inputs/parse.js';
import { pickBackups, scanAll } from '../manifest/catalog.js';
import { backupPrefix } from '../manifest/id.js';
import { dumpMajor, type Manifest, rowCountMismatches } from '../manifest/schema.js';
import { type ReadBackResult, readBack } from '../pipeline/readback.js';
import { toolPath } from '../postgres/binaries.js';
import { connect, pickClient } from '../postgres/clients.js';
import { countUserTables, startRestore } from '../postgres/restore.js';
import { countRows } from '../postgres/snapshot.js';
import type { DatabaseTarget } from '../postgres/url.js';
import { describeTarget } from '../postgres/url.js';
import type { Host, SummaryTable } from '../report/host.js';
import { formatBytes, formatRate, startProgress } from '../report/progress.js';
import type { Destination } from '../storage/destination.js';

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
  const { entries, unreachable } = await host.group('Find the backup', () =>
    scanAll(deps.destinations, settings.prefix),
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
  const session = await connect(target, settings.pgClients, deps.env);
  let existing: number;
  try {
    existing = await countUserTables(session);
  } finally {
    await session.close();
  }
  if (existing > 0 && !settings.force)
    throw new InputError(
      'force',
      `The target ${describeTarget(settings.database)} already has ${existing} tables, views or sequences. Restore into an empty database, or set force: true to drop and replace the objects the backup contains.`,
    );

  const db = manifest.objects.find((o) => o.kind === 'database');
  if (!db) throw new Error(`Backup ${backup.id} has no database object.`);
  const folder = backupPrefix(settings.prefix, backup.id);
  const attempts: { destination: string; ok: boolean; error: string | null }[] = [];
  const t0 = Date.now();
  let restoredFrom: string | null = null;
  for (const dest of order) {
    const name = dest.settings.name;
    const result = await host.group(
      `Restore ${db.name} from ${name} into ${describeTarget(settings.database)}`,
      async () => {
        const run = startRestore(toolPath(pgRestore, 'pg_restore'), target, existing > 0);
        let read = 0;
        const stop = startProgress(host, [{ label: `${name} download`, bytes: () => read }], {
          tty: host.kind === 'cli' ? process.stderr : undefined,
        });
        try {
          return await readBack({
            destination: dest,
            key: `${folder}${db.name}`,
            encrypted: db.encrypted,
            decrypt: {
              settings: settings.decryption,
              plaintext: db.plaintext,
              compression: manifest.database.compression,
              sink: {
                stdin: run.stdin,
                done: run.done,
                abort: () => run.abort(),
                mayStopEarly: false,
              },
            },
            signal: deps.signal,
            env: deps.env,
            onBytes: (n) => {
              read = n;
            },
          });
        } finally {
          stop();
        }
      },
    );
    attempts.push({ destination: name, ok: result.ok, error: result.error });
    if (result.ok) {
      restoredFrom = name;
      host.info(
        `${name}: restored ${formatBytes(db.encrypted.bytes)} in ${((Date.now() - t0) / 1000).toFixed(1)} s (${formatRate(db.encrypted.bytes, (Date.now() - t0) / 1000)})`,
      );
      break;
    }
    host.error(
      `${name}: the restore FAILED and was rolled back (pg_restore runs in one transaction that commits only after the checksum matched): ${result.error}`,
    );
    if (!fallsBack(result)) break;
    if (deps.signal.aborted) break;
  }
  const seconds = (Date.now() - t0) / 1000;
  if (!restoredFrom) {
    return done(settings, backup.id, manifest, {
      ok: false,
      restoredFrom,
      attempts,
      seconds,
      tables: 0,
      mismatches: [],
      rowCounts: 'not recorded',
      configFiles: null,
    });
  }

  let configFiles: string[] | null = null;
  const cfg = manifest.objects.find((o) => o.kind === 'config');
  if (settings.configDir && cfg) {
    const from = deps.destinations.find((d) => d.settings.name === restoredFrom) as Destination;
    configFiles = await host.group(`Extract the config bundle into ${settings.configDir}`, () =>
      extractConfig(from, `${folder}${cfg.name}`, cfg, settings),
    );
  }

  const check = await host.group('Compare row counts with the manifest', () =>
    compareRows(settings, target, manifest, deps.env),
  );
  return done(settings, backup.id, manifest, {
    ok: check.mismatches.length === 0,
    restoredFrom,
    attempts,
    seconds,
    ...check,
    configFiles,
  });
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
  const into = new PassThrough();
  const extracted = extractBundle(into, dir);
  extracted.catch(() => undefined);
  const r = await readBack({
    destination: dest,
    key,
    encrypted: cfg.encrypted,
    decrypt: {
      settings: settings.decryption,
      plaintext: cfg.plaintext,
      compression: null,
      sink: {
        stdin: into,
        done: extracted,
        abort: async () => {
          into.destroy(new Error('config bundle check failed'));
        },
        mayStopEarly: false,
      },
    },
  });
  if (!r.ok) throw new Error(`The config bundle could not be restored: ${r.error}`);
  return extracted;
}

async function compareRows(
  settings: RestoreSettings,
  target: DatabaseTarget,
  manifest: Manifest,
  env: NodeJS.ProcessEnv,
): Promise<Pick<RestoreReport, 'tables' | 'mismatches' | 'rowCounts'>> {
  const session = await connect(target, settings.pgClients, env);
  try {
    const counts = await countRows(session, 'exact');
    const method = manifest.database.rowCounts.method;
    if (method !== 'exact')
      return {
        tables: counts.length,
        mismatches: [],
        rowCounts: method === 'off' ? 'not recorded' : 'not compared (estimated in the manifest)',
      };
    const mismatches = rowCountMismatches(manifest, counts);
    return { tables: counts.length, mismatches, rowCounts: 'compared' };
  } finally {
    await session.close();
  }
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
      a.ok ? '✅ ok' : `❌ ${a.error} (rolled back)`,
    ]),
    ['Duration', `${report.seconds.toFixed(1)} s`],
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
  return {
    report,
    manifest,
    summary: { title: `pg-dr restore: ${report.ok ? 'ok' : 'FAILED'}`, header: ['', ''], rows },
  };
}
