import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import {
  access,
  appendFile,
  chmod,
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  writeFile,
} from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { execa } from 'execa';
import { InputError, UserError } from '../errors.js';
import { causeOf } from './stderr.js';

/**
 * A PostgreSQL data directory restored from a physical backup: where it goes, who may run a
 * server on it, pg_verifybackup, and starting and stopping a server on it with pg_ctl.
 */

/** A private start's access rules (local trust, no TCP), beside the restored pg_hba.conf. */
const THROWAWAY_HBA = 'pg-dr-private-hba.conf';

/** What pg-dr does with a data directory it restored into when the server is started. */
export const RESTORE_CONF_MARK = '# pg-dr restore';

/** The OS user a server runs as: pg-dr's own, or `postgres` when pg-dr runs as root. */
export interface ServerUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  /** pg-dr runs as root: the server's commands run through `runuser -u <name> --`. */
  readonly switch: boolean;
}

/**
 * PostgreSQL refuses to run as root. Run as root (a container), pg-dr runs the server as the
 * OS user `postgres`, which then owns the data directory; no such user is a clear error.
 */
export async function serverUser(input: string): Promise<ServerUser> {
  const uid = process.getuid?.() ?? -1;
  if (uid !== 0) return { name: '', uid, gid: process.getgid?.() ?? -1, switch: false };
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  const line = passwd.split('\n').find((l) => l.startsWith('postgres:'));
  const [, , u, g] = line?.split(':') ?? [];
  if (u === undefined || g === undefined)
    throw new InputError(
      input,
      `PostgreSQL does not run as root, pg-dr runs as root here and there is no OS user "postgres" to run the server as. Run pg-dr as the user who will own the data directory, or create the user postgres.`,
    );
  return { name: 'postgres', uid: Number(u), gid: Number(g), switch: true };
}

/** `file args…` as the server user. */
function asServer(user: ServerUser, file: string, args: readonly string[]): [string, string[]] {
  return user.switch ? ['runuser', ['-u', user.name, '--', file, ...args]] : [file, [...args]];
}

/** What is at the data directory's path before the restore. */
export interface DataDirState {
  readonly path: string;
  readonly exists: boolean;
  /** Entries in it (0 when it does not exist). */
  readonly entries: number;
}

/**
 * The data directory may be restored into: missing or empty, or (with force) not empty and
 * no server running on it. A running server is refused even with force.
 */
export async function checkDataDir(path: string, force: boolean): Promise<DataDirState> {
  const st = await stat(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return null;
    throw new InputError('data-dir', `Cannot read 'data-dir' ${path}: ${e.message}.`);
  });
  if (st === null) {
    await access(dirname(path), constants.W_OK).catch(() => {
      throw new InputError(
        'data-dir',
        `'data-dir' ${path} does not exist and its parent folder ${dirname(path)} is missing or not writable. Expected a folder pg-dr can create.`,
      );
    });
    return { path, exists: false, entries: 0 };
  }
  if (!st.isDirectory())
    throw new InputError(
      'data-dir',
      `'data-dir' ${path} is not a folder. Expected an empty folder.`,
    );
  const entries = await readdir(path);
  const pid = await runningPid(path);
  if (pid !== null)
    throw new InputError(
      'data-dir',
      `A server is running on 'data-dir' ${path} (postmaster.pid: process ${pid}). Stop it first (pg_ctl -D ${path} stop); pg-dr never restores under a running server, even with force.`,
    );
  if (entries.length > 0 && !force)
    throw new InputError(
      'force',
      `'data-dir' ${path} is not empty (${entries.length} entries, e.g. ${entries.slice(0, 3).join(', ')}). Restore into an empty or new folder, or set force: true: the restore then goes into a new folder beside it that replaces it once complete and checked, and the old one is kept as "${basename(path)}_before_<time>".`,
    );
  return { path, exists: true, entries: entries.length };
}

/** The pid in `postmaster.pid` when that process is alive; null otherwise. */
async function runningPid(dir: string): Promise<number | null> {
  const text = await readFile(join(dir, 'postmaster.pid'), 'utf8').catch(() => null);
  const pid = Number(text?.split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM' ? pid : null;
  }
}

/**
 * A new private folder beside the data directory (same file system, so the switch is a
 * rename), which the restore fills before it replaces the data directory.
 */
export async function stagingDir(path: string): Promise<string> {
  const dir = join(dirname(path), `.${basename(path)}.pg-dr-${randomBytes(4).toString('hex')}`);
  await mkdir(dir, { mode: 0o700 });
  return dir;
}

/**
 * Puts the restored folder in place of the data directory. A missing or empty one is simply
 * replaced; a non-empty one (force) is kept as `<name>_before_<stamp>`. Returns that name.
 */
export async function switchDataDir(
  staged: string,
  target: DataDirState,
  stamp: string,
): Promise<string | null> {
  let previous: string | null = null;
  if (target.exists && target.entries === 0) await rmdir(target.path);
  else if (target.exists) {
    previous = `${target.path}_before_${stamp}`;
    await rename(target.path, previous);
  }
  await rename(staged, target.path);
  await chmod(target.path, 0o700);
  return previous;
}

/** Gives the server user the restored files (pg-dr as root only). */
export async function ownDataDir(user: ServerUser, dir: string): Promise<void> {
  if (!user.switch) return;
  const r = await execa('chown', ['-R', `${user.uid}:${user.gid}`, dir], { reject: false });
  if (r.exitCode !== 0) throw new Error(`chown of ${dir} failed: ${causeOf(r.stderr)}`);
}

/**
 * `pg_verifybackup` on the restored files, against the backup_manifest inside them. The WAL
 * is parsed when pg_waldump is beside it (it comes with the server package); otherwise
 * `--no-parse-wal`, and the result says so.
 */
export async function verifyBackup(
  binDir: string,
  dir: string,
): Promise<{ ok: boolean; detail: string; walParsed: boolean }> {
  const walParsed = await access(join(binDir, 'pg_waldump'), constants.X_OK).then(
    () => true,
    () => false,
  );
  const args = ['--quiet', ...(walParsed ? [] : ['--no-parse-wal']), dir];
  const r = await execa(join(binDir, 'pg_verifybackup'), args, {
    reject: false,
    stdin: 'ignore',
    all: true,
    env: { PATH: `${binDir}:${process.env.PATH ?? ''}`, LC_ALL: 'C' },
  });
  const detail = causeOf(r.all, 5);
  return { ok: r.exitCode === 0, detail, walParsed };
}

/** How a started server is reached. */
export interface StartOptions {
  readonly binDir: string;
  readonly dir: string;
  readonly user: ServerUser;
  /** TCP port; null keeps the restored configuration's. */
  readonly port: number | null;
  /** A drill's copy: no TCP, every local connection trusted, its own socket folder. */
  readonly throwaway?: { readonly socketDir: string };
}

/**
 * Prepares a restored data directory for its first start: a configuration when the backup
 * holds none (Debian keeps it in /etc), archiving off so the copy never ships its WAL into
 * the source's archive, and a drill's own access rules. Returns what it changed.
 */
export async function prepareStart(o: StartOptions): Promise<string[]> {
  const changed: string[] = [];
  const has = (f: string) =>
    access(join(o.dir, f)).then(
      () => true,
      () => false,
    );
  if (!(await has('postgresql.conf'))) {
    await writeFile(
      join(o.dir, 'postgresql.conf'),
      `${RESTORE_CONF_MARK}: the backup held no postgresql.conf\n`,
      { mode: 0o600 },
    );
    changed.push('postgresql.conf written (the backup held none: its server kept it elsewhere)');
  }
  if (o.throwaway)
    // Its own rules in a file of its own: the restored pg_hba.conf stays as the backup had it.
    await writeFile(join(o.dir, THROWAWAY_HBA), `${RESTORE_CONF_MARK}\nlocal all all trust\n`, {
      mode: 0o600,
    });
  else if (!(await has('pg_hba.conf'))) {
    await writeFile(
      join(o.dir, 'pg_hba.conf'),
      `${RESTORE_CONF_MARK}\nlocal all all peer\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n`,
      { mode: 0o600 },
    );
    changed.push('pg_hba.conf written (local peer, loopback scram-sha-256)');
  }
  if (!(await has('pg_ident.conf')))
    await writeFile(join(o.dir, 'pg_ident.conf'), '', { mode: 0o600 });
  await appendFile(
    join(o.dir, 'postgresql.auto.conf'),
    `\n${RESTORE_CONF_MARK}: a restored copy must not ship its WAL into the source's archive\narchive_mode = 'off'\n`,
  );
  changed.push("archive_mode = 'off' in postgresql.auto.conf");
  return changed;
}

/** Settings given on the command line of a restored server's start. */
function startSettings(o: StartOptions): string[] {
  const c: string[] = [];
  if (o.port !== null) c.push('-p', String(o.port));
  if (o.throwaway)
    c.push(
      '-c',
      'listen_addresses=',
      '-k',
      o.throwaway.socketDir,
      // The copy's own rules, whatever the restored configuration points at; and nothing that
      // reaches out (TLS files it may lack, a log collector hiding the start's errors).
      '-c',
      `hba_file=${join(o.dir, THROWAWAY_HBA)}`,
      '-c',
      `ident_file=${join(o.dir, 'pg_ident.conf')}`,
      '-c',
      'ssl=off',
      '-c',
      'logging_collector=off',
    );
  return c;
}

/**
 * `pg_ctl start -w`: the server recovers to the backup's end and accepts connections, or the
 * start fails with the end of its log. Returns the seconds it took.
 */
export async function startServer(o: StartOptions, timeoutSeconds: number): Promise<number> {
  const log = startLog(o.dir);
  await mkdir(dirname(log), { recursive: true });
  await ownDataDir(o.user, dirname(log));
  const t0 = Date.now();
  const opts = startSettings(o).map(shellQuote).join(' ');
  const [file, args] = asServer(o.user, join(o.binDir, 'pg_ctl'), [
    'start',
    '-D',
    o.dir,
    '-l',
    log,
    '-w',
    '-t',
    String(timeoutSeconds),
    ...(opts ? ['-o', opts] : []),
  ]);
  const r = await execa(file, args, { reject: false, stdin: 'ignore', all: true });
  if (r.exitCode !== 0) {
    const tail = await readFile(log, 'utf8').catch(() => '');
    throw new UserError(
      `The restored server did not start (pg_ctl exit ${String(r.exitCode)}): ${causeOf(tail || r.all, 6)}. Its log: ${log}.`,
    );
  }
  return (Date.now() - t0) / 1000;
}

/** The server log of a start by pg-dr (pg_ctl -l). */
export function startLog(dir: string): string {
  return join(dir, 'log', 'pg-dr-start.log');
}

/** `pg_ctl stop -m fast`; a failure is returned, not thrown (used in clean-up). */
export async function stopServer(
  binDir: string,
  dir: string,
  user: ServerUser,
): Promise<string | null> {
  const [file, args] = asServer(user, join(binDir, 'pg_ctl'), [
    'stop',
    '-D',
    dir,
    '-m',
    'fast',
    '-w',
    '-t',
    '60',
  ]);
  const r = await execa(file, args, { reject: false, stdin: 'ignore', all: true });
  return r.exitCode === 0 ? null : causeOf(r.all);
}

/** `pg_controldata`'s state and last checkpoint, for the report. */
export async function controlData(
  binDir: string,
  dir: string,
): Promise<{ state: string; checkpoint: string; timeline: string } | null> {
  const r = await execa(join(binDir, 'pg_controldata'), [dir], {
    reject: false,
    env: { LC_ALL: 'C' },
  });
  if (r.exitCode !== 0) return null;
  const field = (name: string) =>
    new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(r.stdout)?.[1]?.trim() ?? '';
  return {
    state: field('Database cluster state'),
    checkpoint: field('Latest checkpoint location'),
    timeline: field("Latest checkpoint's TimeLineID"),
  };
}

/** One argument for pg_ctl's `-o` (split by a shell). */
function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Removes a folder pg-dr made; a failure is returned (clean-up must not hide the cause). */
export async function removeDir(dir: string): Promise<string | null> {
  try {
    await rm(dir, { recursive: true, force: true });
    return null;
  } catch (e) {
    return `${dir} could not be removed: ${(e as Error).message}`;
  }
}
