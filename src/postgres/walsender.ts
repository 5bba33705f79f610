/**
 * A physical replication connection (a WAL sender), as pg_basebackup and a WAL shipper open
 * it: `replication=true` in the startup packet, accepted only by a `replication` line of
 * pg_hba.conf, a role with REPLICATION (or a superuser) and a free `max_wal_senders` slot.
 */
import { connectClient, sqlErrorOf } from './session.js';
import type { DatabaseTarget } from './url.js';

/** What `IDENTIFY_SYSTEM` answers: the cluster, its timeline and where its WAL is now. */
export interface SystemIdentity {
  /** The cluster's system identifier (digits), the same one pg_controldata shows. */
  readonly systemId: string;
  readonly timeline: number;
  /** The current WAL flush position, e.g. `0/3000148`. */
  readonly walPosition: string;
}

/**
 * Opens a replication connection to `target`, runs `IDENTIFY_SYSTEM` and closes it. A refusal
 * (pg_hba.conf, the role, max_wal_senders) is a SqlError with the server's words and SQLSTATE.
 */
export async function identifySystem(target: DatabaseTarget): Promise<SystemIdentity> {
  const client = await connectClient(target, { replication: 'true' });
  try {
    const { rows } = await client.query<{ systemid: string; timeline: number; xlogpos: string }>(
      'IDENTIFY_SYSTEM',
    );
    const row = rows[0];
    if (!row) throw new Error('IDENTIFY_SYSTEM answered no row');
    return {
      systemId: String(row.systemid),
      timeline: Number(row.timeline),
      walPosition: String(row.xlogpos),
    };
  } catch (e) {
    throw sqlErrorOf(e);
  } finally {
    await client.end().catch(() => undefined);
  }
}
