import type { Writable } from 'node:stream';
import { execa, type ResultPromise } from 'execa';
import type { PsqlSession } from './psql.js';
import type { DatabaseTarget } from './url.js';
import { libpqEnv } from './url.js';

/** A running pg_restore reading a custom-format archive on stdin. */
export interface RunningRestore {
  readonly stdin: Writable;
  /** Resolves when pg_restore exited 0; rejects with its last error lines. */
  readonly done: Promise<void>;
  /** Kills pg_restore and waits for it: its single transaction is rolled back. */
  abort(): Promise<void>;
}

function conninfoDbname(db: string): string {
  return `dbname='${db.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function lastLines(text: unknown, n = 5): string {
  const s = typeof text === 'string' ? text.trim() : '';
  return s === '' ? 'no message' : s.split('\n').slice(-n).join(' | ');
}

/**
 * Restores into `target` in ONE transaction (`--single-transaction --exit-on-error`):
 * if the stream fails, or pg-dr kills it before the end, nothing is committed. Objects
 * are owned by the restoring user (`--no-owner --no-privileges`), since the source's roles
 * rarely exist on a recovery server. `clean` drops existing objects first (force).
 */
export function startRestore(
  pgRestore: string,
  target: DatabaseTarget,
  clean: boolean,
): RunningRestore {
  const args = [
    '--no-password',
    '--no-owner',
    '--no-privileges',
    '--exit-on-error',
    '--single-transaction',
  ];
  if (clean) args.push('--clean', '--if-exists');
  args.push(`--dbname=${conninfoDbname(target.database)}`);
  const child: ResultPromise = execa(pgRestore, args, {
    env: libpqEnv(target),
    extendEnv: false,
    stdin: 'pipe',
    stdout: 'ignore',
    stderr: 'pipe',
    buffer: { stderr: true },
  });
  const done = child.then(
    () => undefined,
    (e: { exitCode?: number; signal?: string; stderr?: unknown }) => {
      const how = e.signal ? `was stopped (${e.signal})` : `exited with code ${e.exitCode ?? '?'}`;
      throw new Error(`pg_restore ${how}: ${lastLines(e.stderr)}`);
    },
  );
  done.catch(() => undefined);
  child.stdin?.on('error', () => undefined);
  return {
    stdin: child.stdin as Writable,
    done,
    async abort() {
      child.kill('SIGKILL');
      await done.catch(() => undefined);
    },
  };
}

/**
 * `pg_restore --list` on stdin: reads the archive's header and table of contents. It exits
 * without reading the data, so the caller keeps consuming its stream for the checksums.
 */
export function startArchiveList(pgRestore: string): {
  stdin: Writable;
  done: Promise<number>;
  abort(): Promise<void>;
} {
  const child = execa(pgRestore, ['--list'], {
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: true,
    reject: false,
  });
  child.stdin?.on('error', () => undefined);
  const done = child.then((r) => {
    if (r.exitCode !== 0) throw new Error(`pg_restore --list failed: ${lastLines(r.stderr)}`);
    return String(r.stdout)
      .split('\n')
      .filter((l) => /^\d+;/.test(l)).length;
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
export async function countUserTables(session: PsqlSession): Promise<number> {
  const [row] = await session.rows<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'`,
  );
  return row?.n ?? 0;
}

/**
 * Empties a scratch database for a restore drill: drops every non-system schema (and so
 * everything in it) and recreates an empty `public`.
 */
export async function emptyDatabase(session: PsqlSession): Promise<void> {
  const schemas = await session.rows<{ s: string }>(
    `SELECT nspname AS s FROM pg_namespace
     WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND nspname NOT LIKE 'pg\\_%'`,
  );
  for (const { s } of schemas) await session.exec(`DROP SCHEMA "${s.replace(/"/g, '""')}" CASCADE`);
  await session.exec('CREATE SCHEMA IF NOT EXISTS public');
}
