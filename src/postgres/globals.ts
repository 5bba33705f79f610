import { z } from 'zod';
import type { Session } from './session.js';
import { quoteIdent, quoteLiteral, quoteSettingName } from './sql.js';

/**
 * The cluster-level objects a database needs and `pg_dump` does not write: the roles
 * (attributes, password hashes, memberships, settings) and the database's own properties
 * (encoding, locale, owner, comment, settings, grants, per-role settings in it). Backed up
 * as `globals.sql`, a script a person can run with psql; pg-dr reads the same data from
 * the script's first line.
 */
/** A stored `name=value` setting (pg_db_role_setting.setconfig). */
const Setting = z.string().regex(/^[^=]+=/s);

const Role = z.object({
  name: z.string().min(1),
  superuser: z.boolean(),
  inherit: z.boolean(),
  createRole: z.boolean(),
  createDb: z.boolean(),
  login: z.boolean(),
  replication: z.boolean(),
  bypassRls: z.boolean(),
  connectionLimit: z.number().int(),
  validUntil: z.string().nullable(),
  /** The password hash (SCRAM or md5), when the backup role could read pg_authid. */
  password: z.string().nullable(),
  /** `ALTER ROLE … SET` (every database). */
  settings: z.array(Setting),
  comment: z.string().nullable(),
});

const Membership = z.object({
  role: z.string(),
  member: z.string(),
  admin: z.boolean(),
  /** PostgreSQL 16+: the grant's INHERIT and SET options; null before. */
  inherit: z.boolean().nullable(),
  set: z.boolean().nullable(),
});

const DatabaseGrant = z.object({
  /** null: PUBLIC. */
  grantee: z.string().nullable(),
  privilege: z.enum(['CONNECT', 'CREATE', 'TEMPORARY']),
  grantable: z.boolean(),
});

export const DatabaseProperties = z.object({
  name: z.string(),
  owner: z.string(),
  encoding: z.string(),
  /** `libc`, `icu` (PostgreSQL 15+) or `builtin` (17+). */
  localeProvider: z.enum(['libc', 'icu', 'builtin']),
  collate: z.string(),
  ctype: z.string(),
  /** The ICU or builtin locale of the default collation; null for libc. */
  locale: z.string().nullable(),
  icuRules: z.string().nullable(),
  connectionLimit: z.number().int(),
  tablespace: z.string(),
  comment: z.string().nullable(),
  /** null: the default privileges (PUBLIC may connect and create temporary tables). */
  grants: z.array(DatabaseGrant).nullable(),
  /** `ALTER DATABASE … SET`. */
  settings: z.array(Setting),
  /** `ALTER ROLE … IN DATABASE … SET`. */
  roleSettings: z.array(z.object({ role: z.string(), settings: z.array(Setting) })),
});

/** A SECURITY DEFINER function: who owned it and who could execute it (null: PUBLIC). */
const SecurityDefiner = z.object({
  function: z.string(),
  owner: z.string(),
  executors: z.array(z.string().nullable()),
});

export const Globals = z.object({
  format: z.literal('pg-dr-globals/1'),
  serverVersionNum: z.number().int(),
  database: DatabaseProperties,
  roles: z.array(Role),
  memberships: z.array(Membership),
  /** Whether the roles' password hashes are included (reading them needs a superuser). */
  passwords: z.enum(['included', 'not-readable']),
  /** Tablespaces other than pg_default that the database or its relations use. */
  tablespaces: z.array(z.string()),
  /** The database's SECURITY DEFINER functions: a restore checks nobody new can run them. */
  securityDefiner: z.array(SecurityDefiner).default([]),
});

export type Globals = z.infer<typeof Globals>;
export type GlobalRole = z.infer<typeof Role>;
export type GlobalMembership = z.infer<typeof Membership>;
export type DatabaseProperties = z.infer<typeof DatabaseProperties>;
export type SecurityDefiner = z.infer<typeof SecurityDefiner>;

/**
 * The SECURITY DEFINER functions of the session's database, named the same way on any
 * server (schema-qualified, argument types as pg_catalog sees them), with their owner and
 * every role that may execute them.
 */
export async function readSecurityDefiners(session: Session): Promise<SecurityDefiner[]> {
  await session.exec('SET search_path = pg_catalog');
  return session.rows<SecurityDefiner>(
    `SELECT format('%I.%I(%s)', n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)) AS function,
            pg_catalog.pg_get_userbyid(p.proowner) AS owner,
            coalesce((SELECT array_agg(DISTINCT CASE a.grantee WHEN 0 THEN NULL
                                                ELSE pg_catalog.pg_get_userbyid(a.grantee) END)
                      FROM pg_catalog.aclexplode(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) a
                      WHERE a.privilege_type = 'EXECUTE'), '{}') AS executors
     FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
     ORDER BY 1`,
  );
}

const DATA_LINE = '-- pg-dr-globals: ';

/**
 * The roles the current database needs (a CTE named \`needed\`): every role that owns
 * something in it, is named in one of its privileges or policies (pg_shdepend), owns it or is
 * granted on it, has settings in it, the bootstrap superuser (it owns the built-in objects
 * and is never recorded as a dependency), and every member of those, transitively (the
 * login roles that reach the database through a group). Other databases' roles are left out.
 */
const NEEDED_ROLES = `
  this_db AS (SELECT oid, datdba FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()),
  direct AS (
    SELECT d.refobjid AS oid FROM pg_catalog.pg_shdepend d, this_db
     WHERE d.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
       AND (d.dbid = this_db.oid
            OR (d.dbid = 0 AND d.classid = 'pg_catalog.pg_database'::pg_catalog.regclass
                AND d.objid = this_db.oid))
    UNION SELECT datdba FROM this_db
    UNION SELECT s.setrole FROM pg_catalog.pg_db_role_setting s, this_db
     WHERE s.setdatabase = this_db.oid AND s.setrole <> 0
    UNION SELECT 10::oid
  ),
  needed AS (
    SELECT oid FROM direct
    UNION SELECT m.member FROM pg_catalog.pg_auth_members m JOIN needed n ON m.roleid = n.oid
  )`;

/** Reads the globals of the session's database. Needs no superuser: passwords are then left out. */
export async function readGlobals(session: Session, versionNum: number): Promise<Globals> {
  const provider =
    versionNum >= 150000
      ? `CASE d.datlocprovider WHEN 'i' THEN 'icu' WHEN 'b' THEN 'builtin' ELSE 'libc' END`
      : `'libc'`;
  const locale =
    versionNum >= 170000 ? 'd.datlocale' : versionNum >= 150000 ? 'd.daticulocale' : 'NULL::text';
  const rules = versionNum >= 160000 ? 'd.daticurules' : 'NULL::text';
  const [db] = await session.rows<{
    name: string;
    owner: string;
    encoding: string;
    localeProvider: 'libc' | 'icu' | 'builtin';
    collate: string;
    ctype: string;
    locale: string | null;
    icuRules: string | null;
    connectionLimit: number;
    tablespace: string;
    comment: string | null;
    aclNull: boolean;
  }>(
    `SELECT d.datname AS name, pg_catalog.pg_get_userbyid(d.datdba) AS owner,
            pg_catalog.pg_encoding_to_char(d.encoding) AS encoding,
            ${provider} AS "localeProvider", d.datcollate AS collate, d.datctype AS ctype,
            ${locale} AS locale, ${rules} AS "icuRules", d.datconnlimit AS "connectionLimit",
            t.spcname AS tablespace, pg_catalog.shobj_description(d.oid, 'pg_database') AS comment,
            d.datacl IS NULL AS "aclNull"
     FROM pg_catalog.pg_database d JOIN pg_catalog.pg_tablespace t ON t.oid = d.dattablespace
     WHERE d.datname = pg_catalog.current_database()`,
  );
  if (!db) throw new Error('The server did not describe the current database.');
  const grants = db.aclNull
    ? null
    : await session.rows<z.infer<typeof DatabaseGrant>>(
        `SELECT CASE a.grantee WHEN 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(a.grantee) END AS grantee,
                a.privilege_type AS privilege, a.is_grantable AS grantable
         FROM pg_catalog.pg_database d, pg_catalog.aclexplode(d.datacl) a
         WHERE d.datname = pg_catalog.current_database()`,
      );
  const settings = await session.rows<{ role: string | null; settings: string[] }>(
    `SELECT CASE s.setrole WHEN 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(s.setrole) END AS role,
            s.setconfig AS settings
     FROM pg_catalog.pg_db_role_setting s JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
     WHERE d.datname = pg_catalog.current_database() ORDER BY 1 NULLS FIRST`,
  );
  const [{ readable } = { readable: false }] = await session.rows<{ readable: boolean }>(
    `SELECT pg_catalog.has_table_privilege('pg_catalog.pg_authid', 'SELECT') AS readable`,
  );
  const roles = await session.rows<GlobalRole>(
    `WITH RECURSIVE ${NEEDED_ROLES}
     SELECT r.rolname AS name, r.rolsuper AS superuser, r.rolinherit AS inherit,
            r.rolcreaterole AS "createRole", r.rolcreatedb AS "createDb", r.rolcanlogin AS login,
            r.rolreplication AS replication, r.rolbypassrls AS "bypassRls",
            r.rolconnlimit AS "connectionLimit",
            CASE WHEN r.rolvaliduntil IS NULL THEN NULL
                 WHEN NOT pg_catalog.isfinite(r.rolvaliduntil) THEN r.rolvaliduntil::text
                 ELSE to_char(r.rolvaliduntil AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') END
              AS "validUntil",
            ${readable ? 'r.rolpassword' : 'NULL::text'} AS password,
            coalesce(c.setconfig, '{}') AS settings,
            pg_catalog.shobj_description(r.oid, 'pg_authid') AS comment
     FROM pg_catalog.${readable ? 'pg_authid' : 'pg_roles'} r
     LEFT JOIN pg_catalog.pg_db_role_setting c ON c.setrole = r.oid AND c.setdatabase = 0
     WHERE r.rolname !~ '^pg_' AND r.oid IN (SELECT oid FROM needed) ORDER BY r.rolname`,
  );
  const options =
    versionNum >= 160000
      ? 'm.inherit_option AS inherit, m.set_option AS set'
      : 'NULL AS inherit, NULL AS set';
  const memberships = await session.rows<GlobalMembership>(
    `WITH RECURSIVE ${NEEDED_ROLES}
     SELECT r.rolname AS role, u.rolname AS member, m.admin_option AS admin, ${options}
     FROM pg_catalog.pg_auth_members m
     JOIN pg_catalog.pg_roles r ON r.oid = m.roleid
     JOIN pg_catalog.pg_roles u ON u.oid = m.member
     WHERE u.rolname !~ '^pg_' AND u.oid IN (SELECT oid FROM needed) ORDER BY 1, 2`,
  );
  const tablespaces = await session.rows<{ name: string }>(
    `SELECT DISTINCT t.spcname AS name FROM pg_catalog.pg_tablespace t
     WHERE t.spcname NOT IN ('pg_default', 'pg_global')
       AND (t.oid IN (SELECT reltablespace FROM pg_catalog.pg_class)
            OR t.oid = (SELECT dattablespace FROM pg_catalog.pg_database
                        WHERE datname = pg_catalog.current_database()))
     ORDER BY 1`,
  );
  const { aclNull: _, ...props } = db;
  return Globals.parse({
    format: 'pg-dr-globals/1',
    serverVersionNum: versionNum,
    database: {
      ...props,
      grants,
      settings: settings.find((s) => s.role === null)?.settings ?? [],
      roleSettings: settings.flatMap((s) =>
        s.role === null ? [] : [{ role: s.role, settings: s.settings }],
      ),
    },
    roles,
    memberships,
    passwords: readable ? 'included' : 'not-readable',
    tablespaces: tablespaces.map((t) => t.name),
    securityDefiner: await readSecurityDefiners(session),
  });
}

// ---------------------------------------------------------------------------------------
// SQL

/** Settings whose value is a list of quoted items (pg_dump's GUC_LIST_QUOTE set). */
const LIST_SETTINGS = new Set([
  'local_preload_libraries',
  'search_path',
  'session_preload_libraries',
  'shared_preload_libraries',
  'temp_tablespaces',
  'unix_socket_directories',
]);

/** Splits a stored list value (`"$user", public`) into its items, as PostgreSQL does. */
export function splitSettingList(value: string): string[] {
  const items: string[] = [];
  let i = 0;
  const skipSpace = () => {
    while (i < value.length && /\s/.test(value[i] as string)) i++;
  };
  skipSpace();
  if (i >= value.length) return items;
  for (;;) {
    let item = '';
    if (value[i] === '"') {
      i++;
      for (;;) {
        if (i >= value.length)
          throw new Error(`Unterminated quoted item in setting value: ${value}`);
        if (value[i] === '"') {
          if (value[i + 1] === '"') {
            item += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        item += value[i];
        i++;
      }
    } else {
      while (i < value.length && value[i] !== ',' && !/\s/.test(value[i] as string)) {
        item += value[i];
        i++;
      }
    }
    items.push(item);
    skipSpace();
    if (i >= value.length) return items;
    if (value[i] !== ',') throw new Error(`Unexpected character in setting list: ${value}`);
    i++;
    skipSpace();
  }
}

/** `SET name TO value` for one stored `name=value` setting. */
export function settingClause(setting: string): string {
  const eq = setting.indexOf('=');
  const name = setting.slice(0, eq);
  const value = setting.slice(eq + 1);
  const rendered = LIST_SETTINGS.has(name.toLowerCase())
    ? splitSettingList(value).map(quoteLiteral).join(', ') || "''"
    : quoteLiteral(value);
  return `SET ${quoteSettingName(name)} TO ${rendered}`;
}

/** The statements that create one role as it was (attributes, password, settings, comment). */
export function createRoleSql(role: GlobalRole, options: { withPassword: boolean }): string[] {
  const flag = (on: boolean, name: string) => (on ? name : `NO${name}`);
  const attrs = [
    flag(role.superuser, 'SUPERUSER'),
    flag(role.inherit, 'INHERIT'),
    flag(role.createRole, 'CREATEROLE'),
    flag(role.createDb, 'CREATEDB'),
    flag(role.login, 'LOGIN'),
    flag(role.replication, 'REPLICATION'),
    flag(role.bypassRls, 'BYPASSRLS'),
    `CONNECTION LIMIT ${role.connectionLimit}`,
  ];
  if (role.validUntil !== null) attrs.push(`VALID UNTIL ${quoteLiteral(role.validUntil)}`);
  if (options.withPassword && role.password !== null)
    attrs.push(`PASSWORD ${quoteLiteral(role.password)}`);
  const name = quoteIdent(role.name);
  return [
    `CREATE ROLE ${name} WITH ${attrs.join(' ')}`,
    ...role.settings.map((s) => `ALTER ROLE ${name} ${settingClause(s)}`),
    ...(role.comment !== null ? [`COMMENT ON ROLE ${name} IS ${quoteLiteral(role.comment)}`] : []),
  ];
}

/** `GRANT role TO member …`, with PostgreSQL 16's INHERIT/SET options when the target has them. */
export function grantMembershipSql(m: GlobalMembership, targetVersionNum: number): string {
  const head = `GRANT ${quoteIdent(m.role)} TO ${quoteIdent(m.member)}`;
  if (targetVersionNum >= 160000) {
    const opts = [`ADMIN ${m.admin ? 'TRUE' : 'FALSE'}`];
    if (m.inherit !== null) opts.push(`INHERIT ${m.inherit ? 'TRUE' : 'FALSE'}`);
    if (m.set !== null) opts.push(`SET ${m.set ? 'TRUE' : 'FALSE'}`);
    return `${head} WITH ${opts.join(', ')}`;
  }
  return m.admin ? `${head} WITH ADMIN OPTION` : head;
}

/** A query that finds the direct membership `m` on a server. */
export function membershipExistsSql(m: { role: string; member: string }): string {
  return `SELECT FROM pg_catalog.pg_auth_members a
     JOIN pg_catalog.pg_roles r ON r.oid = a.roleid JOIN pg_catalog.pg_roles u ON u.oid = a.member
     WHERE r.rolname = ${quoteLiteral(m.role)} AND u.rolname = ${quoteLiteral(m.member)}`;
}

/**
 * `CREATE DATABASE` with the source's encoding and locale (from template0, so any locale
 * can be chosen). Throws when the target server cannot express the source's locale provider.
 */
export function createDatabaseSql(
  db: DatabaseProperties,
  name: string,
  targetVersionNum: number,
): string {
  const parts = [
    `CREATE DATABASE ${quoteIdent(name)} WITH TEMPLATE = template0`,
    `ENCODING = ${quoteLiteral(db.encoding)}`,
    `LC_COLLATE = ${quoteLiteral(db.collate)}`,
    `LC_CTYPE = ${quoteLiteral(db.ctype)}`,
  ];
  if (db.localeProvider !== 'libc') {
    const needs = db.localeProvider === 'icu' ? 150000 : 170000;
    if (targetVersionNum < needs)
      throw new Error(
        `The source database's default collation uses the ${db.localeProvider} locale provider (${db.locale}), which the target server (PostgreSQL ${Math.floor(targetVersionNum / 10000)}) does not have: restore onto PostgreSQL ${needs / 10000} or newer.`,
      );
    parts.push(`LOCALE_PROVIDER = ${db.localeProvider}`);
    if (db.locale !== null)
      parts.push(
        `${db.localeProvider === 'icu' ? 'ICU_LOCALE' : 'BUILTIN_LOCALE'} = ${quoteLiteral(db.locale)}`,
      );
    if (db.icuRules !== null) {
      if (targetVersionNum < 160000)
        throw new Error(
          'The source database has ICU rules (PostgreSQL 16+), which the target server does not support.',
        );
      parts.push(`ICU_RULES = ${quoteLiteral(db.icuRules)}`);
    }
  }
  return parts.join(' ');
}

/**
 * The database's own properties, applied once its contents are restored (a setting such
 * as `default_transaction_read_only` must not apply to the restore itself): owner, comment,
 * settings, per-role settings, grants and connection limit. `owner` false keeps the
 * restoring user as owner (and its grants where they name the source's owner).
 */
export function databasePropertiesSql(
  db: DatabaseProperties,
  name: string,
  options: {
    owner: boolean;
    /** When the restorer owns the database: the source owner, to get its privileges explicitly. */
    ownerGrantsTo?: string | null;
  },
): string[] {
  const n = quoteIdent(name);
  const out: string[] = [];
  if (options.owner) out.push(`ALTER DATABASE ${n} OWNER TO ${quoteIdent(db.owner)}`);
  if (db.comment !== null) out.push(`COMMENT ON DATABASE ${n} IS ${quoteLiteral(db.comment)}`);
  else out.push(`COMMENT ON DATABASE ${n} IS NULL`);
  for (const s of db.settings) out.push(`ALTER DATABASE ${n} ${settingClause(s)}`);
  for (const r of db.roleSettings)
    for (const s of r.settings)
      out.push(`ALTER ROLE ${quoteIdent(r.role)} IN DATABASE ${n} ${settingClause(s)}`);
  if (db.grants !== null) {
    out.push(`REVOKE ALL ON DATABASE ${n} FROM PUBLIC`);
    if (options.owner) out.push(`REVOKE ALL ON DATABASE ${n} FROM ${quoteIdent(db.owner)}`);
    for (const g of db.grants) {
      if (!options.owner && g.grantee === db.owner && !options.ownerGrantsTo) continue;
      out.push(
        `GRANT ${g.privilege} ON DATABASE ${n} TO ${g.grantee === null ? 'PUBLIC' : quoteIdent(g.grantee)}${g.grantable ? ' WITH GRANT OPTION' : ''}`,
      );
    }
  }
  if (db.connectionLimit !== -1)
    out.push(`ALTER DATABASE ${n} CONNECTION LIMIT ${db.connectionLimit}`);
  return out;
}

// ---------------------------------------------------------------------------------------
// The script

/** A dollar-quote tag that does not occur in `body`. */
export function dollarTag(body: string): string {
  for (let i = 0; ; i++) {
    const tag = `$pg_dr${i === 0 ? '' : `_${i}`}$`;
    if (!body.includes(tag)) return tag;
  }
}

/**
 * The `globals.sql` script: run with psql as a superuser on the new server before the
 * database is restored, it creates each role that does not exist yet (with its attributes,
 * password hash, settings and memberships) and leaves every existing role as it is.
 */
export function globalsScript(g: Globals, meta: { backupId: string; tool: string }): string {
  const lines = [
    `${DATA_LINE}${JSON.stringify(g)}`,
    '--',
    `-- pg-dr globals of database ${JSON.stringify(g.database.name)}, backup ${meta.backupId} (${meta.tool}).`,
    `-- The first line is the same data as JSON, for pg-dr; what follows is for psql:`,
    '--',
    '--   psql -X -v ON_ERROR_STOP=1 -d postgres -f globals.sql',
    '--',
    '-- run as a superuser on the new server BEFORE restoring the database. It creates each role',
    '-- below that does not exist yet, with its attributes, password hash, settings and',
    '-- memberships; a role that exists is left exactly as it is. Running it twice is harmless.',
    `-- Passwords: ${g.passwords === 'included' ? 'included (hashes only).' : 'NOT included (the backup role could not read pg_authid): set them with ALTER ROLE … PASSWORD.'}`,
    `-- Database: encoding ${g.database.encoding}, locale provider ${g.database.localeProvider}, collate ${g.database.collate}, ctype ${g.database.ctype}${g.database.locale ? `, locale ${g.database.locale}` : ''}; owner ${JSON.stringify(g.database.owner)}.`,
    '-- pg_restore --create recreates the database with these properties, its grants and settings.',
    '',
  ];
  const names = new Set(g.roles.map((r) => r.name));
  for (const role of g.roles) {
    const body = [
      'BEGIN',
      `  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = ${quoteLiteral(role.name)}) THEN`,
      ...createRoleSql(role, { withPassword: true }).map((s) => `    ${s};`),
      `    RAISE NOTICE 'created role %', ${quoteLiteral(role.name)};`,
      '  END IF;',
      'END',
    ].join('\n');
    const tag = dollarTag(body);
    lines.push(`DO ${tag}\n${body}\n${tag};`, '');
  }
  for (const m of g.memberships) {
    if (!names.has(m.member)) continue;
    const body = [
      'BEGIN',
      `  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = ${quoteLiteral(m.role)})`,
      `     AND NOT EXISTS (${membershipExistsSql(m)}) THEN`,
      `    ${grantMembershipSql(m, g.serverVersionNum)};`,
      '  END IF;',
      'END',
    ].join('\n');
    const tag = dollarTag(body);
    lines.push(`DO ${tag}\n${body}\n${tag};`, '');
  }
  return `${lines.join('\n')}\n`;
}

/** The globals from a `globals.sql` script's first line. */
export function parseGlobalsScript(text: string): Globals {
  const first = text.slice(0, text.indexOf('\n'));
  if (!first.startsWith(DATA_LINE))
    throw new Error('globals.sql does not start with its pg-dr data line.');
  return Globals.parse(JSON.parse(first.slice(DATA_LINE.length)));
}
