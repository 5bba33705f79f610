import { readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { childEnv } from '../child-env.js';

/** One command of the install plan: file and arguments, run without a shell. */
export type PlannedCommand = readonly [file: string, args: readonly string[]];

export interface InstallContext {
  /** Debian/Ubuntu release codename (`noble`, `bookworm`), from /etc/os-release. */
  readonly codename: string;
  /** Running as root: no sudo needed. */
  readonly root: boolean;
}

/** The PostgreSQL project's apt repository (PGDG), which carries every supported major. */
export const PGDG_KEY_URL = 'https://www.postgresql.org/media/keys/ACCC4CF8.asc';
/** The fingerprint of that key: a key that downloads with another one is refused. */
export const PGDG_KEY_FINGERPRINT = 'B97B0AFCAA1A47F044F244A07FCC7D46ACCC4CF8';
export const PGDG_REPO_URL = 'https://apt.postgresql.org/pub/repos/apt';
const KEYRING = '/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc';
const SOURCES = '/etc/apt/sources.list.d/pgdg.list';

/**
 * The commands that install `postgresql-client-<major>` from PGDG on a Debian/Ubuntu
 * runner: fetch the signing key into a keyring file, add the signed-by source for this
 * release, update, install. The client lands in /usr/lib/postgresql/<major>/bin, where
 * client discovery looks.
 */
export function installClientPlan(
  major: number,
  ctx: InstallContext,
  server = false,
): PlannedCommand[] {
  if (!Number.isInteger(major) || major < 10)
    throw new Error(`cannot install a client for major ${major}`);
  if (!/^[a-z]+$/.test(ctx.codename))
    throw new Error(`unexpected release codename "${ctx.codename}"`);
  const sudo = (file: string, args: readonly string[]): PlannedCommand =>
    ctx.root ? [file, args] : ['sudo', ['-n', file, ...args]];
  const source = `deb [signed-by=${KEYRING}] ${PGDG_REPO_URL} ${ctx.codename}-pgdg main`;
  return [
    sudo('install', ['-d', '-m', '0755', '/usr/share/postgresql-common/pgdg']),
    sudo('curl', ['-fsSL', '--retry', '3', '-o', KEYRING, PGDG_KEY_URL]),
    // The key is pinned: apt trusts it for every package of the repository.
    sudo('sh', [
      '-c',
      `gpg --show-keys --with-colons ${KEYRING} | grep -q '^fpr:::::::::${PGDG_KEY_FINGERPRINT}:' || { rm -f ${KEYRING}; echo 'the downloaded PostgreSQL apt signing key is not ${PGDG_KEY_FINGERPRINT}' >&2; exit 1; }`,
    ]),
    sudo('sh', ['-c', `echo '${source}' > ${SOURCES}`]),
    sudo('apt-get', ['update', '-qq']),
    // The server package would create and start a cluster of its own: pg-dr wants its binaries only.
    ...(server
      ? [
          sudo('sh', [
            '-c',
            "mkdir -p /etc/postgresql-common && { grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf || echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf; }",
          ]),
        ]
      : []),
    sudo('env', [
      'DEBIAN_FRONTEND=noninteractive',
      'apt-get',
      'install',
      '-y',
      '-qq',
      '--no-install-recommends',
      server ? `postgresql-${major}` : `postgresql-client-${major}`,
    ]),
  ];
}

/** Reads the release codename; null where there is no Debian/Ubuntu apt to use. */
export async function detectInstallContext(): Promise<InstallContext | null> {
  if (process.platform !== 'linux') return null;
  let osRelease: string;
  try {
    osRelease = await readFile('/etc/os-release', 'utf8');
  } catch {
    return null;
  }
  const codename = /^VERSION_CODENAME=("?)([a-z]+)\1$/m.exec(osRelease)?.[2];
  const apt = await execa('apt-get', ['--version'], {
    reject: false,
    env: childEnv(),
    extendEnv: false,
  });
  if (!codename || apt.exitCode !== 0) return null;
  return { codename, root: process.getuid?.() === 0 };
}

/** Runs the plan; throws with the failing command's last output lines. */
export async function installClient(
  major: number,
  log: (line: string) => void,
  ctx: InstallContext | null = null,
  server = false,
): Promise<void> {
  const context = ctx ?? (await detectInstallContext());
  if (!context)
    throw new Error(
      "'install-client' needs a Debian or Ubuntu runner with apt-get; install the PostgreSQL client yourself and set 'pg-bin-dir'.",
    );
  for (const [file, args] of installClientPlan(major, context, server)) {
    log(`$ ${[file, ...args].join(' ')}`);
    const r = await execa(file, [...args], {
      reject: false,
      all: true,
      timeout: 300_000,
      env: childEnv(process.env, { DEBIAN_FRONTEND: 'noninteractive' }),
      extendEnv: false,
    });
    if (r.exitCode !== 0) {
      const tail = String(r.all ?? '')
        .trim()
        .split('\n')
        .slice(-5)
        .join(' | ');
      throw new Error(
        `Installing ${server ? 'postgresql' : 'postgresql-client'}-${major} failed at '${file} ${args[0] ?? ''}': ${tail}`,
      );
    }
  }
}
