import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { UserError } from '../errors.js';
import type { RestoreSettings } from '../inputs/parse.js';
import type { Manifest } from '../manifest/schema.js';
import { checkFreeSpace, tempSpace } from '../pipeline/restore-file.js';
import { type RowCheck, restoreFileInto } from '../pipeline/restore-into.js';
import { toolPath } from '../postgres/binaries.js';
import { pickClient } from '../postgres/clients.js';
import { readGlobals } from '../postgres/globals.js';
import { databaseName, randomSuffix, type SwitchResult } from '../postgres/rebuild.js';
import { openSession } from '../postgres/session.js';
import { countRows } from '../postgres/snapshot.js';
import { causeOf } from '../postgres/stderr.js';
import type { RestoreDeps, TargetCheck } from './restore.js';
import { switchIn } from './restore.js';

/**
 * A point-in-time recovery carried into `database-url` by the logical route, so it reaches a
 * managed service too. The recovered server runs privately (no TCP, its own socket folder,
 * local trust) and nothing writes to it, so its row counts, taken first, are the dump's:
 * `pg_dump -Fc` into a private temporary file, then the same restore as a logical backup's —
 * the roles it needs (read from the recovered cluster), a new database, pg_restore, the row
 * counts compared, the properties applied, switched in as the target.
 */
export interface CarryReport {
  readonly database: string;
  readonly previous: string | null;
  readonly check: RowCheck;
  readonly rolesCreated: readonly string[];
  readonly rolesExisting: readonly string[];
  readonly differences: readonly string[];
  readonly seconds: number;
}

export async function carryInto(o: {
  readonly settings: RestoreSettings;
  readonly deps: RestoreDeps;
  readonly manifest: Manifest;
  readonly target: TargetCheck;
  /** The recovered server's socket folder (port 5432 there). */
  readonly socketDir: string;
}): Promise<CarryReport> {
  const { settings, deps, manifest, target } = o;
  const t0 = Date.now();
  const major = Math.floor(manifest.database.serverVersionNum / 10000);
  const why = `the recovered server is PostgreSQL ${manifest.database.serverVersion}`;
  const log = (l: string) => deps.host.info(l);
  const pgDump = toolPath(
    await pickClient('pg_dump', major, why, settings.pgClients, deps.env, log),
    'pg_dump',
  );
  const pgRestore = toolPath(
    await pickClient('pg_restore', major, why, settings.pgClients, deps.env, log),
    'pg_restore',
  );
  const source = {
    host: o.socketDir,
    port: 5432,
    user: manifest.physical?.superuser ?? 'postgres',
    password: '',
    database: manifest.database.name,
    params: {},
  };
  const session = await openSession(source);
  let counts: Awaited<ReturnType<typeof countRows>>;
  let globals: Awaited<ReturnType<typeof readGlobals>>;
  try {
    counts = await countRows(session, 'exact');
    globals = await readGlobals(session, manifest.database.serverVersionNum);
  } finally {
    await session.close();
  }
  const space = tempSpace(settings.parallel.tempDir, deps.env);
  await checkFreeSpace(space, manifest.database.sizeBytes);
  const dir = await mkdtemp(join(space.dir, `pg-dr-carry-${manifest.id}-`));
  try {
    const file = join(dir, 'database.dump');
    deps.host.info(
      `pg_dump of "${manifest.database.name}" from the recovered server into a temporary file`,
    );
    const dumped = await execa(pgDump, ['-Fc', '-Z0', '-f', file, '--no-password'], {
      env: {
        PGHOST: source.host,
        PGPORT: '5432',
        PGUSER: source.user,
        PGDATABASE: source.database,
      },
      extendEnv: false,
      reject: false,
      all: true,
    });
    if (dumped.exitCode !== 0)
      throw new UserError(`pg_dump of the recovered database failed: ${causeOf(dumped.all)}`);
    const name = databaseName(`${target.name}_pgdr_`, randomSuffix());
    const restored = await restoreFileInto({
      server: target.server,
      facts: target.facts,
      ownership: settings.ownership,
      globals,
      name,
      pgRestore,
      file,
      jobs: settings.parallel.jobs,
      input: 'database-url',
      log,
    });
    if (!restored.ok)
      throw new UserError(
        `The recovered database could not be restored into 'database-url' (nothing was switched in): ${restored.error}`,
      );
    const counted: Manifest = {
      ...manifest,
      database: { ...manifest.database, rowCounts: { method: 'exact', tables: counts } },
    };
    const { check, switched } = await switchIn(
      { settings, deps, manifest: counted, target, folder: '', pgRestore },
      { rebuild: restored.rebuild, name, from: 'the recovered server' },
    );
    if (!switched)
      throw new UserError(
        `The carried database has other row counts than the recovered server (${check.mismatches.length} tables); it was dropped and the target is unchanged.`,
      );
    return {
      database: target.name,
      previous: (switched as SwitchResult).previous,
      check,
      rolesCreated: [...restored.rebuild.rolesCreated],
      rolesExisting: [...restored.rebuild.rolesExisting],
      differences: [...restored.rebuild.differences],
      seconds: (Date.now() - t0) / 1000,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
