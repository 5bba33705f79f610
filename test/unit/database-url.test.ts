import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import {
  type DatabaseTarget,
  describeTarget,
  libpqEnv,
  parseDatabaseUrl,
  passwordForms,
  viaLocalPort,
} from '../../src/postgres/url.js';

/** A password that would be easy to spot in any message, raw or URL-encoded. */
const PASSWORD = 'Sup3r$ecret/pa:ss@word%';
const ENCODED = encodeURIComponent(PASSWORD);

/** Runs `fn`, expects an InputError naming `input`, and checks no form of the password leaks. */
function inputError(fn: () => unknown, input = 'database-url', secrets: string[] = []): InputError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(InputError);
  const err = caught as InputError;
  expect(err.input).toBe(input);
  expect(err.message).toContain(`'${input}'`);
  for (const s of [PASSWORD, ENCODED, 'Sup3r', ...secrets]) expect(err.message).not.toContain(s);
  return err;
}

describe('parseDatabaseUrl', () => {
  it('parses a full postgresql:// URL', () => {
    const t = parseDatabaseUrl('database-url', 'postgresql://app:pw@db.example.com:6543/appdb');
    expect(t).toEqual({
      host: 'db.example.com',
      port: 6543,
      user: 'app',
      password: 'pw',
      database: 'appdb',
      params: {},
    });
  });

  it('accepts the postgres:// scheme and defaults the port to 5432', () => {
    const t = parseDatabaseUrl('database-url', 'postgres://app:pw@db.internal/appdb');
    expect(t.host).toBe('db.internal');
    expect(t.port).toBe(5432);
    expect(t.database).toBe('appdb');
  });

  it('trims surrounding whitespace (a secret pasted with a newline)', () => {
    const t = parseDatabaseUrl('database-url', '  postgresql://app:pw@h/appdb\n');
    expect(t.database).toBe('appdb');
    expect(t.password).toBe('pw');
  });

  it('decodes percent-encoded user, password and database', () => {
    const t = parseDatabaseUrl(
      'database-url',
      `postgresql://back%40up%3Auser:${ENCODED}@db.example.com/my%20db%2Dprod`,
    );
    expect(t.user).toBe('back@up:user');
    expect(t.password).toBe(PASSWORD);
    expect(t.database).toBe('my db-prod');
  });

  it('accepts a user without a password', () => {
    const t = parseDatabaseUrl('database-url', 'postgresql://reader@db/app');
    expect(t.user).toBe('reader');
    expect(t.password).toBe('');
  });

  it('unwraps an IPv6 host', () => {
    const t = parseDatabaseUrl('database-url', 'postgresql://u:p@[2001:db8::1]:5433/app');
    expect(t.host).toBe('2001:db8::1');
    expect(t.port).toBe(5433);
    const loopback = parseDatabaseUrl('database-url', 'postgresql://u:p@[::1]/app');
    expect(loopback.host).toBe('::1');
    expect(loopback.port).toBe(5432);
  });

  it('takes a unix-socket directory from ?host=', () => {
    const t = parseDatabaseUrl(
      'database-url',
      'postgresql://u:p@localhost/app?host=/var/run/postgresql',
    );
    expect(t.host).toBe('/var/run/postgresql');
    expect(t.params).toEqual({});
  });

  it('takes a unix-socket directory written percent-encoded as the host', () => {
    const t = parseDatabaseUrl('database-url', 'postgresql://u@%2Fvar%2Frun%2Fpostgresql/app');
    expect(t.host).toBe('/var/run/postgresql');
  });

  // libpq's own form for a socket: an empty host and `?host=`. WHATWG URL refuses
  // credentials without a host, so this fails with "not a URL".
  it('accepts the libpq socket form with an empty host (user:pw@/db?host=/dir)', () => {
    const t = parseDatabaseUrl(
      'database-url',
      'postgresql://backup:pw@/app?host=/var/run/postgresql',
    );
    expect(t).toMatchObject({ host: '/var/run/postgresql', user: 'backup', database: 'app' });
  });

  it('keeps sslmode and other libpq parameters', () => {
    const t = parseDatabaseUrl(
      'database-url',
      'postgresql://u:p@h/app?sslmode=verify-full&sslrootcert=/etc/ca.pem&connect_timeout=5&application_name=dr&target_session_attrs=read-write',
    );
    expect(t.params).toEqual({
      sslmode: 'verify-full',
      sslrootcert: '/etc/ca.pem',
      connect_timeout: '5',
      application_name: 'dr',
      target_session_attrs: 'read-write',
    });
  });

  it('refuses an unsupported parameter, naming it but not its value', () => {
    const err = inputError(() =>
      parseDatabaseUrl('database-url', `postgresql://u@h/app?password=${ENCODED}`),
    );
    expect(err.message).toContain('unsupported parameter "password"');
    expect(err.message).toContain('sslmode');
    const other = inputError(() =>
      parseDatabaseUrl('database-url', `postgresql://u:${ENCODED}@h/app?dbname=x`),
    );
    expect(other.message).toContain('"dbname"');
  });

  it('refuses a missing database, user or host', () => {
    expect(
      inputError(() => parseDatabaseUrl('database-url', `postgresql://u:${ENCODED}@h/`)).message,
    ).toContain('no database name');
    expect(
      inputError(() => parseDatabaseUrl('database-url', `postgresql://u:${ENCODED}@h:5432`))
        .message,
    ).toContain('no database name');
    expect(
      inputError(() => parseDatabaseUrl('database-url', `postgresql://u:${ENCODED}@h/a/b`)).message,
    ).toContain('no database name');
    expect(
      inputError(() => parseDatabaseUrl('database-url', `postgresql://:${ENCODED}@h/app`)).message,
    ).toContain('no user name');
    expect(
      inputError(() => parseDatabaseUrl('database-url', 'postgresql:///app')).message,
    ).toContain('no host');
  });

  it('refuses several hosts', () => {
    expect(
      inputError(() => parseDatabaseUrl('database-url', `postgresql://u:${ENCODED}@h1,h2/app`))
        .message,
    ).toContain('several hosts');
  });

  it('refuses an empty value as missing', () => {
    expect(inputError(() => parseDatabaseUrl('database-url', '  ')).message).toMatch(
      /^Missing 'database-url'\./,
    );
  });

  it('refuses a bad port without showing the password', () => {
    for (const port of ['99999', 'abc', '-1']) {
      inputError(() => parseDatabaseUrl('database-url', `postgresql://u:${ENCODED}@h:${port}/app`));
    }
  });

  // libpq accepts ports 1–65535 only; port 0 is taken here and fails at connect time.
  it('refuses port 0', () => {
    inputError(() => parseDatabaseUrl('database-url', `postgresql://u:${ENCODED}@h:0/app`));
  });

  it('refuses something that is not a URL without echoing it', () => {
    const value = `u:${PASSWORD} at db.example.com`;
    const err = inputError(() => parseDatabaseUrl('database-url', value));
    expect(err.message).not.toContain(value);
  });

  it('refuses another scheme, naming it but never the password', () => {
    const err = inputError(() =>
      parseDatabaseUrl('database-url', `mysql://u:${ENCODED}@h:3306/app`),
    );
    expect(err.message).toContain('scheme "mysql"');
    inputError(() => parseDatabaseUrl('database-url', `https://u:${ENCODED}@h/app`));
  });

  it('refuses a bad percent-encoding in the password without echoing it', () => {
    const err = inputError(
      () => parseDatabaseUrl('database-url', 'postgresql://u:Sup3r%ZZhidden@h/app'),
      'database-url',
      ['%ZZhidden'],
    );
    expect(err.message).toContain('percent-encoding');
  });

  // decodeURIComponent of the path and the host sits outside the try: a URIError
  // ("URI malformed") escapes that does not name the input.
  it('refuses a bad percent-encoding in the database name as an InputError', () => {
    inputError(() => parseDatabaseUrl('database-url', `postgresql://u:${ENCODED}@h/app%ZZ`));
  });

  it('refuses a bad percent-encoding in the host as an InputError', () => {
    inputError(() => parseDatabaseUrl('database-url', `postgresql://u:${ENCODED}@ho%ZZst/app`));
  });

  it('names the input it was given', () => {
    const err = inputError(
      () => parseDatabaseUrl('drill-database-url', `postgresql://u:${ENCODED}@h/`),
      'drill-database-url',
    );
    expect(err.message).toMatch(/^Invalid 'drill-database-url'/);
  });
});

describe('passwordForms', () => {
  it('lists the whole URL, the raw password and its URL-encoded forms', () => {
    const url = `postgresql://u:${ENCODED}@h/app`;
    const forms = passwordForms(url, parseDatabaseUrl('database-url', url));
    expect(forms).toContain(url);
    expect(forms).toContain(PASSWORD);
    expect(forms).toContain(ENCODED);
    expect(forms.every((f) => f.length > 0)).toBe(true);
  });

  it('includes the password exactly as written in the URL (other encodings)', () => {
    // `!` and `*` are left as they are by encodeURIComponent; written encoded here.
    const url = 'postgresql://u:pa%21ss%2Aw0rd@h/app';
    const forms = passwordForms(url, parseDatabaseUrl('database-url', url));
    expect(forms).toContain('pa!ss*w0rd');
    expect(forms).toContain('pa%21ss%2Aw0rd');
  });

  it('has only the URL when there is no password', () => {
    const url = ' postgresql://u@h/app ';
    expect(passwordForms(url, parseDatabaseUrl('database-url', url))).toEqual([
      'postgresql://u@h/app',
    ]);
  });
});

describe('describeTarget', () => {
  it('shows user, host, port and database but never the password', () => {
    const url = `postgresql://app:${ENCODED}@db.example.com:6543/appdb`;
    const text = describeTarget(parseDatabaseUrl('database-url', url));
    expect(text).toBe('app@db.example.com:6543/appdb');
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(ENCODED);
  });

  it('brackets an IPv6 host', () => {
    const t = parseDatabaseUrl('database-url', 'postgresql://u:p@[::1]:5433/app');
    expect(describeTarget(t)).toBe('u@[::1]:5433/app');
  });

  it('describes a tunnelled target at its local port', () => {
    const t = viaLocalPort(parseDatabaseUrl('database-url', 'postgresql://u:p@db/app'), 40123);
    expect(describeTarget(t)).toBe('u@db/app (via 127.0.0.1:40123)');
    expect(t.password).toBe('p');
    // libpq connects to the tunnel but still checks TLS against the server's name.
    const env = libpqEnv(t, {});
    expect([env.PGHOST, env.PGHOSTADDR, env.PGPORT]).toEqual(['db', '127.0.0.1', '40123']);
  });
});

describe('libpqEnv', () => {
  const base: NodeJS.ProcessEnv = {
    PATH: '/usr/bin',
    HOME: '/home/runner',
    PGHOST: 'evil.example.com',
    PGPORT: '1',
    PGUSER: 'postgres',
    PGPASSWORD: 'inherited',
    PGSERVICE: 'other',
    PGSSLMODE: 'disable',
    PGPASSFILE: '/tmp/pgpass',
  };

  it('strips inherited PG* variables and sets the target', () => {
    const t = parseDatabaseUrl('database-url', 'postgresql://app:pw@db:6543/appdb');
    const env = libpqEnv(t, base);
    expect(env).toEqual({
      PATH: '/usr/bin',
      HOME: '/home/runner',
      PGHOST: 'db',
      PGPORT: '6543',
      PGUSER: 'app',
      PGPASSWORD: 'pw',
      PGDATABASE: 'appdb',
      PGAPPNAME: 'pg-dr',
      PGCONNECT_TIMEOUT: '20',
    });
  });

  it('sets PGPASSWORD only when the URL has a password (not the inherited one)', () => {
    const t = parseDatabaseUrl('database-url', 'postgresql://app@db/appdb');
    const env = libpqEnv(t, base);
    expect('PGPASSWORD' in env).toBe(false);
    expect(env.PGSERVICE).toBeUndefined();
    expect(env.PGPASSFILE).toBeUndefined();
  });

  it('turns URL parameters into PG* variables, overriding the defaults', () => {
    const t = parseDatabaseUrl(
      'database-url',
      'postgresql://app:pw@db/appdb?sslmode=require&connect_timeout=7&application_name=nightly&channel_binding=require',
    );
    const env = libpqEnv(t, base);
    expect(env.PGSSLMODE).toBe('require');
    expect(env.PGCONNECT_TIMEOUT).toBe('7');
    expect(env.PGAPPNAME).toBe('nightly');
    expect(env.PGCHANNELBINDING).toBe('require');
  });

  it('passes a socket directory as PGHOST', () => {
    const t: DatabaseTarget = parseDatabaseUrl(
      'database-url',
      'postgresql://app@localhost/appdb?host=/var/run/postgresql',
    );
    expect(libpqEnv(t, {}).PGHOST).toBe('/var/run/postgresql');
  });

  it('does not modify the base environment', () => {
    const copy = { ...base };
    libpqEnv(parseDatabaseUrl('database-url', 'postgresql://a:b@c/d'), copy);
    expect(copy).toEqual(base);
  });
});
