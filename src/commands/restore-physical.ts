import { randomBytes } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { formatTime } from '../alerts/index.js';
import { InputError, UserError } from '../errors.js';
import type { PhysicalRestore, RecoveryTarget } from '../inputs/commands/restore.js';
import { envName } from '../inputs/env-file.js';
import type { RestoreSettings } from '../inputs/parse.js';
import type { InputName } from '../inputs/source.js';
import { ENV_FILE_VARIABLE } from '../inputs/source.js';
import type { CatalogEntry } from '../manifest/catalog.js';
import { backupPrefix } from '../manifest/id.js';
import type { Manifest } from '../manifest/schema.js';
import { checkFreeSpace } from '../pipeline/restore-file.js';
import { extractBase, tarBytes } from '../pipeline/restore-physical.js';
import type { ClientInstall } from '../postgres/binaries.js';
import { pickSameMajor } from '../postgres/clients.js';
import {
  checkDataDir,
  controlData,
  type DataDirState,
  ownDataDir,
  prepareStart,
  removeDir,
  type ServerUser,
  serverUser,
  stagingDir,
  startLog,
  startServer,
  stopServer,
  switchDataDir,
  verifyBackup,
} from '../postgres/datadir.js';
import {
  configureRecovery,
  type RecoveryEnd,
  readRecoveryEnd,
  waitForPromotion,
} from '../postgres/recovery.js';
import { formatBytes, formatRate, progressTty, startProgress } from '../report/progress.js';
import { lit } from '../report/status.js';
import type { Destination } from '../storage/destination.js';
import {
  checkConfigDir,
  checkTarget,
  extractConfig,
  type RestoreDeps,
  type RestoreReport,
  type RestoreResult,
  type TargetCheck,
} from './restore.js';
import { type CarryReport, carryInto } from './restore-carry.js';
import { checkKey, fallsBack, stamp } from './restore-common.js';

/** What the restore of a physical backup did, for the report. */
export interface PhysicalRestoreReport {
  readonly dataDir: string;
  /** Where the non-empty data directory it replaced is kept (force). */
  readonly previous: string | null;
  readonly files: number;
  /** pg_verifybackup's verdict, and whether it parsed the WAL too. */
  readonly verified: { ok: boolean; walParsed: boolean; detail: string } | null;
  /** The server started on it, if start. */
  readonly started: {
    readonly port: number | null;
    readonly seconds: number;
    readonly state: string;
    readonly checkpoint: string;
  } | null;
  /** What pg-dr changed in the restored files before the start. */
  readonly changed: readonly string[];
  /** A point-in-time recovery carried into database-url by the logical route. */
  readonly carried?: CarryReport;
  /** A point-in-time recovery: its target, and where the server stopped and was promoted. */
  readonly recovery?: {
    readonly target: string;
    readonly seconds: number;
    readonly end: RecoveryEnd;
  } | null;
}

/** The tools a physical restore runs, found (or refused) before anything is written. */
interface Tools {
  readonly verifier: ClientInstall;
  readonly server: ClientInstall | null;
  readonly user: ServerUser | null;
}

/**
 * Restores a physical backup into `data-dir`: extracted into a new folder beside it, checked
 * by pg_verifybackup, then put in its place; with `start`, a server is started on it.
 */
export async function restorePhysical(
  settings: RestoreSettings,
  want: PhysicalRestore,
  deps: RestoreDeps,
  backup: CatalogEntry,
  manifest: Manifest,
): Promise<RestoreResult> {
  const { host } = deps;
  // Everything that can refuse the restore is checked before anything is written.
  await checkKey(settings, manifest);
  if (settings.configDir) await checkConfigDir(settings.configDir, settings.force);
  const target = await checkDataDir(want.dataDir, settings.force);
  const tools = await findTools(settings, want, deps, manifest);
  if (settings.database && !want.target)
    throw new InputError(
      'database-url',
      "'database-url' with 'data-dir' carries a point-in-time recovery into that database: set a recovery target (recovery-target-time, recovery-target-lsn or recovery-target: latest), or clear 'database-url' to restore into the data directory only.",
    );
  const carry = settings.database
    ? { settings, target: await checkTarget(settings, settings.database, deps, manifest) }
    : null;
  await checkFreeSpace({ dir: dirname(want.dataDir), input: 'data-dir' }, tarBytes(manifest));
  const order = deps.destinations.filter((d) => backup.completeAt.includes(d.settings.name));
  const folder = backupPrefix(settings.prefix, backup.id);
  const t0 = Date.now();
  const attempts: RestoreReport['attempts'][number][] = [];
  let report: PhysicalRestoreReport | null = null;
  let from: string | null = null;
  for (const dest of order) {
    const r = await host.group(
      `Restore ${backup.id} from ${dest.settings.name} into ${want.dataDir}`,
      () => fromDestination(settings, deps, { dest, folder, manifest, target, tools }),
    );
    attempts.push({ destination: dest.settings.name, ok: r.ok, error: r.error });
    if (r.ok) {
      report = r.report;
      from = dest.settings.name;
      break;
    }
    host.error(
      `${dest.settings.name}: the restore FAILED; nothing was left behind, ${want.dataDir} is as it was: ${r.error}`,
    );
    if (!r.fallBack || deps.signal.aborted) break;
  }
  const configFiles =
    from && report ? await configInto(settings, deps, manifest, folder, from) : null;
  if (report && want.start && tools.server && tools.user)
    report = want.target
      ? await recoverOn(report, want, tools.server, tools.user, deps, manifest, carry)
      : await startOn(report, want, tools.server, tools.user, deps);
  return physicalDone(settings, manifest, {
    ok: report !== null,
    backupId: backup.id,
    restoredFrom: from,
    attempts,
    seconds: (Date.now() - t0) / 1000,
    tables: 0,
    mismatches: [],
    rowCounts: 'not recorded',
    configFiles,
    database: want.dataDir,
    previous: report?.previous ?? null,
    rolesCreated: [],
    rolesExisting: [],
    differences: [],
    physical: report,
  });
}

/** The config bundle into config-dir, from the destination the base came from; null when not asked. */
async function configInto(
  settings: RestoreSettings,
  deps: RestoreDeps,
  manifest: Manifest,
  folder: string,
  from: string,
): Promise<string[] | null> {
  const cfg = manifest.objects.find((o) => o.kind === 'config');
  const dest = deps.destinations.find((d) => d.settings.name === from);
  if (!settings.configDir || !cfg || !dest) return null;
  return deps.host.group(`Extract the config bundle into ${settings.configDir}`, () =>
    extractConfig(dest, `${folder}${cfg.name}`, cfg, settings),
  );
}

/** pg_verifybackup (and, with start, pg_ctl) of the backup's major; the server's OS user. */
async function findTools(
  settings: RestoreSettings,
  want: PhysicalRestore,
  deps: RestoreDeps,
  manifest: Manifest,
): Promise<Tools> {
  const major = Math.floor(manifest.database.serverVersionNum / 10000);
  const why = `backup ${manifest.id} is of PostgreSQL ${manifest.database.serverVersion}`;
  const log = (l: string) => deps.host.info(l);
  const verifier = await pickSameMajor(
    'pg_verifybackup',
    major,
    why,
    settings.pgClients,
    deps.env,
    log,
  );
  if (!want.start) return { verifier, server: null, user: null };
  const user = await serverUser('start');
  const server = await await pickSameMajor('pg_ctl', major, why, settings.pgClients, deps.env, log);
  return { verifier, server, user };
}

/** One destination's attempt: extract into a new folder, verify it, put it in place. */
async function fromDestination(
  settings: RestoreSettings,
  deps: RestoreDeps,
  o: {
    dest: Destination;
    folder: string;
    manifest: Manifest;
    target: DataDirState;
    tools: Tools;
  },
): Promise<
  | { ok: true; error: null; fallBack: false; report: PhysicalRestoreReport }
  | { ok: false; error: string; fallBack: boolean; report: null }
> {
  const { host } = deps;
  const staged = await stagingDir(o.target.path);
  const fail = async (error: string, fallBack: boolean) => {
    const left = await removeDir(staged);
    if (left) host.warning(left);
    return { ok: false as const, error, fallBack, report: null };
  };
  const base = o.manifest.objects.find((x) => x.kind === 'base');
  let read = 0;
  const progress = startProgress(
    host,
    {
      label: `restore from ${o.dest.settings.name}`,
      done: () => read,
      total: () => (base ? { bytes: base.encrypted.bytes, estimate: false } : null),
      finishing: 'extracting',
    },
    { tty: progressTty(host) },
  );
  const t0 = Date.now();
  let extracted: Awaited<ReturnType<typeof extractBase>>;
  try {
    extracted = await extractBase({
      destination: o.dest,
      folder: o.folder,
      manifest: o.manifest,
      decryption: settings.decryption,
      dir: staged,
      signal: deps.signal,
      env: deps.env,
      onBytes: (n) => {
        read = n;
      },
    });
  } finally {
    progress.stop();
  }
  if (!extracted.read.ok)
    return fail(extracted.read.error ?? 'the read failed', fallsBack(extracted.read));
  const secs = (Date.now() - t0) / 1000;
  host.info(
    `${o.dest.settings.name}: ${extracted.files} files extracted from ${formatBytes(read)} in ${secs.toFixed(1)} s (${formatRate(read, secs)})`,
  );
  const verified = await verifyBackup(o.tools.verifier.binDir, staged);
  if (!verified.ok)
    // The bytes matched the manifest's SHA-256: the other destination holds the same ones.
    return fail(`pg_verifybackup refused the restored files: ${verified.detail}`, false);
  host.info(
    `pg_verifybackup: every file matches the backup's backup_manifest${verified.walParsed ? ', and its WAL parses from the start to the end LSN' : ' (WAL not parsed: pg_waldump, of the server package, is not beside it)'}`,
  );
  const previous = await switchDataDir(staged, o.target, stamp(deps.now()));
  if (previous)
    host.info(
      `The data directory it replaced is kept as ${previous}: remove it once you no longer need it.`,
    );
  return {
    ok: true,
    error: null,
    fallBack: false,
    report: {
      dataDir: o.target.path,
      previous,
      files: extracted.files,
      verified,
      started: null,
      changed: [],
    },
  };
}

/** Starts a server on the restored data directory; a failed start is the restore's failure. */
async function startOn(
  report: PhysicalRestoreReport,
  want: PhysicalRestore,
  server: ClientInstall,
  user: ServerUser,
  deps: RestoreDeps,
  socketDir: string | null = null,
): Promise<PhysicalRestoreReport> {
  return deps.host.group(`Start a server on ${want.dataDir}`, async () => {
    // Carried into database-url: a private server (no TCP, its own socket folder, local trust).
    const opts = socketDir
      ? { binDir: server.binDir, dir: want.dataDir, user, port: 5432, throwaway: { socketDir } }
      : { binDir: server.binDir, dir: want.dataDir, user, port: want.port };
    const changed = await prepareStart(opts);
    await ownDataDir(user, want.dataDir);
    for (const c of changed) deps.host.info(`Changed: ${c}`);
    const seconds = await startServer(opts, START_TIMEOUT_SECONDS);
    const control = await controlData(server.binDir, want.dataDir);
    deps.host.info(
      `The server ${user.switch ? `(OS user ${user.name}) ` : ''}recovered and accepts connections after ${seconds.toFixed(1)} s${want.port !== null ? ` on port ${want.port}` : ''}: ${control?.state ?? 'state unknown'}, checkpoint ${control?.checkpoint ?? '?'}.`,
    );
    return {
      ...report,
      changed,
      started: {
        port: want.port,
        seconds,
        state: control?.state ?? '',
        checkpoint: control?.checkpoint ?? '',
      },
    };
  });
}

/**
 * Starts the server in targeted recovery: its restore_command is `pg-dr wal-get` with the
 * settings in a private env file beside the data directory (removed afterwards), and it is
 * promoted at the target; reports where it stopped.
 */
async function recoverOn(
  report: PhysicalRestoreReport,
  want: PhysicalRestore,
  server: ClientInstall,
  user: ServerUser,
  deps: RestoreDeps,
  manifest: Manifest,
  carry: { settings: RestoreSettings; target: TargetCheck } | null,
): Promise<PhysicalRestoreReport> {
  const target = want.target as RecoveryTarget;
  const socketDir = carry ? await mkdtemp(join(tmpdir(), 'pg-dr-sock-')) : null;
  if (socketDir) await ownDataDir(user, socketDir);
  const envFile = join(
    dirname(want.dataDir),
    `.pg-dr-wal-get-${randomBytes(6).toString('hex')}.env`,
  );
  await writeFile(envFile, envFileText(want.walInputs), { mode: 0o600 });
  try {
    await ownDataDir(user, envFile);
    await configureRecovery(want.dataDir, walGetCommand(envFile), target);
    deps.host.info(
      `Recovery to ${describeTarget(target)} from backup ${manifest.id} (ends ${manifest.physical?.endLsn ?? '?'}); WAL from pg-dr wal-get`,
    );
    const started = await startOn(report, want, server, user, deps, socketDir);
    const seconds = await deps.host.group('Replay the WAL to the target, then promote', () =>
      waitForPromotion({
        binDir: server.binDir,
        dir: want.dataDir,
        log: startLog(want.dataDir),
        timeoutSeconds: START_TIMEOUT_SECONDS,
        signal: deps.signal,
      }),
    );
    const end = readRecoveryEnd(await readFile(startLog(want.dataDir), 'utf8').catch(() => ''));
    deps.host.info(
      `Promoted after ${seconds.toFixed(1)} s of replay: stopped at ${end.lsn ?? '?'}${end.time ? `, last transaction ${end.time}` : ''}${end.timeline ? `, now on timeline ${end.timeline}` : ''}${end.stopLine ? ` (${end.stopLine})` : ''}`,
    );
    const recovered = { ...started, recovery: { target: describeTarget(target), seconds, end } };
    if (!carry || !socketDir) return recovered;
    try {
      const carried = await deps.host.group(
        `Carry the recovered database into ${carry.target.name} (logical route)`,
        () =>
          carryInto({ settings: carry.settings, deps, manifest, target: carry.target, socketDir }),
      );
      return { ...recovered, carried };
    } finally {
      const stop = await stopServer(server.binDir, want.dataDir, user);
      if (stop) deps.host.warning(`The private recovered server did not stop: ${stop}`);
      else
        deps.host.info(
          `The private recovered server is stopped; its data directory stays at ${want.dataDir}.`,
        );
    }
  } finally {
    await rm(envFile, { force: true });
    if (socketDir) await rm(socketDir, { recursive: true, force: true });
  }
}

/** The target as the report says it. */
function describeTarget(t: RecoveryTarget): string {
  return t.kind === 'time' ? t.time.toISOString() : t.kind === 'lsn' ? `LSN ${t.lsn}` : 'latest';
}

/** `PG_DR_NAME="value"` lines, double-quoted with `\`, `"` and newlines escaped. */
function envFileText(inputs: ReadonlyMap<InputName, string>): string {
  const lines = [
    '# pg-dr: the settings restore_command (pg-dr wal-get) reads; removed after recovery',
  ];
  for (const [name, value] of inputs)
    if (value !== '')
      lines.push(
        `${envName(name)}="${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`,
      );
  return `${lines.join('\n')}\n`;
}

/**
 * `PG_DR_ENV_FILE='…' 'node' '…/dist/cli/index.js' wal-get %f %p`: pg-dr's own CLI, beside this
 * bundle, its settings file named by a variable (a `--env-file` flag would be taken by Node 20
 * itself, which exits 9 when the file is gone: PostgreSQL would read that as the end of the WAL).
 */
function walGetCommand(envFile: string): string {
  const q = (v: string) => {
    if (v.includes("'")) throw new UserError(`A path in restore_command holds a quote: ${v}`);
    return `'${v}'`;
  };
  return `${ENV_FILE_VARIABLE}=${q(envFile)} ${[process.execPath, pgDrCli(), 'wal-get'].map(q).join(' ')} %f %p`;
}

/** The CLI script: this one, or `cli/index.js` beside the action's bundle. */
function pgDrCli(): string {
  const self = process.argv[1] ? realpathSync(process.argv[1]) : '';
  if (/[\\/]cli[\\/]index\.js$/.test(self)) return self;
  const sibling = join(dirname(self), 'cli', 'index.js');
  if (existsSync(sibling)) return sibling;
  throw new UserError(
    `pg-dr cannot find its own CLI (dist/cli/index.js) for the server's restore_command (running ${self || 'no script'}).`,
  );
}

/** How long pg_ctl waits for recovery to end and connections to be accepted. */
const START_TIMEOUT_SECONDS = 3600;

function physicalDone(
  settings: RestoreSettings,
  manifest: Manifest,
  report: RestoreReport,
): RestoreResult {
  const p = report.physical ?? null;
  const rows: string[][] = [
    [
      'Backup',
      `${report.backupId} (physical, ${manifest.database.serverVersion}, made ${formatTime(manifest.createdAt)})`,
    ],
    ['Data directory', settings.physical?.dataDir ?? '—'],
    ['Result', report.ok ? lit('ok', 'restored') : lit('failed', 'failed')],
    ...report.attempts.map((a) => [
      `From ${a.destination}`,
      a.ok
        ? lit('ok', 'ok')
        : lit('failed', `${a.error} (removed; the data directory is unchanged)`),
    ]),
    ['Duration', `${report.seconds.toFixed(1)} s`],
  ];
  if (p) {
    rows.push([
      'Files',
      `${p.files}; pg_verifybackup ${p.verified?.ok ? 'passed' : 'failed'}${p.verified?.walParsed === false ? ' (WAL not parsed)' : ''}`,
    ]);
    rows.push(['Replaced data directory', p.previous ? `kept as ${p.previous}` : 'none']);
    rows.push([
      'Config files',
      report.configFiles
        ? `${report.configFiles.length} extracted into ${settings.configDir}`
        : 'not extracted',
    ]);
    if (p.carried)
      rows.push([
        'Carried into',
        `${JSON.stringify(p.carried.database)} by the logical route in ${p.carried.seconds.toFixed(1)} s: ${p.carried.check.tables} tables, row counts ${p.carried.check.mismatches.length ? `${p.carried.check.mismatches.length} differ` : 'all equal'}; replaced database ${p.carried.previous ? `kept as ${JSON.stringify(p.carried.previous)}` : 'none kept'}; roles created: ${p.carried.rolesCreated.join(', ') || 'none'}`,
      ]);
    if (p.recovery)
      rows.push([
        'Recovery',
        `to ${p.recovery.target}: stopped at ${p.recovery.end.lsn ?? '?'}${p.recovery.end.time ? `, last transaction ${p.recovery.end.time}` : ''}, promoted${p.recovery.end.timeline ? ` to timeline ${p.recovery.end.timeline}` : ''} after ${p.recovery.seconds.toFixed(1)} s of replay`,
      ]);
    if (manifest.physical)
      rows.push([
        'WAL',
        `timeline ${manifest.physical.timeline}, ${manifest.physical.startLsn} to ${manifest.physical.endLsn}`,
      ]);
    rows.push([
      'Server',
      p.started
        ? `started in ${p.started.seconds.toFixed(1)} s${p.started.port !== null ? ` on port ${p.started.port}` : ''}: ${p.started.state}`
        : 'not started (start: false)',
    ]);
  }
  return {
    report,
    manifest,
    summary: {
      title: `pg-dr restore: ${report.ok ? lit('ok', 'ok') : lit('failed', 'FAILED')}`,
      header: ['restore', 'result'],
      rows,
    },
  };
}
