import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { UserError } from '../errors.js';
import { controlData, RESTORE_CONF_MARK } from './datadir.js';
import { causeOf } from './stderr.js';

/**
 * Point-in-time recovery of a restored base backup: `recovery.signal` and the recovery
 * settings (restore_command, the target, promote at the end), the wait until the server has
 * replayed to the target and is promoted, and where it stopped, read from its log.
 */

/** Where recovery stops (PostgreSQL's own recovery_target_* settings). */
export type RecoveryStop =
  | { readonly kind: 'time'; readonly time: Date }
  | { readonly kind: 'lsn'; readonly lsn: string }
  | { readonly kind: 'latest' };

/** A value for postgresql.auto.conf: single-quoted, quotes doubled. */
function confValue(v: string): string {
  return `'${v.replace(/'/g, "''")}'`;
}

/** `2026-11-30 09:35:13.250+00`: how recovery_target_time reads a UTC moment. */
export function targetTimeText(t: Date): string {
  return `${t.toISOString().replace('T', ' ').replace('Z', '')}+00`;
}

/**
 * Puts the data directory into targeted recovery: recovery.signal, the restore_command, the
 * target (inclusive: a transaction committed exactly at the target is kept), the newest
 * timeline, and promotion once the target is reached.
 */
export async function configureRecovery(
  dir: string,
  restoreCommand: string,
  stop: RecoveryStop,
): Promise<void> {
  const lines = [
    `${RESTORE_CONF_MARK}: point-in-time recovery`,
    `restore_command = ${confValue(restoreCommand)}`,
    "recovery_target_timeline = 'latest'",
  ];
  if (stop.kind === 'time')
    lines.push(`recovery_target_time = ${confValue(targetTimeText(stop.time))}`);
  if (stop.kind === 'lsn') lines.push(`recovery_target_lsn = ${confValue(stop.lsn)}`);
  if (stop.kind !== 'latest') lines.push("recovery_target_action = 'promote'");
  await appendFile(join(dir, 'postgresql.auto.conf'), `\n${lines.join('\n')}\n`);
  await writeFile(join(dir, 'recovery.signal'), '', { mode: 0o600 });
}

/** Where the server's recovery ended, from its log. */
export interface RecoveryEnd {
  /** The last WAL record replayed (`redo done at`). */
  readonly lsn: string | null;
  /** The last transaction replayed's commit time, or the target's stop line's. */
  readonly time: string | null;
  /** The new timeline after promotion. */
  readonly timeline: number | null;
  /** PostgreSQL's own line about the target, when it stopped at one. */
  readonly stopLine: string | null;
}

export function readRecoveryEnd(log: string): RecoveryEnd {
  const stop = /recovery stopping (?:before|after) [^\n]*/.exec(log)?.[0] ?? null;
  const stopTime = stop ? /, time (.+)$/.exec(stop)?.[1] : undefined;
  const last = /last completed transaction was at log time ([^\n]+)/.exec(log)?.[1];
  const redo = /redo done at ([0-9A-F]+\/[0-9A-F]+)/.exec(log)?.[1] ?? null;
  const tli = /selected new timeline ID: (\d+)/.exec(log)?.[1];
  return {
    lsn: redo,
    time: (last ?? stopTime ?? null)?.trim() ?? null,
    timeline: tli ? Number(tli) : null,
    stopLine: stop,
  };
}

/**
 * Waits until the server has left recovery (promoted: `in production`), polling
 * pg_controldata; a server that stops meanwhile, or a recovery that ends short of its target,
 * fails with the end of its log.
 */
export async function waitForPromotion(o: {
  binDir: string;
  dir: string;
  log: string;
  timeoutSeconds: number;
  signal: AbortSignal;
}): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const c = await controlData(o.binDir, o.dir);
    if (c?.state === 'in production') return (Date.now() - t0) / 1000;
    const log = await readFile(o.log, 'utf8').catch(() => '');
    if (
      /FATAL|PANIC/.test(log) &&
      /database system is shut down|startup process .* exited/.test(log)
    )
      throw new UserError(`Recovery failed: ${causeOf(log, 6)} (log: ${o.log}).`);
    if ((Date.now() - t0) / 1000 > o.timeoutSeconds)
      throw new UserError(
        `Recovery did not reach its target within ${o.timeoutSeconds} s (state: ${c?.state ?? 'unknown'}); the server keeps replaying. Log: ${o.log}.`,
      );
    await sleep(500, undefined, { signal: o.signal });
  }
}
