import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { DatabaseTarget } from './url.js';
import { libpqEnv } from './url.js';

/**
 * A live `psql` session driven over stdin. pg-dr talks to PostgreSQL only through the
 * libpq clients (psql, pg_dump, pg_restore), so every connection honours the same URL
 * parameters, TLS settings and tunnel. A session is what holds an exported snapshot open
 * while pg_dump runs.
 */
export interface PsqlSession {
  /** Runs one statement; resolves with its rows as parsed JSON objects. */
  rows<T>(sql: string): Promise<T[]>;
  /** Runs statements whose output is not needed. */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

export class PsqlError extends Error {
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'PsqlError';
  }
}

let seq = 0;

export async function openPsql(psqlPath: string, target: DatabaseTarget): Promise<PsqlSession> {
  const child: ChildProcess = spawn(
    psqlPath,
    ['-X', '-q', '-A', '-t', '-w', '-v', 'ON_ERROR_STOP=1', '-P', 'pager=off'],
    { env: libpqEnv(target), stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    stderr = (stderr + d).slice(-8192);
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  let pending:
    | { marker: string; out: string[]; resolve: (l: string[]) => void; reject: (e: Error) => void }
    | undefined;
  let exited: Error | undefined;
  lines.on('line', (line) => {
    if (!pending) return;
    if (line === pending.marker) {
      const p = pending;
      pending = undefined;
      p.resolve(p.out);
    } else pending.out.push(line);
  });
  const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
    exited = new PsqlError(
      `psql ended (${signal ?? `exit ${code}`}): ${stderr.trim() || 'no message'}`,
      stderr,
    );
    pending?.reject(exited);
    pending = undefined;
  };
  child.on('exit', onExit);
  child.on('error', (e) => {
    exited = e;
    pending?.reject(e);
    pending = undefined;
  });
  child.stdin?.on('error', () => {
    /* reported through 'exit' */
  });

  const run = (sql: string): Promise<string[]> =>
    new Promise((resolve, reject) => {
      if (exited) return reject(exited);
      const marker = `__pg_dr_${process.pid}_${++seq}__`;
      pending = { marker, out: [], resolve, reject };
      child.stdin?.write(`${sql.trim().replace(/;\s*$/, '')};\n\\echo ${marker}\n`);
    });

  const session: PsqlSession = {
    async rows<T>(sql: string) {
      const out = await run(`SELECT coalesce(json_agg(q), '[]'::json) FROM (${sql}) q`);
      return JSON.parse(out.join('\n') || '[]') as T[];
    },
    async exec(sql: string) {
      await run(sql);
    },
    async close() {
      if (exited) return;
      const done = new Promise<void>((r) => child.once('exit', () => r()));
      child.stdin?.end('\\q\n');
      const timer = setTimeout(() => child.kill('SIGTERM'), 5000);
      await done;
      clearTimeout(timer);
    },
  };
  // Fail fast on a bad connection (wrong password, unreachable host) with psql's message.
  await session.exec('SELECT 1');
  // As pg_dump and pg_restore do: a database's or role's own settings (a statement timeout,
  // read-only transactions) must not break what pg-dr runs there.
  await session.exec(
    'SET statement_timeout = 0; SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0; SET default_transaction_read_only = off',
  );
  return session;
}
