/**
 * `check`'s rows for `mode: physical`: what a base backup needs from the server and the
 * runner — PostgreSQL 13+, a role with REPLICATION, a replication connection the server
 * really accepts (IDENTIFY_SYSTEM over it), wal_level and a free WAL sender, no tablespace
 * of its own, and pg_basebackup and pg_verifybackup of the server's major — each proven the
 * way the backup meets it, with the fix when it fails.
 */
import {
  checkPhysicalServer,
  checkReplicationRole,
  readTablespaces,
  tablespaceRefusal,
} from '../postgres/basebackup.js';
import { type PgClientSettings, pickSameMajor, willInstall } from '../postgres/clients.js';
import { type Session, SqlError } from '../postgres/session.js';
import type { DatabaseTarget } from '../postgres/url.js';
import { identifySystem } from '../postgres/walsender.js';
import { type CheckRow, fail, ok, skipped, warn } from './row.js';

export const PHYSICAL_ROWS = {
  version: 'physical: PostgreSQL 13 or newer',
  role: 'physical: the role has REPLICATION',
  connection: 'physical: a replication connection is accepted',
  senders: 'physical: wal_level and a free WAL sender',
  tablespaces: 'physical: no tablespace of its own',
  clients: 'physical: pg_basebackup and pg_verifybackup',
} as const;

/** The server as the database rows read it. */
export interface PhysicalServer {
  readonly versionNum: number;
  /** `15.18`. */
  readonly version: string;
  readonly major: number;
}

const MANAGED =
  'Managed services (RDS, Cloud SQL, Supabase, …) usually refuse physical replication connections: mode physical is for self-hosted PostgreSQL.';

/**
 * Every physical row, in order. `target` is where the session went (the tunnel's local end
 * when `ssh-host` is set): the replication connection goes there too.
 */
export async function physicalRows(o: {
  readonly session: Session;
  readonly target: DatabaseTarget;
  readonly where: string;
  readonly server: PhysicalServer;
  readonly clients: PgClientSettings;
  readonly env: NodeJS.ProcessEnv;
}): Promise<CheckRow[]> {
  try {
    checkPhysicalServer(o.server.versionNum, o.server.version);
  } catch (e) {
    return [
      fail(
        PHYSICAL_ROWS.version,
        (e as Error).message.replace(/ Use mode: logical\.$/, ''),
        'Use mode: logical, or upgrade the server to PostgreSQL 13 or newer.',
      ),
      ...Object.values(PHYSICAL_ROWS)
        .slice(1)
        .map((r) => skipped(r, 'not checked: the server is older than PostgreSQL 13')),
    ];
  }
  const version = ok(
    PHYSICAL_ROWS.version,
    `PostgreSQL ${o.server.version}: pg_basebackup writes a backup_manifest, pg_verifybackup checks it`,
  );
  const role = await roleRow(o.session, o.target.user);
  // Read before the replication connection, which takes a WAL sender of its own while open.
  const senders = await sendersRow(o.session);
  const tablespaces = await tablespacesRow(o.session);
  const [connection, clients] = await Promise.all([
    connectionRow(o.target, o.where),
    clientsRow(o.server, o.clients, o.env),
  ]);
  return [version, role, connection, senders, tablespaces, clients];
}

/** A catalog read that failed: the row fails with the query's words. */
const unreadable = (name: string, e: unknown): CheckRow =>
  fail(
    name,
    `the catalog query failed: ${(e as Error).message}`,
    'The role must be able to read the system catalogs (pg_roles, pg_settings, pg_stat_replication, pg_tablespace): check its privileges and search_path.',
  );

async function roleRow(session: Session, user: string): Promise<CheckRow> {
  try {
    await checkReplicationRole(session);
    return ok(PHYSICAL_ROWS.role, `role "${user}" has REPLICATION or SUPERUSER`);
  } catch (e) {
    if (e instanceof SqlError) return unreadable(PHYSICAL_ROWS.role, e);
    const [detail, fix] = (e as Error).message.split(' Fix: ');
    return fail(PHYSICAL_ROWS.role, detail ?? '', fix ?? 'ALTER ROLE … REPLICATION');
  }
}

const SENDERS_SQL = `
  SELECT pg_catalog.current_setting('wal_level') AS "walLevel",
         pg_catalog.current_setting('max_wal_senders')::int AS "maxSenders",
         (SELECT count(*) FROM pg_catalog.pg_stat_replication)::int AS "inUse"`;

/** pg_basebackup -X fetch takes one WAL sender; wal_level minimal allows none. */
async function sendersRow(session: Session): Promise<CheckRow> {
  let s: { walLevel: string; maxSenders: number; inUse: number } | undefined;
  try {
    [s] = await session.rows<{ walLevel: string; maxSenders: number; inUse: number }>(SENDERS_SQL);
  } catch (e) {
    return unreadable(PHYSICAL_ROWS.senders, e);
  }
  if (!s) return unreadable(PHYSICAL_ROWS.senders, new Error('no row'));
  const free = Math.max(0, s.maxSenders - s.inUse);
  const detail = `wal_level ${s.walLevel}; ${s.inUse} of max_wal_senders ${s.maxSenders} in use, ${free} free (a base backup takes 1)`;
  const fixes: string[] = [];
  if (s.walLevel === 'minimal')
    fixes.push('ALTER SYSTEM SET wal_level = replica (with max_wal_senders above 0)');
  if (free < 1)
    fixes.push(
      `ALTER SYSTEM SET max_wal_senders = ${Math.max(s.inUse + 1, 10)}, or take the backup when a replica or WAL receiver is not connected`,
    );
  if (fixes.length === 0) return ok(PHYSICAL_ROWS.senders, detail);
  return fail(
    PHYSICAL_ROWS.senders,
    detail,
    `${fixes.join('; ')}. Both take effect after a server restart (or set them in your provider's parameter group).`,
  );
}

async function tablespacesRow(session: Session): Promise<CheckRow> {
  try {
    const all = await readTablespaces(session);
    const refusal = tablespaceRefusal(all);
    if (refusal) return fail(PHYSICAL_ROWS.tablespaces, refusal.found, refusal.fix);
    return ok(
      PHYSICAL_ROWS.tablespaces,
      `only the built-in ones: ${all.map((t) => t.name).join(', ')}`,
    );
  } catch (e) {
    return unreadable(PHYSICAL_ROWS.tablespaces, e);
  }
}

/** The replication connection itself: what only the server can say (pg_hba.conf, its limits). */
async function connectionRow(target: DatabaseTarget, where: string): Promise<CheckRow> {
  try {
    const id = await identifySystem(target);
    return ok(
      PHYSICAL_ROWS.connection,
      `${where}: IDENTIFY_SYSTEM: system identifier ${id.systemId}, timeline ${id.timeline}, WAL at ${id.walPosition}`,
    );
  } catch (e) {
    const message = (e as Error).message;
    return fail(
      PHYSICAL_ROWS.connection,
      `${where}: the server refused a replication connection: ${message}. ${MANAGED}`,
      replicationFix(e, target.user),
    );
  }
}

/** A role name as pg_hba.conf reads it: quoted unless plain. */
export function hbaName(name: string): string {
  const keyword = /^(all|sameuser|samerole|samegroup|replication)$/.test(name);
  return /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name) && !keyword
    ? name
    : `"${name.replace(/"/g, '""')}"`;
}

/** The client's address as the server saw it (its pg_hba error names it), as a CIDR. */
function hbaAddress(message: string): string {
  const host = /from host "([^"]+)"/.exec(message)?.[1];
  if (!host) return '<address>';
  if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) return `${host}/32`;
  if (host.includes(':')) return `${host}/128`;
  return host;
}

/** What to do about a refused replication connection, from the server's SQLSTATE and words. */
export function replicationFix(e: unknown, user: string): string {
  const code = e instanceof SqlError ? e.code : null;
  const message = (e as Error).message;
  const managed = 'On a managed service that refuses them, use mode: logical.';
  if (/no pg_hba\.conf entry for replication connection/.test(message))
    return `Add the line "host replication ${hbaName(user)} ${hbaAddress(message)} scram-sha-256" to pg_hba.conf (above any line that would reject it), then reload: SELECT pg_reload_conf() (or pg_ctl reload). ${managed}`;
  if (code === '42501')
    return `ALTER ROLE ${hbaName(user)} REPLICATION (see the role row): pg_hba.conf let the connection in, the role may not start a WAL sender. ${managed}`;
  if (code === '53300' || /max_wal_senders/.test(message))
    return 'Every WAL sender is in use: raise max_wal_senders (ALTER SYSTEM SET max_wal_senders = …; takes effect after a restart), or take the backup when a replica is not connected.';
  if (code === '28P01' || code === '28000')
    return `pg_hba.conf's replication line for this address asks for a password (or method) the role does not pass: check the user and password in 'database-url' and the method on that line (scram-sha-256). ${managed}`;
  return `Check that the server accepts replication connections from here: a "host replication ${hbaName(user)} <address> scram-sha-256" line in pg_hba.conf, and max_wal_senders above 0. ${managed}`;
}

/** pg_basebackup (the backup) and pg_verifybackup (verify and restore) of the server's own major. */
async function clientsRow(
  server: PhysicalServer,
  clients: PgClientSettings,
  env: NodeJS.ProcessEnv,
): Promise<CheckRow> {
  // The check installs nothing: with install-client the backup installs what is missing.
  const find = { ...clients, install: false };
  const quiet = () => undefined;
  try {
    const found = [];
    for (const tool of ['pg_basebackup', 'pg_verifybackup'] as const) {
      const c = await pickSameMajor(
        tool,
        server.major,
        `the server runs PostgreSQL ${server.version}`,
        find,
        env,
        quiet,
      );
      found.push(`${tool} ${c.version} (${c.binDir})`);
    }
    return ok(PHYSICAL_ROWS.clients, `${found.join(', ')}: the server's major ${server.major}`);
  } catch (e) {
    if (willInstall(clients, env))
      return warn(
        PHYSICAL_ROWS.clients,
        `none installed of the server's major ${server.major}; the backup installs postgresql-client-${server.major} (install-client: ${clients.install})`,
        null,
      );
    const message = (e as Error).message;
    const [detail, fix] = message.split(' Fix: ');
    return fail(
      PHYSICAL_ROWS.clients,
      detail ?? message,
      fix ?? `Install postgresql-client-${server.major}.`,
    );
  }
}
