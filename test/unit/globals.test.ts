import { describe, expect, it } from 'vitest';
import {
  createDatabaseSql,
  createRoleSql,
  type DatabaseProperties,
  databasePropertiesSql,
  type GlobalRole,
  type Globals,
  globalsScript,
  grantMembershipSql,
  parseGlobalsScript,
  settingClause,
  splitSettingList,
} from '../../src/postgres/globals.js';
import { quoteIdent, quoteLiteral } from '../../src/postgres/sql.js';

const role = (over: Partial<GlobalRole> = {}): GlobalRole => ({
  name: 'app_ro',
  superuser: false,
  inherit: true,
  createRole: false,
  createDb: false,
  login: true,
  replication: false,
  bypassRls: false,
  connectionLimit: -1,
  validUntil: null,
  password: 'SCRAM-SHA-256$4096:salt$stored:server',
  settings: [],
  comment: null,
  ...over,
});

const db = (over: Partial<DatabaseProperties> = {}): DatabaseProperties => ({
  name: 'app',
  owner: 'app_owner',
  encoding: 'UTF8',
  localeProvider: 'libc',
  collate: 'C.UTF-8',
  ctype: 'C.UTF-8',
  locale: null,
  icuRules: null,
  connectionLimit: -1,
  tablespace: 'pg_default',
  comment: null,
  grants: null,
  settings: [],
  roleSettings: [],
  ...over,
});

describe('quoting', () => {
  it('quotes identifiers and literals whatever standard_conforming_strings says', () => {
    expect(quoteIdent('we"ird')).toBe('"we""ird"');
    expect(quoteLiteral("it's")).toBe("E'it''s'");
    expect(quoteLiteral('a\\')).toBe("E'a\\\\'");
    expect(quoteLiteral("b'\n\\! rm -rf /\n--")).toBe("E'b''\n\\\\! rm -rf /\n--'");
    expect(() => quoteLiteral('nul\0')).toThrow(/NUL/);
    expect(() => quoteIdent('nul\0')).toThrow(/NUL/);
  });
});

describe('settings', () => {
  it('splits list settings as PostgreSQL stores them', () => {
    expect(splitSettingList('"$user", public')).toEqual(['$user', 'public']);
    expect(splitSettingList('shop,"a ""b""",  c')).toEqual(['shop', 'a "b"', 'c']);
    expect(splitSettingList('')).toEqual([]);
    expect(() => splitSettingList('"open')).toThrow(/Unterminated/);
  });

  it('renders a stored name=value as a SET clause, list settings item by item', () => {
    expect(settingClause('work_mem=8MB')).toBe(`SET "work_mem" TO E'8MB'`);
    expect(settingClause('search_path=shop, "$user", public')).toBe(
      `SET "search_path" TO E'shop', E'$user', E'public'`,
    );
    expect(settingClause("app.note=x' ; DROP TABLE t; --")).toBe(
      `SET "app"."note" TO E'x'' ; DROP TABLE t; --'`,
    );
    expect(settingClause('search_path=')).toBe(`SET "search_path" TO ''`);
  });
});

describe('roles', () => {
  it('creates a role with every attribute, its password hash, settings and comment', () => {
    expect(
      createRoleSql(
        role({
          connectionLimit: 5,
          validUntil: '2030-01-01T00:00:00.000000Z',
          settings: ['statement_timeout=5s'],
          comment: "the app's read-only login",
        }),
        { withPassword: true },
      ),
    ).toEqual([
      "CREATE ROLE \"app_ro\" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 5 VALID UNTIL E'2030-01-01T00:00:00.000000Z' PASSWORD E'SCRAM-SHA-256$4096:salt$stored:server'",
      `ALTER ROLE "app_ro" SET "statement_timeout" TO E'5s'`,
      `COMMENT ON ROLE "app_ro" IS E'the app''s read-only login'`,
    ]);
    expect(createRoleSql(role(), { withPassword: false })[0]).not.toContain('PASSWORD');
  });

  it('grants memberships with PostgreSQL 16 options only where the target has them', () => {
    const m = { role: 'app_read', member: 'app_ro', admin: true, inherit: false, set: true };
    expect(grantMembershipSql(m, 150000)).toBe('GRANT "app_read" TO "app_ro" WITH ADMIN OPTION');
    expect(grantMembershipSql(m, 160000)).toBe(
      'GRANT "app_read" TO "app_ro" WITH ADMIN TRUE, INHERIT FALSE, SET TRUE',
    );
    expect(grantMembershipSql({ ...m, admin: false, inherit: null, set: null }, 150000)).toBe(
      'GRANT "app_read" TO "app_ro"',
    );
  });
});

describe('the database', () => {
  it('is created from template0 with the source encoding and locale', () => {
    expect(createDatabaseSql(db(), 'app_pgdr_1', 150000)).toBe(
      `CREATE DATABASE "app_pgdr_1" WITH TEMPLATE = template0 ENCODING = E'UTF8' LC_COLLATE = E'C.UTF-8' LC_CTYPE = E'C.UTF-8'`,
    );
    expect(
      createDatabaseSql(db({ localeProvider: 'icu', locale: 'de-DE' }), 'x', 150000),
    ).toContain(`LOCALE_PROVIDER = icu ICU_LOCALE = E'de-DE'`);
    expect(
      createDatabaseSql(db({ localeProvider: 'builtin', locale: 'C.UTF-8' }), 'x', 170000),
    ).toContain(`LOCALE_PROVIDER = builtin BUILTIN_LOCALE = E'C.UTF-8'`);
  });

  it('refuses a target that cannot express the source locale provider', () => {
    expect(() =>
      createDatabaseSql(db({ localeProvider: 'icu', locale: 'de-DE' }), 'x', 140000),
    ).toThrow(/icu locale provider \(de-DE\).*PostgreSQL 14.*PostgreSQL 15 or newer/);
    expect(() =>
      createDatabaseSql(db({ localeProvider: 'builtin', locale: 'C' }), 'x', 160000),
    ).toThrow(/PostgreSQL 17 or newer/);
    expect(() =>
      createDatabaseSql(db({ localeProvider: 'icu', locale: 'de', icuRules: '&a<b' }), 'x', 150000),
    ).toThrow(/ICU rules/);
  });

  it('applies owner, comment, settings, per-role settings, grants and connection limit', () => {
    const props = db({
      comment: 'shop',
      settings: ['work_mem=8MB'],
      roleSettings: [{ role: 'app_rw', settings: ['search_path=shop, public'] }],
      grants: [
        { grantee: null, privilege: 'TEMPORARY', grantable: false },
        { grantee: 'app_owner', privilege: 'CONNECT', grantable: false },
        { grantee: 'app_ro', privilege: 'CONNECT', grantable: true },
      ],
      connectionLimit: 20,
    });
    expect(databasePropertiesSql(props, 'new', { owner: true })).toEqual([
      'ALTER DATABASE "new" OWNER TO "app_owner"',
      `COMMENT ON DATABASE "new" IS E'shop'`,
      `ALTER DATABASE "new" SET "work_mem" TO E'8MB'`,
      `ALTER ROLE "app_rw" IN DATABASE "new" SET "search_path" TO E'shop', E'public'`,
      'REVOKE ALL ON DATABASE "new" FROM PUBLIC',
      'REVOKE ALL ON DATABASE "new" FROM "app_owner"',
      'GRANT TEMPORARY ON DATABASE "new" TO PUBLIC',
      'GRANT CONNECT ON DATABASE "new" TO "app_owner"',
      'GRANT CONNECT ON DATABASE "new" TO "app_ro" WITH GRANT OPTION',
      'ALTER DATABASE "new" CONNECTION LIMIT 20',
    ]);
    // Default privileges (no ACL): nothing revoked.
    expect(databasePropertiesSql(db(), 'n', { owner: true }).join('\n')).not.toMatch(/REVOKE/);
  });
});

describe('globals.sql', () => {
  const g: Globals = {
    format: 'pg-dr-globals/1',
    serverVersionNum: 150018,
    database: db(),
    roles: [role(), role({ name: 'odd$pg_dr$ name', login: false, password: null })],
    memberships: [{ role: 'app_read', member: 'app_ro', admin: false, inherit: null, set: null }],
    passwords: 'included',
    tablespaces: [],
    securityDefiner: [
      { function: 'shop.definer()', owner: 'app_owner', executors: ['app_owner', null] },
    ],
  };

  it('carries the data on its first line and reads back equal', () => {
    const text = globalsScript(g, { backupId: '20261130T020000Z-abcdef', tool: 'pg-dr 0.1.0' });
    expect(text.split('\n')[0]).toMatch(/^-- pg-dr-globals: \{/);
    expect(parseGlobalsScript(text)).toEqual(g);
    expect(() => parseGlobalsScript(`-- something else\n${text}`)).toThrow(/data line/);
  });

  it('guards every role by existence and picks a dollar quote the body does not contain', () => {
    const text = globalsScript(g, { backupId: 'x', tool: 'pg-dr' });
    expect(text).toContain(
      "IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = E'app_ro') THEN",
    );
    // The role named with "$pg_dr$" gets another tag, so its block still parses.
    expect(text).toMatch(/DO \$pg_dr_1\$\n[\s\S]*odd\$pg_dr\$ name[\s\S]*\n\$pg_dr_1\$;/);
  });
});
