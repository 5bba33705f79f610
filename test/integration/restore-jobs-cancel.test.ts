/**
 * A parallel restore (`restore-jobs` 2) cancelled as GitHub cancels a run — SIGTERM to the
 * built CLI — while the archive is downloaded into its temporary file, and while
 * `pg_restore -j 2` runs: the run exits within the grace period with status failed, the
 * temporary folder is gone, and so are the new database and pg_restore's sessions.
 */
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CANCEL_GRACE_MS,
  faultsTested,
  pg,
  primaryProxy,
  recipient,
  restoreInputs,
  s3,
  startCli,
  useFaultSuite,
  work,
} from '../harness/fault-suite.js';
import { destinationInputs, runPgDr } from '../harness/run.js';

useFaultSuite('restore-jobs-cancel');

/** The size of the archive file in `tmp`, once there is one. */
async function archiveBytes(tmp: string): Promise<number> {
  for (const d of await readdir(tmp)) {
    const f = join(tmp, d, 'archive.pgdump');
    const s = await stat(f).catch(() => null);
    if (s) return s.size;
  }
  return -1;
}

async function until(what: string, ok: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function pgdrDatabases(): Promise<string[]> {
  const rows = await pg.query<{ datname: string }>(
    'postgres',
    "SELECT datname FROM pg_database WHERE datname LIKE '%\\_pgdr\\_%'",
  );
  return rows.map((r) => r.datname);
}

async function backup(db: string, prefix: string): Promise<string> {
  const b = await runPgDr({
    command: 'backup',
    prefix,
    'database-url': pg.url(db),
    'age-recipients': recipient,
    ...destinationInputs(s3.primary, s3.secondary),
  });
  expect(b.failed, b.log).toBeUndefined();
  return b.outputs['backup-id'] as string;
}

/** Sends SIGTERM once `ready` resolves; the exit, how long it took, and the JSON result. */
async function cancelWhen(inputs: Record<string, string>, ready: () => Promise<void>) {
  const cli = startCli(inputs);
  let stderr = '';
  cli.stderr?.on('data', (c: Buffer) => {
    stderr += String(c);
  });
  await ready();
  const t0 = Date.now();
  cli.kill('SIGTERM');
  const timer = setTimeout(() => cli.kill('SIGKILL'), 15_000);
  const r = await cli;
  clearTimeout(timer);
  const exitMs = Date.now() - t0;
  primaryProxy.set({ kind: 'pass' });
  const log = `exit ${r.exitCode ?? r.signal} ${exitMs} ms after SIGTERM\n${stderr}`;
  expect(r.signal, log).toBeUndefined();
  expect(r.exitCode, log).toBe(1);
  expect(exitMs, log).toBeLessThan(CANCEL_GRACE_MS);
  const doc = JSON.parse(String(r.stdout)) as Record<string, unknown>;
  expect(doc, log).toMatchObject({ ok: false, status: 'failed' });
  return { doc, log };
}

describe('restore-jobs 2, cancelled (SIGTERM to the CLI)', () => {
  it('mid-download: the temporary file and its folder are removed, nothing is created', async () => {
    faultsTested.push('SIGTERM to a parallel restore mid-download');
    const id = await backup('app', 'cancel-dl/');
    const tmp = join(work, 'tmp-cancel-download');
    await mkdir(tmp);
    const target = await pg.createDatabase('jobs_cancel_download');
    // Slow enough that the archive is still coming when the signal arrives.
    primaryProxy.set({ kind: 'throttle', bytesPerSecond: 40_000, direction: 'down' });
    await cancelWhen(
      {
        ...restoreInputs(id, target),
        prefix: 'cancel-dl/',
        'restore-jobs': '2',
        'restore-temp-dir': tmp,
      },
      () => until('the archive file to grow', async () => (await archiveBytes(tmp)) > 0),
    );
    expect(await readdir(tmp)).toEqual([]);
    expect(await pgdrDatabases()).toEqual([]);
  });

  it('mid pg_restore -j 2 (a slow index build): pg_restore and its sessions end, the new database is dropped, no file left', async () => {
    faultsTested.push('SIGTERM to a parallel restore mid pg_restore -j');
    // Each row's index entry takes 20 ms to compute: building the index takes ~10 s.
    await pg.query('postgres', 'CREATE DATABASE slow_index');
    await pg.query(
      'slow_index',
      `CREATE FUNCTION slow_id(int) RETURNS int LANGUAGE sql IMMUTABLE
         AS 'SELECT $1 FROM pg_catalog.pg_sleep(0.02)';
       CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 500);
       CREATE INDEX t_slow ON t (slow_id(id));`,
    );
    const id = await backup('slow_index', 'cancel-pg/');
    const tmp = join(work, 'tmp-cancel-restore');
    await mkdir(tmp);
    const target = await pg.createDatabase('jobs_cancel_restore');
    const indexBuild = async () => {
      const rows = await pg.query<{ n: number }>(
        'postgres',
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname LIKE '%\\_pgdr\\_%' AND query ILIKE 'CREATE INDEX t_slow%'`,
      );
      return (rows[0]?.n ?? 0) > 0;
    };
    const { log } = await cancelWhen(
      {
        ...restoreInputs(id, target),
        prefix: 'cancel-pg/',
        'restore-jobs': '2',
        'restore-temp-dir': tmp,
      },
      () => until('pg_restore to build the slow index', indexBuild),
    );
    expect(log).toContain('pg_restore -j 2 into');
    expect(await readdir(tmp)).toEqual([]);
    expect(await pgdrDatabases()).toEqual([]);
    const sessions = await pg.query<{ n: number }>(
      'postgres',
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'pg_restore'",
    );
    expect(sessions[0]?.n).toBe(0);
  });
});
