/**
 * `check`'s database rows: the connection (through the SSH tunnel when `ssh-host` is set),
 * the server's version and the pg_dump/pg_restore a backup would use, what the role may
 * read (tables, sequences, large objects, row security), the roles the backup records, and
 * the lock budget — read the way the backup reads them, without dumping anything. With
 * `mode: physical` the rows only pg_dump needs are ⚪ and the physical rows (check/physical.ts)
 * follow: what a base backup needs, down to a real replication connection.
 */
import type { BackupMode } from '../postgres/basebackup.js';
import { type ClientInstall, formatServerVersion } from '../postgres/binaries.js';
import { type PgClientSettings, pickClient, willInstall } from '../postgres/clients.js';
import { readGlobals } from '../postgres/globals.js';
import { judgeLockBudget, readLockBudget, suggestedMaxLocks } from '../postgres/locks.js';
import { openSession, type Session, SqlError } from '../postgres/session.js';
import { COUNT_BATCH, type RowCountMethod, readServerInfo } from '../postgres/snapshot.js';
import { type DatabaseTarget, describeTarget, viaLocalPort } from '../postgres/url.js';
import { openTunnel } from '../tunnel/index.js';
import type { SshSettings } from '../tunnel/settings.js';
import { PHYSICAL_ROWS, physicalRows } from './physical.js';
import { type CheckRow, fail, ok, skipped, warn, within } from './row.js';

export interface DatabaseCheckSettings {
  /** `database-url`; null: the database rows are skipped. */
  readonly database: DatabaseTarget | null;
  readonly ssh: SshSettings | null;
  readonly pgClients: PgClientSettings;
  readonly rowCounts: RowCountMethod;
  /** The backup's `mode`: `physical` adds the physical rows and skips those only pg_dump needs. */
  readonly mode: BackupMode;
}

/** How long the database rows may take in all (tunnel, connection, clients, catalog reads). */
export const DATABASE_BOUND_MS = 120_000;

const ROWS = {
  connection: 'database: connection and server version',
  clients: 'database: pg_dump and pg_restore',
  privileges: 'database: the role can read what pg_dump reads',
  rls: 'database: row security',
  roles: 'database: roles (globals) the backup records',
  locks: 'database: lock budget',
} as const;

/** The names of the database rows for `mode`, in order. */
function rowNames(mode: BackupMode): string[] {
  return [...Object.values(ROWS), ...(mode === 'physical' ? Object.values(PHYSICAL_ROWS) : [])];
}

/** Every database row. */
export async function checkDatabase(
  s: DatabaseCheckSettings,
  env: NodeJS.ProcessEnv,
): Promise<CheckRow[]> {
  const { database } = s;
  if (!database) return rowNames(s.mode).map((r) => skipped(r, "'database-url' is not set"));
  const after = (why: string) =>
    rowNames(s.mode)
      .slice(1)
      .map((r) => skipped(r, `not checked: ${why}`));
  let session: Session | null = null;
  let close = async () => {};
  try {
    return await within(DATABASE_BOUND_MS, async (stop) => {
      stop.addEventListener('abort', () => void close(), { once: true });
      let target = database;
      let via = '';
      if (s.ssh) {
        try {
          const tunnel = await openTunnel(
            s.ssh,
            { host: database.host, port: database.port },
            { signal: stop },
          );
          close = () => tunnel.close();
          target = viaLocalPort(database, tunnel.localPort);
          via = ` through the SSH tunnel via ${s.ssh.user}@${s.ssh.host}:${s.ssh.port}`;
        } catch (e) {
          return [
            fail(
              ROWS.connection,
              `SSH tunnel via ${s.ssh.user}@${s.ssh.host}:${s.ssh.port}: ${(e as Error).message}`,
              "Check 'ssh-host', 'ssh-user', 'ssh-private-key' and 'ssh-known-hosts' (the bastion's host key line), and that the bastion can reach the database host.",
            ),
            ...after('the SSH tunnel is not up'),
          ];
        }
      }
      try {
        session = await openSession(target);
      } catch (e) {
        return [
          fail(
            ROWS.connection,
            `${describeTarget(database)}${via}: ${connectionError(e, database)}`,
            connectionFix(e),
          ),
          ...after('no connection to the database'),
        ];
      }
      const open = session;
      const prev = close;
      close = async () => {
        await open.close().catch(() => undefined);
        await prev();
      };
      try {
        return await inspect(open, s, env, { target, where: `${describeTarget(database)}${via}` });
      } catch (e) {
        return [
          fail(
            ROWS.connection,
            `${describeTarget(database)}${via}: ${(e as Error).message}`,
            connectionFix(e),
          ),
          ...after('the server did not describe itself'),
        ];
      }
    });
  } catch (e) {
    // Only the time bound gets here: every step above reports its own failure.
    return [
      fail(
        ROWS.connection,
        `${describeTarget(database)}: ${(e as Error).message}`,
        "Check the host and port in 'database-url' (and the SSH inputs): nothing answered in time.",
      ),
      ...after('no connection to the database'),
    ];
  } finally {
    await close();
  }
}

/** The driver's "timeout expired" in words: the connect_timeout that ran out. */
function connectionError(e: unknown, t: DatabaseTarget): string {
  const message = (e as Error).message;
  if (message !== 'timeout expired') return message;
  return `no answer within ${t.params.connect_timeout ?? '20'} s (connect_timeout)`;
}

/** What to do about a failed connection, from the server's SQLSTATE. */
function connectionFix(e: unknown): string {
  const code = e instanceof SqlError ? e.code : null;
  if (code === '28P01' || code === '28000')
    return "The server refused the user or password: check the user and password in 'database-url' (and pg_hba.conf for this client's address).";
  if (code === '3D000')
    return "The database does not exist: check the database name at the end of 'database-url'.";
  return "Check the host and port in 'database-url' (through the SSH tunnel when 'ssh-host' is set: the host as the bastion resolves it), and that the server accepts connections from here.";
}

async function inspect(
  session: Session,
  s: DatabaseCheckSettings,
  env: NodeJS.ProcessEnv,
  at: { target: DatabaseTarget; where: string },
): Promise<CheckRow[]> {
  const { where } = at;
  const server = await readServerInfo(session);
  const version = formatServerVersion(server.versionNum);
  const connection = ok(
    ROWS.connection,
    `${where}: PostgreSQL ${version.version}, database "${server.database}"`,
  );
  if (s.mode === 'physical') {
    // A physical backup runs no pg_dump, reads no table and takes no lock: those rows do not apply.
    const notUsed = (name: string) =>
      skipped(
        name,
        'not used by mode physical: pg_basebackup copies the files, pg_dump is not run',
      );
    return [
      connection,
      notUsed(ROWS.clients),
      notUsed(ROWS.privileges),
      notUsed(ROWS.rls),
      ...(await guarded([ROWS.roles], async () => [await rolesRow(session, server.versionNum)])),
      notUsed(ROWS.locks),
      ...(await physicalRows({
        session,
        ...at,
        server: { versionNum: server.versionNum, ...version },
        clients: s.pgClients,
        env,
      })),
    ];
  }
  const rows: CheckRow[] = [connection];
  rows.push(await clientsRow(version, s.pgClients, env));
  rows.push(
    ...(await guarded([ROWS.privileges, ROWS.rls], () => privilegeRows(session))),
    ...(await guarded([ROWS.roles], async () => [await rolesRow(session, server.versionNum)])),
    ...(await guarded([ROWS.locks], async () => [
      await locksRow(session, server.versionNum, s.rowCounts),
    ])),
  );
  return rows;
}

/** The rows of `work`, or each of `names` failed with the query's error when it throws. */
async function guarded(
  names: readonly string[],
  work: () => Promise<CheckRow[]>,
): Promise<CheckRow[]> {
  try {
    return await work();
  } catch (e) {
    const why = `the catalog query failed: ${(e as Error).message}`;
    const fix =
      'The role must be able to read the system catalogs (pg_class, pg_roles, pg_settings) as pg_dump does: check its privileges and search_path.';
    return names.map((n) => fail(n, why, fix));
  }
}

const describeClient = (tool: string, c: ClientInstall) => `${tool} ${c.version} (${c.binDir})`;

/** The pg_dump the backup picks for this server, and a pg_restore that reads its archives. */
async function clientsRow(
  server: { version: string; major: number },
  clients: PgClientSettings,
  env: NodeJS.ProcessEnv,
): Promise<CheckRow> {
  // The check installs nothing: with install-client the backup installs what is missing.
  const find = { ...clients, install: false };
  const quiet = () => undefined;
  const why = `the server runs PostgreSQL ${server.version}`;
  try {
    const dump = await pickClient('pg_dump', server.major, why, find, env, quiet);
    const restore = await pickClient(
      'pg_restore',
      dump.major,
      `pg_dump ${dump.version} writes archives only pg_restore ${dump.major} or newer reads`,
      find,
      env,
      quiet,
    );
    return ok(
      ROWS.clients,
      `${describeClient('pg_dump', dump)}, ${describeClient('pg_restore', restore)}: fit server major ${server.major}`,
    );
  } catch (e) {
    if (willInstall(clients, env))
      return warn(
        ROWS.clients,
        `none installed fits server major ${server.major}; the backup installs postgresql-client-${server.major} (install-client: ${clients.install})`,
        null,
      );
    const message = (e as Error).message;
    const [detail, fix] = message.split(' Fix: ');
    return fail(ROWS.clients, detail ?? message, fix ?? 'Install a fitting PostgreSQL client.');
  }
}

/** Relations pg_dump reads (tables, partitioned tables, sequences) the role may not SELECT. */
const UNREADABLE_SQL = `
  SELECT format('%I.%I', n.nspname, c.relname) AS name
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'S')
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                      AND d.objid = c.oid AND d.deptype = 'e')
    AND NOT pg_catalog.has_table_privilege(c.oid, 'SELECT')
  ORDER BY 1`;

/** Large objects the role may not read (pg_dump reads every one). */
const UNREADABLE_LO_SQL = `
  SELECT count(*)::int AS n FROM pg_catalog.pg_largeobject_metadata m
  WHERE NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
    AND NOT pg_catalog.pg_has_role(m.lomowner, 'USAGE')
    AND NOT EXISTS (
      SELECT 1 FROM pg_catalog.aclexplode(coalesce(m.lomacl, pg_catalog.acldefault('L', m.lomowner))) a
      WHERE a.privilege_type = 'SELECT' AND (a.grantee = 0 OR pg_catalog.pg_has_role(a.grantee, 'USAGE')))`;

/**
 * Tables whose row security applies to the role: pg_dump runs with row_security off and
 * fails on them ("query would be affected by row-level security policy").
 */
const RLS_SQL = `
  SELECT format('%I.%I', n.nspname, c.relname) AS name, c.relforcerowsecurity AS forced
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace,
       pg_catalog.pg_roles r
  WHERE r.rolname = current_user AND NOT (r.rolsuper OR r.rolbypassrls)
    AND c.relkind IN ('r', 'p') AND c.relrowsecurity
    AND (c.relforcerowsecurity OR NOT pg_catalog.pg_has_role(c.relowner, 'USAGE'))
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  ORDER BY 1`;

const firstFive = (names: readonly string[]) =>
  `${names.slice(0, 5).join(', ')}${names.length > 5 ? ` and ${names.length - 5} more` : ''}`;

async function privilegeRows(session: Session): Promise<CheckRow[]> {
  // Quoted as SQL needs it (%I): the fixes below are statements a person copies.
  const [{ user } = { user: '' }] = await session.rows<{ user: string }>(
    `SELECT pg_catalog.format('%I', current_user) AS "user"`,
  );
  const denied = (await session.rows<{ name: string }>(UNREADABLE_SQL)).map((r) => r.name);
  const [{ n: los } = { n: 0 }] = await session.rows<{ n: number }>(UNREADABLE_LO_SQL);
  const rls = await session.rows<{ name: string; forced: boolean }>(RLS_SQL);
  const out: CheckRow[] = [];
  if (denied.length === 0 && los === 0)
    out.push(
      ok(
        ROWS.privileges,
        `role ${user} may SELECT every table, sequence and large object pg_dump reads`,
      ),
    );
  else {
    const parts = [];
    if (denied.length)
      parts.push(`${denied.length} relation(s) without SELECT: ${firstFive(denied)}`);
    if (los) parts.push(`${los} large object(s) it may not read`);
    out.push(
      fail(
        ROWS.privileges,
        `role ${user}: ${parts.join('; ')} — pg_dump would fail with "permission denied"`,
        `${denied.length ? `GRANT SELECT ON ${denied.length <= 5 ? denied.join(', ') : 'each of them'} TO ${user}` : `GRANT SELECT ON LARGE OBJECT … TO ${user}`} (or GRANT pg_read_all_data TO ${user} on PostgreSQL 14+), or back up as their owner.`,
      ),
    );
  }
  if (rls.length === 0) out.push(ok(ROWS.rls, `no table's row security applies to role ${user}`));
  else
    out.push(
      fail(
        ROWS.rls,
        `${rls.length} table(s) with row security on that role ${user} does not own or bypass: ${firstFive(rls.map((r) => `${r.name}${r.forced ? ' (forced)' : ''}`))} — pg_dump would fail ("query would be affected by row-level security policy")`,
        `ALTER ROLE ${user} BYPASSRLS (as a superuser), or back up as the tables' owner${rls.some((r) => r.forced) ? ' (FORCE ROW LEVEL SECURITY applies to the owner too: only BYPASSRLS helps there)' : ''}.`,
      ),
    );
  return out;
}

async function rolesRow(session: Session, versionNum: number): Promise<CheckRow> {
  try {
    const g = await readGlobals(session, versionNum);
    if (g.passwords !== 'included')
      return warn(
        ROWS.roles,
        `${g.roles.length} role(s); the role cannot read password hashes (pg_authid): they are backed up without passwords, and a restore creates them without one`,
        'To keep the passwords, back up as a role that may read pg_authid (a superuser); otherwise set the passwords again after a restore.',
      );
    return ok(ROWS.roles, `${g.roles.length} role(s), with their password hashes`);
  } catch (e) {
    return fail(
      ROWS.roles,
      (e as Error).message,
      'The backup reads the roles the database needs from pg_roles and pg_auth_members: grant the role access to them.',
    );
  }
}

async function locksRow(
  session: Session,
  versionNum: number,
  rowCounts: RowCountMethod,
): Promise<CheckRow> {
  const b = await readLockBudget(session, versionNum, rowCounts === 'exact' ? COUNT_BATCH : 0);
  const { verdict, message } = judgeLockBudget(b);
  const fix = `Raise max_locks_per_transaction to ${suggestedMaxLocks(b)} (ALTER SYSTEM SET max_locks_per_transaction = ${suggestedMaxLocks(b)}, or in your provider's parameter group); it takes effect after a server restart.`;
  const detail = message
    .replace(/ Raise max_locks_per_transaction.*$/, '')
    .replace(/ Nothing was uploaded\.$/, '');
  if (verdict === 'refuse') return fail(ROWS.locks, detail, fix);
  if (verdict === 'warn') return warn(ROWS.locks, detail, fix);
  return ok(ROWS.locks, `${detail} pg_dump can hold about ${b.limit.toLocaleString('en-US')}.`);
}
