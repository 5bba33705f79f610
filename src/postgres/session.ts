import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { UserError } from '../errors.js';
import { withoutRowData } from '../report/inert.js';
import type { DatabaseTarget } from './url.js';

/**
 * pg-dr's own connection to PostgreSQL, through node-postgres: SQL goes to the server's
 * parser only, never to a client-side one that would act on its text (psql's backslash
 * commands), so no name read from a catalog or a backup can become a command on the
 * runner. The connection honours the URL's libpq parameters (sslmode and its files,
 * connect_timeout, application_name, options, target_session_attrs) and the SSH tunnel.
 */
export interface Session {
  /** Runs one query; resolves with its rows as JSON values (`json_agg` of the query). */
  rows<T>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** Runs statements whose output is not needed (several, separated by `;`, without params). */
  exec(sql: string, params?: readonly unknown[]): Promise<void>;
  close(): Promise<void>;
}

/** A failed statement or connection: the server's message, and its SQLSTATE when it sent one. */
export class SqlError extends UserError {
  constructor(
    message: string,
    readonly code: string | null,
  ) {
    super(message);
    this.name = 'SqlError';
  }
}

/** What a network failure means, in the words libpq uses. */
const NETWORK: Record<string, string> = {
  ECONNREFUSED: 'Connection refused',
  ECONNRESET: 'Connection reset by peer',
  ETIMEDOUT: 'Connection timed out',
  EHOSTUNREACH: 'No route to host',
  ENETUNREACH: 'Network is unreachable',
  ENOTFOUND: 'Could not translate host name (not found)',
  EAI_AGAIN: 'Could not translate host name (temporary failure)',
};

export function sqlErrorOf(e: unknown): SqlError {
  const err = e as {
    message?: string;
    code?: string;
    severity?: string;
    detail?: string;
    hint?: string;
  };
  const network = err.code ? NETWORK[err.code] : undefined;
  const message = network ? `${network} (${err.message})` : (err.message ?? String(e));
  // The server's DETAIL (when short and free of row data) and HINT say what to do.
  const detail = err.detail ? withoutRowData(err.detail).trim() : '';
  const extra = [
    detail !== '' && detail.length <= 160 && !detail.includes('row data omitted')
      ? `DETAIL: ${detail}`
      : '',
    err.hint ? `HINT: ${err.hint}` : '',
  ].filter(Boolean);
  return new SqlError(
    [err.severity ? `${err.severity}: ${message}` : message, ...extra].join(' | '),
    typeof err.code === 'string' ? err.code : null,
  );
}

async function readOptional(path: string | undefined): Promise<string | undefined> {
  if (!path) return undefined;
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new SqlError(`cannot read ${path}: ${(e as Error).message}`, null);
  }
}

/**
 * The TLS settings libpq would use for `sslmode`: `disable` none; `allow`/`prefer` TLS
 * without verification, falling back to plain when the server has no TLS; `require` TLS
 * (verifying the CA when a root certificate is given, as libpq does); `verify-ca` the
 * CA; `verify-full` the CA and the server's name (the URL's host, also through a tunnel).
 */
async function tlsFor(
  t: DatabaseTarget,
): Promise<{ ssl: ConnectionOptions | false; fallback: boolean; plainFirst: boolean }> {
  const mode = t.params.sslmode ?? 'prefer';
  if (mode === 'disable') return { ssl: false, fallback: false, plainFirst: false };
  const home = homedir();
  const rootPath =
    t.params.sslrootcert ?? (home ? join(home, '.postgresql', 'root.crt') : undefined);
  const system = t.params.sslrootcert === 'system';
  const ca =
    system || (mode !== 'verify-ca' && mode !== 'verify-full' && !t.params.sslrootcert)
      ? undefined
      : await readOptional(rootPath);
  const base: ConnectionOptions = {
    ...(t.params.sslcert ? { cert: await readOptional(t.params.sslcert) } : {}),
    ...(t.params.sslkey ? { key: await readOptional(t.params.sslkey) } : {}),
    ...(t.params.sslcrl ? { crl: await readOptional(t.params.sslcrl) } : {}),
  };
  if (mode === 'allow' || mode === 'prefer')
    return {
      ssl: { ...base, rejectUnauthorized: false },
      fallback: true,
      plainFirst: mode === 'allow',
    };
  if (mode === 'verify-full')
    return {
      ssl: { ...base, ...(ca ? { ca } : {}), servername: t.host, rejectUnauthorized: true },
      fallback: false,
      plainFirst: false,
    };
  if (mode === 'verify-ca' || (mode === 'require' && ca))
    return {
      ssl: {
        ...base,
        ...(ca ? { ca } : {}),
        rejectUnauthorized: true,
        checkServerIdentity: () => undefined,
      },
      fallback: false,
      plainFirst: false,
    };
  return { ssl: { ...base, rejectUnauthorized: false }, fallback: false, plainFirst: false };
}

/** Checks `target_session_attrs` on a connected client, as libpq would before using it. */
async function checkSessionAttrs(client: pg.Client, wanted: string | undefined): Promise<void> {
  if (!wanted || wanted === 'any' || wanted === 'prefer-standby') return;
  const { rows } = await client.query<{ ro: string; standby: boolean }>(
    "SELECT current_setting('transaction_read_only') AS ro, pg_catalog.pg_is_in_recovery() AS standby",
  );
  const row = rows[0];
  const ok =
    wanted === 'read-write'
      ? row?.ro === 'off'
      : wanted === 'read-only'
        ? row?.ro === 'on'
        : wanted === 'primary'
          ? row?.standby === false
          : row?.standby === true;
  if (!ok) throw new SqlError(`the server is not ${wanted} (target_session_attrs)`, null);
}

/**
 * A connected node-postgres client for `t`, TLS as libpq would choose it; with
 * `replication`, a physical replication connection (walsender: replication commands only).
 */
export async function connectClient(t: DatabaseTarget, replication = false): Promise<pg.Client> {
  if (t.params.gssencmode === 'require')
    throw new SqlError('gssencmode=require is not supported by pg-dr', null);
  const tls = await tlsFor(t);
  const connectTimeout = Number(t.params.connect_timeout ?? '20');
  const config = (ssl: ConnectionOptions | false): pg.ClientConfig => ({
    host: t.hostaddr ?? t.host,
    port: t.port,
    user: t.user,
    ...(t.password !== '' ? { password: t.password } : {}),
    database: t.database,
    application_name: t.params.application_name ?? 'pg-dr',
    ...(t.params.options ? { options: t.params.options } : {}),
    ...(connectTimeout > 0 ? { connectionTimeoutMillis: connectTimeout * 1000 } : {}),
    ...(t.params.channel_binding && t.params.channel_binding !== 'disable'
      ? { enableChannelBinding: true }
      : {}),
    ...(replication ? { replication: 'true' } : {}),
    ssl,
  });
  const attempt = async (ssl: ConnectionOptions | false): Promise<pg.Client> => {
    const client = new pg.Client(config(ssl));
    client.on('error', () => undefined);
    client.on('notice', () => undefined);
    try {
      await client.connect();
      return client;
    } catch (e) {
      await client.end().catch(() => undefined);
      throw e;
    }
  };
  try {
    const order = tls.plainFirst ? [false, tls.ssl] : [tls.ssl, ...(tls.fallback ? [false] : [])];
    let last: unknown;
    for (const ssl of order) {
      try {
        return await attempt(ssl as ConnectionOptions | false);
      } catch (e) {
        last = e;
        // Fall back only when the server refused TLS (or plain), not on a wrong password.
        if (!/does not support SSL|SSL off|no pg_hba\.conf entry/i.test((e as Error).message))
          break;
      }
    }
    throw last;
  } catch (e) {
    throw sqlErrorOf(e);
  }
}

export async function openSession(t: DatabaseTarget): Promise<Session> {
  const client = await connectClient(t);
  try {
    await checkSessionAttrs(client, t.params.target_session_attrs);
  } catch (e) {
    await client.end().catch(() => undefined);
    throw sqlErrorOf(e);
  }
  // As pg_dump and pg_restore do: a database's or role's own settings (a statement timeout,
  // read-only transactions) must not break what pg-dr runs there.
  await client.query(
    'SET statement_timeout = 0; SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0; SET default_transaction_read_only = off',
  );
  let closed = false;
  return {
    async rows<T>(sql: string, params: readonly unknown[] = []) {
      try {
        const r = await client.query<{ rows: T[] }>(
          `SELECT coalesce(json_agg(q), '[]'::json) AS rows FROM (${sql.trim().replace(/;\s*$/, '')}) q`,
          [...params],
        );
        return r.rows[0]?.rows ?? [];
      } catch (e) {
        throw sqlErrorOf(e);
      }
    },
    async exec(sql: string, params: readonly unknown[] = []) {
      try {
        await client.query(sql, params.length ? [...params] : undefined);
      } catch (e) {
        throw sqlErrorOf(e);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await client.end().catch(() => undefined);
    },
  };
}
