import { spawnSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { appendFile, chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import pg from 'pg';
import { freePort } from './ports.js';

/** A throwaway PostgreSQL cluster listening on 127.0.0.1 with password (SCRAM) auth. */
export interface PgCluster extends Omit<ClusterInfo, 'viaSocket' | 'tls'> {
  /** The server log so far. */
  log(): Promise<string>;
  /** `postgresql://postgres:<pw>@127.0.0.1:<port>/<db>` with the password URL-encoded. */
  url(database?: string): string;
  /** Creates a database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Runs one statement (or several, without params) on a fresh connection. */
  query<T = Record<string, unknown>>(
    database: string,
    sql: string,
    params?: unknown[],
  ): Promise<T[]>;
  /** Fast shutdown, then removes the temp dir. Safe to call more than once. */
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /** Label used in the temp directory name. */
  name?: string;
  /** Binaries to use; defaults to `PG_DR_TEST_PG_BIN` or the newest installed version. */
  binDir?: string;
  /**
   * Run the server inside this network namespace (`ip netns`, root only): it listens on
   * the namespace's own 127.0.0.1, so the root namespace cannot reach it over TCP, and
   * `query` goes through the Unix socket instead.
   */
  netns?: { readonly name: string; readonly ip: string };
  /** `log_connections = on`, so a test can see who connected. */
  logConnections?: boolean;
  /**
   * TLS only: a self-signed certificate for 127.0.0.1/localhost (its file is `caFile`) and
   * a pg_hba that accepts TCP connections over TLS alone, so a client that connects at all
   * connected with TLS.
   */
  tls?: boolean;
  /**
   * PostgreSQL's own max_connections (100) and shared_buffers (128MB) instead of the lower
   * ones the harness sets for its many test clusters: what a default-configured server
   * holds (its lock table is sized by max_connections).
   */
  defaults?: boolean;
}

const SUPERUSER = 'postgres';
const OS_USER = 'postgres';
const START_ATTEMPTS = 5;

/** Picks `PG_DR_TEST_PG_BIN`, else the highest `/usr/lib/postgresql/<major>/bin` with initdb. */
export function resolvePgBinDir(): string {
  const override = process.env.PG_DR_TEST_PG_BIN;
  if (override !== undefined && override !== '') {
    if (!existsSync(join(override, 'initdb'))) {
      throw new Error(`PG_DR_TEST_PG_BIN=${override} has no initdb`);
    }
    return override;
  }
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((entry) => /^\d+$/.test(entry) && existsSync(join(root, entry, 'bin', 'initdb')))
        .map(Number)
        .sort((a, b) => b - a)
    : [];
  const newest = majors[0];
  if (newest === undefined) {
    throw new Error(
      'No PostgreSQL server binaries found under /usr/lib/postgresql/*/bin. ' +
        'Install them with: apt-get install -y postgresql-15 (or set PG_DR_TEST_PG_BIN).',
    );
  }
  return join(root, String(newest), 'bin');
}

/**
 * A random password that always contains `@ / % : # ? & + =` so that every consumer
 * has to URL-encode (and decode) it properly.
 */
export function randomPassword(): string {
  const chars = [...randomBytes(18).toString('base64url')];
  for (const special of '@/%:#?&+=') {
    chars.splice(randomInt(chars.length + 1), 0, special);
  }
  return chars.join('');
}

/** Quotes an SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function asRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

async function osUserIds(user: string): Promise<{ uid: number; gid: number }> {
  const uid = Number((await execa('id', ['-u', user])).stdout.trim());
  const gid = Number((await execa('id', ['-g', user])).stdout.trim());
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) {
    throw new Error(`Cannot resolve uid/gid of OS user '${user}'`);
  }
  return { uid, gid };
}

/** initdb and the server refuse to run as root: when root, run them as `postgres`. */
function command(file: string, args: readonly string[]): [string, string[]] {
  return asRoot() ? ['runuser', ['-u', OS_USER, '--', file, ...args]] : [file, [...args]];
}

async function tail(file: string, lines = 30): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export async function startPostgres(opts: StartPostgresOptions = {}): Promise<PgCluster> {
  const binDir = opts.binDir ?? resolvePgBinDir();
  const label = (opts.name ?? 'pg').replace(/[^A-Za-z0-9_-]/g, '_');
  const baseDir = await mkdtemp(join(tmpdir(), `pg-dr-${label}-`));
  const dataDir = join(baseDir, 'data');
  const logFile = join(baseDir, 'postgres.log');
  const pwFile = join(baseDir, 'pwfile');
  const password = randomPassword();
  const run = (file: string, args: readonly string[]) => {
    const [cmd, argv] = command(join(binDir, file), args);
    // cwd must be readable by the postgres OS user.
    return execa(cmd, argv, { cwd: baseDir });
  };

  const cleanupSync = (): void => {
    if (existsSync(join(dataDir, 'postmaster.pid'))) {
      const [cmd, argv] = command(join(binDir, 'pg_ctl'), [
        '-D',
        dataDir,
        '-m',
        'immediate',
        '-w',
        'stop',
      ]);
      spawnSync(cmd, argv, { cwd: baseDir, stdio: 'ignore' });
    }
    rmSync(baseDir, { recursive: true, force: true });
  };
  // Best effort: do not leave a server behind if the test process exits without stop().
  process.once('exit', cleanupSync);

  try {
    await writeFile(pwFile, `${password}\n`, { mode: 0o600 });
    if (asRoot()) {
      const { uid, gid } = await osUserIds(OS_USER);
      await chown(baseDir, uid, gid);
      await chown(pwFile, uid, gid);
      const probe = await execa('runuser', ['-u', OS_USER, '--', 'test', '-w', baseDir], {
        reject: false,
      });
      if (probe.exitCode !== 0) {
        throw new Error(
          `The '${OS_USER}' OS user cannot reach ${baseDir}; make every parent directory of ` +
            `${tmpdir()} traversable (chmod o+x) or point TMPDIR elsewhere.`,
        );
      }
    }

    // --no-instructions is PostgreSQL 14+; older initdb refuses unknown options.
    const initdbVersion = (await run('initdb', ['--version'])).stdout;
    const initdbMajor = Number(/\(PostgreSQL\)\s+(\d+)/.exec(initdbVersion)?.[1]);
    await run('initdb', [
      '-D',
      dataDir,
      '-U',
      SUPERUSER,
      '--auth-host=scram-sha-256',
      '--auth-local=trust',
      `--pwfile=${pwFile}`,
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
      ...(initdbMajor >= 14 ? ['--no-instructions'] : []),
    ]);
    await rm(pwFile, { force: true });

    await appendFile(join(dataDir, 'postgresql.conf'), "\ninclude = 'pg_dr_test.conf'\n");
    const caFile = opts.tls ? join(baseDir, 'server.crt') : null;
    if (opts.tls) {
      await execa('openssl', [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout',
        join(dataDir, 'server.key'),
        '-out',
        join(dataDir, 'server.crt'),
      ]);
      await execa('cp', [join(dataDir, 'server.crt'), caFile as string]);
      await writeFile(
        join(dataDir, 'pg_hba.conf'),
        'local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n',
      );
      if (asRoot()) {
        const { uid, gid } = await osUserIds(OS_USER);
        for (const f of ['server.key', 'server.crt', 'pg_hba.conf'])
          await chown(join(dataDir, f), uid, gid);
      }
      await execa('chmod', ['600', join(dataDir, 'server.key')]);
    }

    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      await writeFile(
        join(dataDir, 'pg_dr_test.conf'),
        [
          "listen_addresses = '127.0.0.1'",
          `port = ${port}`,
          `unix_socket_directories = '${baseDir}'`,
          "password_encryption = 'scram-sha-256'",
          ...(opts.logConnections ? ['log_connections = on'] : []),
          ...(opts.tls
            ? ['ssl = on', "ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'"]
            : []),
          'fsync = off',
          'synchronous_commit = off',
          'full_page_writes = off',
          ...(opts.defaults ? [] : ['shared_buffers = 32MB', 'max_connections = 50']),
          "timezone = 'UTC'",
          '',
        ].join('\n'),
      );
      if (asRoot()) {
        const { uid, gid } = await osUserIds(OS_USER);
        await chown(join(dataDir, 'pg_dr_test.conf'), uid, gid);
      }
      const [cmd, argv] = command(join(binDir, 'pg_ctl'), [
        '-D',
        dataDir,
        '-l',
        logFile,
        '-w',
        '-t',
        '60',
        'start',
      ]);
      // Only the start needs the namespace: the postmaster and its backends inherit it.
      const [file, args]: [string, string[]] = opts.netns
        ? [opts.netns.ip, ['netns', 'exec', opts.netns.name, cmd, ...argv]]
        : [cmd, argv];
      const started = await execa(file, args, { cwd: baseDir, reject: false });
      if (started.exitCode === 0) break;
      const log = await tail(logFile);
      if (attempt < START_ATTEMPTS && /could not bind|Address already in use/i.test(log)) continue;
      throw new Error(
        `pg_ctl start${opts.netns ? ` in netns ${opts.netns.name}` : ''} failed (exit ${String(started.exitCode)}): ${started.stderr}\n${log}`,
      );
    }

    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> => {
      stopping ??= (async () => {
        process.removeListener('exit', cleanupSync);
        if (existsSync(join(dataDir, 'postmaster.pid'))) {
          await execa(
            ...command(join(binDir, 'pg_ctl'), ['-D', dataDir, '-m', 'fast', '-w', 'stop']),
            {
              cwd: baseDir,
              reject: false,
            },
          );
        }
        await rm(baseDir, { recursive: true, force: true });
      })();
      return stopping;
    };

    return clusterHandle(
      {
        host: '127.0.0.1',
        port,
        user: SUPERUSER,
        password,
        binDir,
        dataDir,
        logFile,
        socketDir: baseDir,
        caFile,
        viaSocket: opts.netns !== undefined,
        tls: opts.tls === true,
      },
      stop,
    );
  } catch (err) {
    process.removeListener('exit', cleanupSync);
    cleanupSync();
    throw err;
  }
}

/** What it takes to reach a running cluster (plain data: it crosses process boundaries). */
export interface ClusterInfo {
  /** Always `127.0.0.1`. */
  readonly host: string;
  readonly port: number;
  /** Superuser name, `postgres`. */
  readonly user: string;
  /** Random superuser password; contains characters that need URL-encoding. */
  readonly password: string;
  /** Directory holding the server binaries used (initdb, pg_ctl, pg_dump, …). */
  readonly binDir: string;
  readonly dataDir: string;
  /** Server log file (useful when a test fails). */
  readonly logFile: string;
  /** Directory of the server's Unix socket (reachable from any network namespace). */
  readonly socketDir: string;
  /** With `tls`: the certificate clients verify the server with (its own, self-signed). */
  readonly caFile: string | null;
  /** Connect through the Unix socket in `socketDir` (the server runs in a namespace). */
  readonly viaSocket: boolean;
  /** Connect over TLS (the server only accepts TLS on TCP). */
  readonly tls: boolean;
}

/** A `PgCluster` for a running server; `stop` is what ends it (or hands it back). */
export function clusterHandle(info: ClusterInfo, stop: () => Promise<void>): PgCluster {
  const { host, port, password, socketDir } = info;
  const url = (database = 'postgres'): string =>
    `postgresql://${info.user}:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(database)}`;

  const query = async <T = Record<string, unknown>>(
    database: string,
    sql: string,
    params?: unknown[],
  ): Promise<T[]> => {
    // In a namespace: host = the socket's directory (node-postgres connects to
    // <dir>/.s.PGSQL.<port>), local connections are trusted.
    const client = new pg.Client(
      info.viaSocket
        ? { host: socketDir, port, user: info.user, database }
        : {
            host,
            port,
            user: info.user,
            password,
            database,
            ...(info.tls ? { ssl: { rejectUnauthorized: false } } : {}),
          },
    );
    await client.connect();
    try {
      const result = await client.query(sql, params);
      // A multi-statement string yields one result per statement; return the last.
      const last = Array.isArray(result) ? (result.at(-1) as pg.QueryResult | undefined) : result;
      return (last?.rows ?? []) as T[];
    } finally {
      await client.end();
    }
  };

  return {
    host,
    port,
    user: info.user,
    password,
    binDir: info.binDir,
    dataDir: info.dataDir,
    logFile: info.logFile,
    socketDir,
    caFile: info.caFile,
    log: () => readFile(info.logFile, 'utf8').catch(() => ''),
    url,
    async createDatabase(name: string): Promise<string> {
      await query('postgres', `CREATE DATABASE ${quoteIdent(name)}`);
      return url(name);
    },
    query,
    stop,
  };
}
