import type { Writable } from 'node:stream';
import { execa, type ResultPromise } from 'execa';
import { childEnv } from '../child-env.js';
import type { Session } from './session.js';
import { causeOf } from './stderr.js';
import type { DatabaseTarget } from './url.js';
import { libpqEnv } from './url.js';

/** A running pg_restore reading a custom-format archive on stdin. */
export interface RunningRestore {
  readonly stdin: Writable;
  /** Resolves when pg_restore exited 0; rejects with the error (and hint) its stderr names. */
  readonly done: Promise<void>;
  /** Kills pg_restore and waits for it: its single transaction is rolled back. */
  abort(): Promise<void>;
}

function conninfoDbname(db: string): string {
  return `dbname='${db.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** How pg_restore runs. */
export interface RestoreFlags {
  /** Objects belong to the restoring user (`--no-owner`). */
  noOwner: boolean;
  /** No GRANT/REVOKE (`--no-privileges`). */
  noPrivileges: boolean;
  /** Everything into the default tablespace (`--no-tablespaces`). */
  noTablespaces: boolean;
  /**
   * `session_replication_role = replica`: event triggers (and triggers a refresh would fire)
   * do not fire during the restore, so they cannot change what is restored. Superuser only.
   */
  replica: boolean;
  /** A `pg_restore -L` list: the entries to restore (null: all). */
  useList: string | null;
}

/**
 * Restores into `target`, a database pg-dr created for this restore (and drops if it
 * fails), so no single transaction is needed: the number of objects is not bounded by the
 * lock table. `--exit-on-error` stops at the first error.
 */
export function startRestore(
  pgRestore: string,
  target: DatabaseTarget,
  flags: RestoreFlags,
): RunningRestore {
  const child = spawnRestore(pgRestore, target, flags, [], 'pipe');
  child.process.stdin?.on('error', () => undefined);
  return {
    stdin: child.process.stdin as Writable,
    done: child.done,
    async abort() {
      child.process.kill('SIGKILL');
      await child.done.catch(() => undefined);
    },
  };
}

/** A running `pg_restore -j N` reading an archive file. */
export interface RunningFileRestore {
  /** Resolves when pg_restore exited 0; rejects with its first error lines. */
  readonly done: Promise<void>;
  /** Stops pg_restore and its workers and waits for them. */
  abort(): Promise<void>;
}

/**
 * As `startRestore`, from a custom-format archive `file` with `jobs` parallel jobs
 * (`pg_restore -j`, which needs a file: it cannot read stdin). Each job is a connection.
 */
export function startFileRestore(
  pgRestore: string,
  target: DatabaseTarget,
  flags: RestoreFlags,
  file: string,
  jobs: number,
): RunningFileRestore {
  const child = spawnRestore(pgRestore, target, flags, [`--jobs=${jobs}`, file], 'ignore');
  return {
    done: child.done,
    async abort() {
      // SIGTERM first: pg_restore then cancels its workers' queries and ends them.
      child.process.kill('SIGTERM');
      const late = setTimeout(() => child.process.kill('SIGKILL'), 5000);
      await child.done.catch(() => undefined);
      clearTimeout(late);
    },
  };
}

function spawnRestore(
  pgRestore: string,
  target: DatabaseTarget,
  flags: RestoreFlags,
  extra: readonly string[],
  stdin: 'pipe' | 'ignore',
): { process: ResultPromise; done: Promise<void> } {
  const args = ['--no-password', '--exit-on-error'];
  if (flags.noOwner) args.push('--no-owner');
  if (flags.noPrivileges) args.push('--no-privileges');
  if (flags.noTablespaces) args.push('--no-tablespaces');
  if (flags.useList) args.push(`--use-list=${flags.useList}`);
  args.push(`--dbname=${conninfoDbname(target.database)}`, ...extra);
  const env = libpqEnv(target);
  if (flags.replica)
    env.PGOPTIONS = [env.PGOPTIONS, '-c session_replication_role=replica']
      .filter(Boolean)
      .join(' ');
  const child: ResultPromise = execa(pgRestore, args, {
    env,
    extendEnv: false,
    stdin,
    stdout: 'ignore',
    stderr: 'pipe',
    buffer: { stderr: true },
  });
  const done = child.then(
    () => undefined,
    (e: { exitCode?: number; signal?: string; stderr?: unknown }) => {
      const how = e.signal ? `was stopped (${e.signal})` : `exited with code ${e.exitCode ?? '?'}`;
      throw new Error(`pg_restore ${how}: ${causeOf(e.stderr)}`);
    },
  );
  done.catch(() => undefined);
  return { process: child, done };
}

/**
 * `pg_restore --list` on stdin: reads the archive's header and table of contents. It exits
 * without reading the data, so the caller keeps consuming its stream for the checksums.
 */
export function startArchiveList(pgRestore: string): {
  stdin: Writable;
  /** The archive's table of contents: one line per entry (`<id>; <oids> <TYPE> <schema> <name> <owner>`). */
  done: Promise<string[]>;
  abort(): Promise<void>;
} {
  const child = execa(pgRestore, ['--list'], {
    env: childEnv(),
    extendEnv: false,
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: true,
    reject: false,
  });
  child.stdin?.on('error', () => undefined);
  const done = child.then((r) => {
    if (r.exitCode !== 0) throw new Error(`pg_restore --list failed: ${causeOf(r.stderr)}`);
    return String(r.stdout)
      .split('\n')
      .filter((l) => /^\d+;/.test(l));
  });
  done.catch(() => undefined);
  return {
    stdin: child.stdin as Writable,
    done,
    async abort() {
      child.kill('SIGKILL');
      await child.catch(() => undefined);
    },
  };
}

/** Ordinary tables outside the system schemas: a non-zero count means "not empty". */
export async function countUserTables(session: Session): Promise<number> {
  const [row] = await session.rows<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'`,
  );
  return row?.n ?? 0;
}
