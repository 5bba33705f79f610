import { UserError } from '../errors.js';
import {
  type ClientInstall,
  type ClientTool,
  findClients,
  isServerTool,
  realInstall,
  selectClient,
} from './binaries.js';
import { installClient } from './install.js';
import type { ServerAccess } from './rebuild.js';
import { openSession, type Session } from './session.js';
import type { DatabaseTarget } from './url.js';
import { describeTarget } from './url.js';

/** Where PostgreSQL client programs come from. */
export interface PgClientSettings {
  /** Directory preferred for pg_dump/pg_restore/psql; '' = search PATH and /usr/lib/postgresql. */
  readonly binDir: string;
  /**
   * Install postgresql-client-<major> from the PostgreSQL apt repository when none fits:
   * always, never, or `auto` — on a GitHub-hosted runner only (RUNNER_ENVIRONMENT), where
   * apt and passwordless sudo are there and nothing else is changed by it.
   */
  readonly install: boolean | 'auto';
}

/** Whether `install-client` installs a missing client here: `auto` on GitHub-hosted runners only. */
export function willInstall(clients: PgClientSettings, env: NodeJS.ProcessEnv): boolean {
  return clients.install === 'auto' ? env.RUNNER_ENVIRONMENT === 'github-hosted' : clients.install;
}

/** A PostgreSQL client program the server (or archive) can be handled with, or a clear error. */
export class ClientVersionError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'ClientVersionError';
  }
}

/**
 * Finds `tool` of major ≥ `minMajor` (the server's own major first, then the oldest newer
 * one); with `install`, installs postgresql-client-<minMajor> from the PostgreSQL apt
 * repository when none fits. `why` explains the minimum in the error.
 */
export async function pickClient(
  tool: ClientTool,
  minMajor: number,
  why: string,
  clients: PgClientSettings,
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
): Promise<ClientInstall> {
  const find = () => findClients(tool, clients.binDir, env);
  let found = await find();
  const chosen = selectClient(found, minMajor);
  if (chosen) return chosen;
  if (willInstall(clients, env) && Number.isInteger(minMajor)) {
    await installClient(minMajor, log);
    found = await find();
    const installed = selectClient(found, minMajor);
    if (installed) return installed;
  }
  const list = found.length ? found.map((c) => `${c.version} (${c.binDir})`).join(', ') : 'none';
  throw new ClientVersionError(
    `No ${tool} of version ${minMajor} or newer: ${why}; found ${list}. ` +
      `Fix: install postgresql-client-${minMajor} (PostgreSQL apt repository) and point 'pg-bin-dir' at its bin directory, or set 'install-client: true'${clients.install === 'auto' ? " (with 'auto', pg-dr installs it on GitHub-hosted runners only)" : ''}.`,
  );
}

/**
 * Finds `tool` of exactly `major` (a physical copy is only ever started by the server's own
 * major, so pg-dr takes it with the same); with `install`, installs postgresql-client-<major>
 * when none is found. The error names the server's version and every client found.
 */
export async function pickSameMajor(
  tool: ClientTool,
  major: number,
  serverVersion: string,
  clients: PgClientSettings,
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
): Promise<ClientInstall> {
  const find = async () =>
    (await findClients(tool, clients.binDir, env)).filter((c) => c.major === major);
  // The folder the tool really lives in (a PATH entry may hold a symlink): its companions
  // (pg_waldump, pg_controldata, postgres) are there.
  const found = await find();
  if (found[0]) return realInstall(found[0], tool);
  if (willInstall(clients, env) && Number.isInteger(major)) {
    await installClient(major, log, null, isServerTool(tool));
    const installed = (await find())[0];
    if (installed) return realInstall(installed, tool);
  }
  const all = await findClients(tool, clients.binDir, env);
  const list = all.length ? all.map((c) => `${c.version} (${c.binDir})`).join(', ') : 'none';
  throw new ClientVersionError(
    `No ${tool} of major ${major}: ${serverVersion} and a physical backup needs ${tool} of the same major; found ${list}. ` +
      `Fix: install ${isServerTool(tool) ? 'postgresql' : 'postgresql-client'}-${major} (PostgreSQL apt repository) and point 'pg-bin-dir' at its bin directory, or set 'install-client: true'.`,
  );
}

/** Opens pg-dr's own session to `target`; a failure names the input. */
export async function connect(target: DatabaseTarget, input = 'database-url'): Promise<Session> {
  try {
    return await openSession(target);
  } catch (e) {
    throw new Error(
      `Cannot connect to ${describeTarget(target)}: ${(e as Error).message} (check '${input}').`,
    );
  }
}

/**
 * Sessions on the server `target` names: on any database of it, and on a maintenance
 * database — the first of `maintenance` that accepts the connection — for what must not
 * run inside the database it changes (CREATE/DROP/RENAME DATABASE, roles).
 */
export function serverAccess(
  target: DatabaseTarget,
  input: string,
  maintenance: readonly string[],
): ServerAccess {
  const at = (database: string): DatabaseTarget => ({ ...target, database });
  let chosen: string | null = null;
  return {
    target: at,
    open: (database) => connect(at(database), input),
    async maintenance() {
      if (chosen !== null) return connect(at(chosen), input);
      const errors: string[] = [];
      for (const db of maintenance) {
        try {
          const s = await connect(at(db), input);
          chosen = db;
          return s;
        } catch (e) {
          errors.push((e as Error).message);
        }
      }
      throw new Error(errors.join('; '));
    },
  };
}
