import { randomBytes } from 'node:crypto';
import { UserError } from '../errors.js';
import {
  createDatabaseSql,
  createRoleSql,
  databasePropertiesSql,
  type GlobalMembership,
  type GlobalRole,
  type Globals,
  grantMembershipSql,
  readSecurityDefiners,
} from './globals.js';
import type { RestoreFlags } from './restore.js';
import { type Session, SqlError } from './session.js';
import { quoteIdent, quoteLiteral } from './sql.js';
import type { DatabaseTarget } from './url.js';

/**
 * The restore route that gives back the same database and changes nothing when it fails:
 * the roles the backup names are created where missing, a NEW database is created beside
 * the target with the source's encoding and locale, the archive is restored into it with
 * owners and privileges, its properties are applied, it is checked, and only then is it
 * switched in by renaming. Any failure before the switch drops the new database and the
 * roles this run created.
 */

/** How pg-dr reaches the server: one database by name, and a maintenance database. */
export interface ServerAccess {
  /** A session on the maintenance database (`postgres`, else `template1`). */
  maintenance(): Promise<Session>;
  /** A session on one database of the server. */
  open(database: string): Promise<Session>;
  /** The connection to one database of the server (for pg_restore). */
  target(database: string): DatabaseTarget;
}

export interface ServerFacts {
  readonly versionNum: number;
  readonly user: string;
  readonly superuser: boolean;
  readonly createRole: boolean;
  readonly createDb: boolean;
}

export async function serverFacts(s: Session): Promise<ServerFacts> {
  const [row] = await s.rows<ServerFacts>(
    `SELECT current_setting('server_version_num')::int AS "versionNum", current_user AS user,
            rolsuper AS superuser, rolcreaterole AS "createRole", rolcreatedb AS "createDb"
     FROM pg_catalog.pg_roles WHERE rolname = current_user`,
  );
  if (!row) throw new Error('The server did not describe the connected role.');
  return row;
}

/** What a database holds besides what CREATE DATABASE puts there. */
export interface DatabaseState {
  readonly exists: boolean;
  /** Tables, views, sequences, functions, types, large objects, extensions beyond plpgsql, schemas beyond public. */
  readonly objects: number;
  /** Other sessions connected to it: "user (application)". */
  readonly connections: readonly string[];
}

export async function databaseState(server: ServerAccess, name: string): Promise<DatabaseState> {
  const m = await server.maintenance();
  let connections: string[];
  try {
    const [row] = await m.rows<{ exists: boolean }>(
      `SELECT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = ${quoteLiteral(name)}) AS exists`,
    );
    if (!row?.exists) return { exists: false, objects: 0, connections: [] };
    connections = await liveConnections(m, name);
  } finally {
    await m.close();
  }
  const s = await server.open(name);
  try {
    const [row] = await s.rows<{ n: number }>(
      `SELECT (SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%')
            + (SELECT count(*) FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
               WHERE n.nspname NOT IN ('pg_catalog', 'information_schema'))
            + (SELECT count(*) FROM pg_catalog.pg_largeobject_metadata)
            + (SELECT count(*) FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql')
            + (SELECT count(*) FROM pg_catalog.pg_namespace
               WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'public') AND nspname NOT LIKE 'pg\\_%')
            AS n`,
    );
    return { exists: true, objects: Number(row?.n ?? 0), connections };
  } finally {
    await s.close();
  }
}

async function liveConnections(m: Session, name: string): Promise<string[]> {
  const rows = await m.rows<{ who: string }>(
    `SELECT coalesce(usename::text, '?') || coalesce(' (' || nullif(application_name, '') || ')', '') AS who
     FROM pg_catalog.pg_stat_activity
     WHERE datname = ${quoteLiteral(name)} AND pid <> pg_catalog.pg_backend_pid()`,
  );
  return rows.map((r) => r.who);
}

/** A name no database on the server has yet: `<base><suffix>`, cut to PostgreSQL's 63 bytes. */
export function databaseName(base: string, suffix: string): string {
  let b = base;
  while (Buffer.byteLength(b + suffix) > 63) b = b.slice(0, -1);
  return b + suffix;
}

export function randomSuffix(): string {
  return randomBytes(3).toString('hex');
}

export interface Rebuild {
  /** The new database's name. */
  readonly database: string;
  /** How pg_restore must run for this route. */
  readonly flags: RestoreFlags;
  readonly rolesCreated: readonly string[];
  readonly rolesExisting: readonly string[];
  /** Memberships granted between roles that existed (`role → member`). */
  readonly membershipsGranted: readonly string[];
  /** What will differ from the source, found so far. */
  readonly differences: string[];
  /** Owner, comment, settings, grants and connection limit of the database (after the restore). */
  applyProperties(): Promise<void>;
  /** Drops the new database and every role this run created; revokes memberships it granted. */
  discard(): Promise<void>;
}

/**
 * Who owns the restored objects. `source`: each object its source owner (a superuser
 * restores). `restorer`: the restoring user (a non-superuser on a managed service); the
 * privileges are kept, and what cannot be restored is listed as a difference.
 */
export const OWNERSHIPS = ['source', 'restorer'] as const;
export type Ownership = (typeof OWNERSHIPS)[number];

export interface RebuildOptions {
  readonly server: ServerAccess;
  readonly facts: ServerFacts;
  readonly ownership: Ownership;
  /** null: a backup made before pg-dr backed up globals — contents only, owned by the restorer. */
  readonly globals: Globals | null;
  /** Name of the new database. */
  readonly name: string;
  readonly log: (line: string) => void;
}

/** The comment a database carries while pg-dr restores into it. */
export const IN_PROGRESS_COMMENT = 'pg-dr: a restore in progress (dropped if it fails)';

/** Refuses, before anything is written, a restoring role that cannot do this route. */
export function checkRestorer(
  withGlobals: boolean,
  facts: ServerFacts,
  input: string,
  ownership: Ownership,
): void {
  if (withGlobals && ownership === 'source' && !facts.superuser)
    throw new RebuildError(
      `Restoring every object with its source owner needs a superuser on the target: '${input}' connects as ${JSON.stringify(facts.user)}, which is not one. Connect as a superuser, or set ownership: restorer (managed services: the objects then belong to ${JSON.stringify(facts.user)}, privileges are kept).`,
    );
  if (!facts.superuser && !facts.createDb)
    throw new RebuildError(
      `The restore creates a new database and needs CREATEDB: '${input}' connects as ${JSON.stringify(facts.user)}, which has neither CREATEDB nor superuser.`,
    );
}

/** Refuses, before anything is written, what this route cannot do on this server. */
export function checkRebuild(
  globals: Globals | null,
  facts: ServerFacts,
  input: string,
  ownership: Ownership,
): void {
  checkRestorer(globals !== null, facts, input, ownership);
  if (globals) createDatabaseSql(globals.database, 'x', facts.versionNum);
}

export class RebuildError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'RebuildError';
  }
}

/** The server's message of a failed statement, without its severity. */
export function sqlError(e: unknown): string {
  const message = (e as Error).message;
  return e instanceof SqlError ? message.replace(/^(ERROR|FATAL|PANIC):\s*/, '') : message;
}

/**
 * Runs each statement on its own session and keeps going: what fails is returned (the
 * statement and why) for the summary, not thrown. For what a non-superuser may or may not
 * be allowed to restore.
 */
async function tryEach(
  open: () => Promise<Session>,
  statements: readonly string[],
): Promise<{ sql: string; error: string }[]> {
  const failed: { sql: string; error: string }[] = [];
  for (const sql of statements) {
    let s: Session | null = null;
    try {
      s = await open();
      await s.exec(sql);
    } catch (e) {
      failed.push({ sql, error: sqlError(e) });
    } finally {
      await s?.close().catch(() => undefined);
    }
  }
  return failed;
}

/** Runs statements in one transaction on a fresh maintenance session. */
async function inTransaction(server: ServerAccess, statements: readonly string[]): Promise<void> {
  if (statements.length === 0) return;
  const s = await server.maintenance();
  try {
    await s.exec('BEGIN');
    for (const sql of statements) await s.exec(sql);
    await s.exec('COMMIT');
  } finally {
    await s.close();
  }
}

/** The attributes in which an existing role differs from the source's, as words. */
function roleDifferences(source: GlobalRole, existing: GlobalRole): string[] {
  const out: string[] = [];
  const flags: [keyof GlobalRole, string][] = [
    ['superuser', 'SUPERUSER'],
    ['inherit', 'INHERIT'],
    ['createRole', 'CREATEROLE'],
    ['createDb', 'CREATEDB'],
    ['login', 'LOGIN'],
    ['replication', 'REPLICATION'],
    ['bypassRls', 'BYPASSRLS'],
  ];
  for (const [k, word] of flags)
    if (source[k] !== existing[k]) out.push(`${source[k] ? '' : 'NO'}${word} in the source`);
  if (source.connectionLimit !== existing.connectionLimit)
    out.push(`CONNECTION LIMIT ${source.connectionLimit} in the source`);
  if (
    source.password !== null &&
    existing.password !== null &&
    source.password !== existing.password
  )
    out.push('another password');
  const a = [...source.settings].sort().join('\n');
  const b = [...existing.settings].sort().join('\n');
  if (a !== b) out.push('other settings');
  return out;
}

/**
 * Creates the new database and the missing roles. Nothing exists of it but what `discard`
 * removes; the caller restores into `database`, then applies the properties.
 */
export async function beginRebuild(opts: RebuildOptions): Promise<Rebuild> {
  const run = new RebuildRun(opts);
  if (opts.globals) await run.createWithGlobals(opts.globals);
  else
    run.differences.push(
      'This backup has no globals (made before pg-dr backed up roles): roles, owners, privileges and database properties are not restored; every object belongs to the restoring user.',
    );
  if (!run.created) await run.createDatabase(`CREATE DATABASE ${quoteIdent(opts.name)}`);
  return run;
}

/** A membership between two roles, as granted (`role` to `member`). */
type Grant = Pick<GlobalMembership, 'role' | 'member'>;

/**
 * One rebuild: what it has created so far (for `discard`), and what it found that will
 * differ from the source. Steps, in order: read the target, plan the roles and the
 * memberships, create the database, create the roles and grant the memberships.
 */
class RebuildRun implements Rebuild {
  readonly database: string;
  readonly flags: RestoreFlags;
  readonly rolesCreated: string[] = [];
  readonly rolesExisting: string[] = [];
  readonly differences: string[] = [];
  /** Whether the new database exists (`discard` drops it). */
  created = false;
  private readonly granted: Grant[] = [];
  private readonly server: ServerAccess;
  private readonly facts: ServerFacts;
  private readonly globals: Globals | null;
  private readonly log: (line: string) => void;
  /** The restorer owns everything (and the backup has globals to restore otherwise). */
  private readonly restorer: boolean;

  constructor(opts: RebuildOptions) {
    this.server = opts.server;
    this.facts = opts.facts;
    this.globals = opts.globals;
    this.database = opts.name;
    this.log = opts.log;
    this.restorer = opts.ownership === 'restorer' && opts.globals !== null;
    this.flags = {
      noOwner: opts.globals === null || this.restorer,
      noPrivileges: opts.globals === null,
      noTablespaces: false,
      // Event triggers (and triggers fired by a refresh) must not change what is restored:
      // in `replica` mode they do not fire. Setting it needs a superuser.
      replica: opts.facts.superuser,
      useList: null,
    };
  }

  get membershipsGranted(): readonly string[] {
    return this.grantedBetweenExisting().map((g) => `${g.role} → ${g.member}`);
  }

  /** The database with the source's properties, the roles it needs, their memberships. */
  async createWithGlobals(globals: Globals): Promise<void> {
    const target = await readTarget(this.server, this.facts.superuser);
    this.noteMissingTablespaces(globals, target.tablespaces);
    const byName = new Map(target.roles.map((r) => [r.name, r]));
    const toCreate = this.rolesToCreate(globals, byName);
    this.noteExistingRoles(globals, byName);
    this.notePasswordless(globals, toCreate);
    const memberships = await this.membershipsNeeded(globals, byName, toCreate);
    // The database first: a locale the target lacks fails here, before any role exists.
    await this.createDatabase(
      createDatabaseSql(globals.database, this.database, this.facts.versionNum),
    );
    await this.createRoles(toCreate, memberships);
  }

  async createDatabase(sql: string): Promise<void> {
    await createDatabase(this.server, sql, this.database);
    this.created = true;
  }

  private noteMissingTablespaces(globals: Globals, existing: readonly string[]): void {
    const missing = globals.tablespaces.filter((t) => !existing.includes(t));
    if (missing.length === 0) return;
    this.flags.noTablespaces = true;
    this.differences.push(
      `Tablespace${missing.length > 1 ? 's' : ''} ${missing.map((t) => JSON.stringify(t)).join(', ')} do${missing.length > 1 ? '' : 'es'} not exist on the target: everything is restored into the default tablespace.`,
    );
  }

  /** The backup's roles missing on the target, as this restoring role can create them. */
  private rolesToCreate(globals: Globals, byName: ReadonlyMap<string, GlobalRole>): GlobalRole[] {
    const toCreate = globals.roles.filter((r) => !byName.has(r.name));
    if (!this.restorer || toCreate.length === 0 || this.facts.superuser) return toCreate;
    if (!this.facts.createRole)
      throw new RebuildError(
        `${toCreate.length} role(s) the backup needs do not exist on the target (${toCreate.map((r) => JSON.stringify(r.name)).join(', ')}), and ${JSON.stringify(this.facts.user)} has no CREATEROLE to create them. Create them first (globals.sql in the backup has their definitions), or restore as a role with CREATEROLE.`,
      );
    return toCreate.map((r) => this.withoutWhatRestorerLacks(r));
  }

  /** A non-superuser cannot give what it does not have. */
  private withoutWhatRestorerLacks(r: GlobalRole): GlobalRole {
    const { createDb, user } = this.facts;
    const dropped = [
      r.superuser ? 'SUPERUSER' : null,
      r.replication ? 'REPLICATION' : null,
      r.bypassRls ? 'BYPASSRLS' : null,
      r.createDb && !createDb ? 'CREATEDB' : null,
    ].filter((x): x is string => x !== null);
    if (dropped.length === 0) return r;
    this.differences.push(
      `Role ${JSON.stringify(r.name)} created without ${dropped.join(', ')}: ${JSON.stringify(user)} cannot give ${dropped.length > 1 ? 'them' : 'it'}.`,
    );
    return {
      ...r,
      superuser: false,
      replication: false,
      bypassRls: false,
      createDb: r.createDb && createDb,
    };
  }

  private noteExistingRoles(globals: Globals, byName: ReadonlyMap<string, GlobalRole>): void {
    for (const r of globals.roles) {
      const there = byName.get(r.name);
      if (!there) continue;
      this.rolesExisting.push(r.name);
      const diff = roleDifferences(r, there);
      if (diff.length)
        this.differences.push(
          `Role ${JSON.stringify(r.name)} already existed and was left as it is; it differs from the source: ${diff.join(', ')}.`,
        );
    }
  }

  private notePasswordless(globals: Globals, toCreate: readonly GlobalRole[]): void {
    if (globals.passwords === 'included') return;
    const logins = toCreate.filter((r) => r.login).map((r) => JSON.stringify(r.name));
    if (logins.length)
      this.differences.push(
        `Login role${logins.length > 1 ? 's' : ''} ${logins.join(', ')} created WITHOUT a password: the backup role could not read password hashes. Set them with ALTER ROLE … PASSWORD.`,
      );
  }

  /**
   * The source's memberships to grant: not those the target already has, nor those of a
   * role that will not exist (a difference).
   */
  private async membershipsNeeded(
    globals: Globals,
    byName: ReadonlyMap<string, GlobalRole>,
    toCreate: readonly GlobalRole[],
  ): Promise<GlobalMembership[]> {
    const willExist = new Set([...byName.keys(), ...toCreate.map((r) => r.name)]);
    const needed: GlobalMembership[] = [];
    const m = await this.server.maintenance();
    try {
      for (const ms of globals.memberships) {
        if (!willExist.has(ms.role) || !willExist.has(ms.member)) {
          this.differences.push(
            `Membership of ${JSON.stringify(ms.member)} in ${JSON.stringify(ms.role)} not restored: ${JSON.stringify(willExist.has(ms.role) ? ms.member : ms.role)} does not exist on the target.`,
          );
          continue;
        }
        if (
          toCreate.some((r) => r.name === ms.role || r.name === ms.member) ||
          !(await hasMembership(m, ms))
        )
          needed.push(ms);
      }
    } finally {
      await m.close();
    }
    return needed;
  }

  /**
   * As a superuser, the roles, what comes with them (settings, comments) and the
   * memberships, all or nothing; as the restorer, the roles themselves so, and the rest as
   * far as it is allowed (what is refused becomes a difference).
   */
  private async createRoles(
    toCreate: readonly GlobalRole[],
    memberships: readonly GlobalMembership[],
  ): Promise<void> {
    const roleSql = toCreate.map((r) => createRoleSql(r, { withPassword: true }));
    const grantSql = memberships.map((ms) => grantMembershipSql(ms, this.facts.versionNum));
    try {
      await inTransaction(
        this.server,
        this.restorer ? roleSql.map((r) => r[0] as string) : [...roleSql.flat(), ...grantSql],
      );
    } catch (e) {
      await this.discard().catch(() => undefined);
      throw new RebuildError(`Creating the roles failed (nothing was kept): ${sqlError(e)}`);
    }
    this.rolesCreated.push(...toCreate.map((r) => r.name));
    if (this.restorer) {
      const failed = await tryEach(
        () => this.server.maintenance(),
        [...roleSql.flatMap((r) => r.slice(1)), ...grantSql],
      );
      for (const f of failed)
        this.differences.push(
          `Not restored (${f.error}): ${f.sql.replace(/ PASSWORD E'[^']*'/, '')}`,
        );
      this.granted.push(
        ...memberships.filter(
          (ms) => !failed.some((f) => f.sql === grantMembershipSql(ms, this.facts.versionNum)),
        ),
      );
    } else this.granted.push(...memberships);
    for (const r of toCreate) this.log(`Created role ${JSON.stringify(r.name)}`);
    for (const ms of memberships)
      this.log(`Granted ${JSON.stringify(ms.role)} to ${JSON.stringify(ms.member)}`);
  }

  /** Memberships this run granted between roles it did not create. */
  private grantedBetweenExisting(): Grant[] {
    return this.granted.filter(
      (g) => !this.rolesCreated.includes(g.role) && !this.rolesCreated.includes(g.member),
    );
  }

  async discard(): Promise<void> {
    const problems: string[] = [];
    if (this.created) {
      await dropDatabase(this.server, this.database).catch((e: unknown) =>
        problems.push(`database ${JSON.stringify(this.database)}: ${sqlError(e)}`),
      );
    }
    const undo = [
      ...this.grantedBetweenExisting().map(
        (g) => `REVOKE ${quoteIdent(g.role)} FROM ${quoteIdent(g.member)}`,
      ),
      ...this.rolesCreated.map((r) => `DROP ROLE IF EXISTS ${quoteIdent(r)}`),
    ];
    await inTransaction(this.server, undo).catch((e: unknown) =>
      problems.push(`roles ${this.rolesCreated.join(', ')}: ${sqlError(e)}`),
    );
    if (problems.length)
      throw new RebuildError(`Could not remove what the restore created: ${problems.join('; ')}`);
  }

  async applyProperties(): Promise<void> {
    const { globals, server, database } = this;
    if (!globals) {
      // Nothing is known of the source database; at least drop the in-progress marker.
      await inTransaction(server, [`COMMENT ON DATABASE ${quoteIdent(database)} IS NULL`]);
      return;
    }
    this.differences.push(
      ...(await checkSecurityDefiners(
        server,
        database,
        globals,
        this.restorer ? this.facts.user : null,
      )),
    );
    if (this.restorer) {
      const owner = globals.database.owner;
      const ownerExists = this.rolesExisting.includes(owner) || this.rolesCreated.includes(owner);
      const failed = await tryEach(
        () => server.maintenance(),
        databasePropertiesSql(globals.database, database, {
          owner: false,
          ownerGrantsTo: ownerExists ? owner : null,
        }),
      );
      for (const f of failed) this.differences.push(`Not restored (${f.error}): ${f.sql}`);
      return;
    }
    try {
      await inTransaction(
        server,
        databasePropertiesSql(globals.database, database, { owner: true }),
      );
    } catch (e) {
      throw new RebuildError(`Applying the database's properties failed: ${sqlError(e)}`);
    }
  }
}

/** The target's roles (as `GlobalRole`s; passwords only for a superuser) and tablespaces. */
async function readTarget(
  server: ServerAccess,
  superuser: boolean,
): Promise<{ roles: GlobalRole[]; tablespaces: string[] }> {
  const m = await server.maintenance();
  try {
    const roles = await m.rows<GlobalRole>(
      `SELECT rolname AS name, rolsuper AS superuser, rolinherit AS inherit, rolcreaterole AS "createRole",
                rolcreatedb AS "createDb", rolcanlogin AS login, rolreplication AS replication,
                rolbypassrls AS "bypassRls", rolconnlimit AS "connectionLimit", NULL AS "validUntil",
                ${superuser ? 'rolpassword' : 'NULL'} AS password,
                coalesce((SELECT setconfig FROM pg_catalog.pg_db_role_setting s
                          WHERE s.setrole = a.oid AND s.setdatabase = 0), '{}') AS settings,
                NULL AS comment
         FROM pg_catalog.${superuser ? 'pg_authid' : 'pg_roles'} a`,
    );
    const tablespaces = (
      await m.rows<{ n: string }>('SELECT spcname AS n FROM pg_catalog.pg_tablespace')
    ).map((r) => r.n);
    return { roles, tablespaces };
  } finally {
    await m.close();
  }
}

/** Whether `ms.member` is already a member of `ms.role` on the target. */
async function hasMembership(m: Session, ms: Grant): Promise<boolean> {
  const [row] = await m.rows<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_catalog.pg_auth_members a
           JOIN pg_catalog.pg_roles r ON r.oid = a.roleid JOIN pg_catalog.pg_roles u ON u.oid = a.member
           WHERE r.rolname = ${quoteLiteral(ms.role)} AND u.rolname = ${quoteLiteral(ms.member)}`,
  );
  return (row?.n ?? 0) !== 0;
}

/**
 * No SECURITY DEFINER function may be executable by a role that could not execute it in
 * the source: each one's executors are compared with the backup's record (the source owner
 * counted as `newOwner` when the restorer owns everything), and any extra one is revoked.
 * Returns what was revoked, as differences.
 */
export async function checkSecurityDefiners(
  server: ServerAccess,
  database: string,
  globals: Globals,
  newOwner: string | null,
): Promise<string[]> {
  if (globals.securityDefiner.length === 0) return [];
  const source = new Map(globals.securityDefiner.map((f) => [f.function, f]));
  const s = await server.open(database);
  const out: string[] = [];
  try {
    for (const now of await readSecurityDefiners(s)) {
      const before = source.get(now.function);
      const allowed = new Set(
        (before?.executors ?? []).map((e) =>
          e !== null && e === before?.owner && newOwner ? newOwner : e,
        ),
      );
      if (newOwner) allowed.add(newOwner);
      const extra = now.executors.filter((e) => !allowed.has(e));
      for (const e of extra) {
        await s.exec(
          `REVOKE EXECUTE ON FUNCTION ${now.function} FROM ${e === null ? 'PUBLIC' : quoteIdent(e)}`,
        );
        out.push(
          `EXECUTE on SECURITY DEFINER function ${now.function} revoked from ${e === null ? 'PUBLIC' : JSON.stringify(e)}: it could not run it in the source.`,
        );
      }
    }
    if (newOwner) {
      const fns = globals.securityDefiner.map((f) => f.function);
      if (fns.length)
        out.push(
          `SECURITY DEFINER function${fns.length > 1 ? 's' : ''} ${fns.join(', ')} now belong to ${JSON.stringify(newOwner)} and run with its privileges (in the source: ${[...new Set(globals.securityDefiner.map((f) => JSON.stringify(f.owner)))].join(', ')}).`,
        );
    }
  } finally {
    await s.close();
  }
  return out;
}

async function createDatabase(server: ServerAccess, sql: string, name: string): Promise<void> {
  const s = await server.maintenance();
  try {
    await s.exec(sql);
    await s.exec(`COMMENT ON DATABASE ${quoteIdent(name)} IS ${quoteLiteral(IN_PROGRESS_COMMENT)}`);
  } catch (e) {
    throw new RebuildError(`Creating database ${JSON.stringify(name)} failed: ${sqlError(e)}`);
  } finally {
    await s.close();
  }
}

/**
 * Drops a database pg-dr created: its other sessions are ended and its subscriptions
 * (restored disabled) dropped first, since either would block DROP DATABASE.
 */
export async function dropDatabase(server: ServerAccess, name: string): Promise<void> {
  const m = await server.maintenance();
  let exists = false;
  try {
    const [row] = await m.rows<{ exists: boolean }>(
      `SELECT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = ${quoteLiteral(name)}) AS exists`,
    );
    exists = row?.exists === true;
    if (exists)
      await m.rows(
        `SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity
         WHERE datname = ${quoteLiteral(name)} AND pid <> pg_catalog.pg_backend_pid()`,
      );
  } finally {
    await m.close();
  }
  if (!exists) return;
  const d = await server.open(name);
  try {
    const subs = await d.rows<{ name: string }>(
      `SELECT subname AS name FROM pg_catalog.pg_subscription
       WHERE subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())`,
    );
    for (const { name: sub } of subs) {
      const q = quoteIdent(sub);
      await d.exec(`ALTER SUBSCRIPTION ${q} DISABLE`);
      await d.exec(`ALTER SUBSCRIPTION ${q} SET (slot_name = NONE)`);
      await d.exec(`DROP SUBSCRIPTION ${q}`);
    }
  } finally {
    await d.close();
  }
  const m2 = await server.maintenance();
  try {
    await m2.exec(`DROP DATABASE IF EXISTS ${quoteIdent(name)}`);
  } finally {
    await m2.close();
  }
}

export interface SwitchResult {
  /** Where the database the target replaced now is, or null (none existed, or it was dropped). */
  readonly previous: string | null;
  /** Why the previous database was dropped, when it was. */
  readonly droppedPrevious: string | null;
  /** Sessions ended to make the switch. */
  readonly terminated: number;
}

/**
 * Puts `fresh` in the place of `target` in one transaction (two renames). The database
 * `target` held before is kept as `previous`, or dropped when `drop` says so. Other
 * sessions on either database block a rename: with `terminate` they are ended (and the
 * switch retried a few times), otherwise the switch is refused.
 */
export async function switchDatabase(
  server: ServerAccess,
  opts: {
    fresh: string;
    target: string;
    previous: string;
    terminate: boolean;
    drop: 'empty' | 'always' | 'never';
    targetWasEmpty: boolean;
  },
): Promise<SwitchResult> {
  let terminated = 0;
  for (let attempt = 1; ; attempt++) {
    const m = await server.maintenance();
    let exists: boolean;
    try {
      const [row] = await m.rows<{ exists: boolean }>(
        `SELECT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = ${quoteLiteral(opts.target)}) AS exists`,
      );
      exists = row?.exists === true;
      const busy = exists ? await liveConnections(m, opts.target) : [];
      if (busy.length > 0) {
        if (!opts.terminate)
          throw new RebuildError(
            `The target database ${JSON.stringify(opts.target)} has ${busy.length} open connection(s) (${busy.slice(0, 5).join(', ')}): switching it would break them. Stop the application, or set terminate-connections: true to end them at the switch.`,
          );
        const [t] = await m.rows<{ n: number }>(
          `SELECT count(pg_catalog.pg_terminate_backend(pid))::int AS n FROM pg_catalog.pg_stat_activity
           WHERE datname = ${quoteLiteral(opts.target)} AND pid <> pg_catalog.pg_backend_pid()`,
        );
        terminated += t?.n ?? 0;
      }
    } finally {
      await m.close();
    }
    const s = await server.maintenance();
    try {
      await s.exec('BEGIN');
      if (exists)
        await s.exec(
          `ALTER DATABASE ${quoteIdent(opts.target)} RENAME TO ${quoteIdent(opts.previous)}`,
        );
      await s.exec(`ALTER DATABASE ${quoteIdent(opts.fresh)} RENAME TO ${quoteIdent(opts.target)}`);
      await s.exec('COMMIT');
    } catch (e) {
      await s.close();
      if (attempt < 5 && /being accessed by other users/.test(sqlError(e))) {
        await new Promise((r) => setTimeout(r, 200 * attempt));
        continue;
      }
      throw new RebuildError(`Switching the restored database in failed: ${sqlError(e)}`);
    }
    await s.close();
    if (!exists) return { previous: null, droppedPrevious: null, terminated };
    const why =
      opts.drop === 'always'
        ? 'drop-previous: true'
        : opts.drop === 'empty' && opts.targetWasEmpty
          ? 'it held no objects'
          : null;
    if (why) {
      await dropDatabase(server, opts.previous);
      return { previous: null, droppedPrevious: why, terminated };
    }
    return { previous: opts.previous, droppedPrevious: null, terminated };
  }
}
