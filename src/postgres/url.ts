import { childEnv } from '../child-env.js';
import { InputError } from '../errors.js';

/** A PostgreSQL connection, as libpq needs it. Never logged whole: it holds the password. */
export interface DatabaseTarget {
  /** Host name or IP, or a unix-socket directory (from `?host=/path`). */
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  /** libpq parameters from the query string (sslmode, sslrootcert, …), as PG* variables. */
  readonly params: Readonly<Record<string, string>>;
  /**
   * The address actually connected to (an SSH tunnel's local end); `host` then still
   * names the server, so TLS verification (sslmode=verify-full) checks the right name.
   */
  readonly hostaddr?: string;
}

/** Query-string parameters understood, and the libpq variable each becomes. */
const PARAM_ENV: Record<string, string> = {
  sslmode: 'PGSSLMODE',
  sslrootcert: 'PGSSLROOTCERT',
  sslcert: 'PGSSLCERT',
  sslkey: 'PGSSLKEY',
  sslcrl: 'PGSSLCRL',
  connect_timeout: 'PGCONNECT_TIMEOUT',
  application_name: 'PGAPPNAME',
  options: 'PGOPTIONS',
  target_session_attrs: 'PGTARGETSESSIONATTRS',
  gssencmode: 'PGGSSENCMODE',
  channel_binding: 'PGCHANNELBINDING',
};

/** Parameters whose values libpq would only reject at connect time: checked up front. */
const PARAM_VALUES: Record<string, readonly string[]> = {
  sslmode: ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'],
  gssencmode: ['disable', 'prefer', 'require'],
  channel_binding: ['disable', 'prefer', 'require'],
  target_session_attrs: ['any', 'read-write', 'read-only', 'primary', 'standby', 'prefer-standby'],
};

/**
 * Parses `postgresql://user:password@host:port/database?sslmode=…`. Errors name `input`
 * and never echo the value (it may hold a password).
 */
export function parseDatabaseUrl(input: string, value: string): DatabaseTarget {
  const expected =
    'Expected a URL like postgresql://user:password@host:5432/database (the value is not shown: it may hold a password).';
  if (value.trim() === '') throw new InputError(input, `Missing '${input}'. ${expected}`);
  let url: URL;
  try {
    // libpq's socket form has no host (`postgresql://u:pw@/db?host=/run/postgresql`), which
    // WHATWG URLs refuse with credentials; a placeholder host stands in (the query wins).
    url = new URL(value.trim().replace(/^(postgres(?:ql)?:\/\/[^/?#]*@)(?=[/?])/, '$1localhost'));
  } catch {
    throw new InputError(input, `Invalid '${input}': not a URL. ${expected}`);
  }
  if (url.protocol !== 'postgresql:' && url.protocol !== 'postgres:') {
    throw new InputError(
      input,
      `Invalid '${input}': scheme "${url.protocol.replace(/:$/, '')}". ${expected}`,
    );
  }
  const params: Record<string, string> = {};
  let socketHost: string | undefined;
  for (const [k, v] of url.searchParams) {
    if (k === 'host') socketHost = v;
    else if (k in PARAM_ENV) {
      const allowed = PARAM_VALUES[k];
      if (allowed && !allowed.includes(v))
        throw new InputError(
          input,
          `Invalid '${input}': ${k}="${v}". Expected one of: ${allowed.join(', ')}.`,
        );
      if (k === 'connect_timeout' && !/^\d{1,5}$/.test(v))
        throw new InputError(
          input,
          `Invalid '${input}': connect_timeout="${v}". Expected whole seconds.`,
        );
      params[k] = v;
    } else
      throw new InputError(
        input,
        `Invalid '${input}': unsupported parameter "${k}". Supported: host, ${Object.keys(PARAM_ENV).join(', ')}.`,
      );
  }
  const decode = (part: string) => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw new InputError(input, `Invalid '${input}': bad percent-encoding. ${expected}`);
    }
  };
  const host = socketHost ?? decode(url.hostname).replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw new InputError(input, `Invalid '${input}': no host. ${expected}`);
  if (host.includes(','))
    throw new InputError(input, `Invalid '${input}': several hosts are not supported. ${expected}`);
  const port = url.port === '' ? 5432 : Number(url.port);
  if (port < 1) throw new InputError(input, `Invalid '${input}': bad port. ${expected}`);
  const database = decode(url.pathname.replace(/^\//, ''));
  if (database === '' || database.includes('/'))
    throw new InputError(input, `Invalid '${input}': no database name in the path. ${expected}`);
  const user = decode(url.username);
  const password = decode(url.password);
  if (user === '') throw new InputError(input, `Invalid '${input}': no user name. ${expected}`);
  return { host, port, user, password, database, params };
}

/** The forms of the password that could show up in text: raw and as written in a URL. */
export function passwordForms(url: string, target: DatabaseTarget): string[] {
  const forms = new Set<string>([url.trim()]);
  if (target.password !== '') {
    forms.add(target.password);
    forms.add(encodeURIComponent(target.password));
    try {
      forms.add(new URL(url.trim()).password);
    } catch {}
  }
  return [...forms].filter((s) => s.length > 0);
}

/** The same target reached through a local port (an SSH tunnel's local end). */
export function viaLocalPort(target: DatabaseTarget, port: number): DatabaseTarget {
  return { ...target, hostaddr: '127.0.0.1', port };
}

/** A printable description: never the password. */
export function describeTarget(t: DatabaseTarget): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  if (t.hostaddr) return `${t.user}@${host}/${t.database} (via ${t.hostaddr}:${t.port})`;
  return `${t.user}@${host}:${t.port}/${t.database}`;
}

/**
 * The environment for a libpq client (pg_dump, pg_restore): the inherited PG*
 * variables are removed so that only the URL decides where the client connects; the
 * password travels in PGPASSWORD, never on a command line.
 */
export function libpqEnv(
  t: DatabaseTarget,
  base: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv {
  // Only the allow-list (PATH, HOME, locale…): no inherited PG* variable, no secret of pg-dr's.
  const env = childEnv(base);
  env.PGHOST = t.host;
  if (t.hostaddr) env.PGHOSTADDR = t.hostaddr;
  env.PGPORT = String(t.port);
  env.PGUSER = t.user;
  env.PGDATABASE = t.database;
  if (t.password !== '') env.PGPASSWORD = t.password;
  env.PGAPPNAME = 'pg-dr';
  env.PGCONNECT_TIMEOUT = '20';
  for (const [k, v] of Object.entries(t.params)) {
    const name = PARAM_ENV[k];
    if (name) env[name] = v;
  }
  return env;
}
