import { execFile } from 'node:child_process';
import { access, constants, readdir, realpath } from 'node:fs/promises';
import { basename, delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { childEnv } from '../child-env.js';

const run = promisify(execFile);

/** One PostgreSQL client installation: a directory holding pg_dump and pg_restore. */
export interface ClientInstall {
  readonly binDir: string;
  /** e.g. 15 */
  readonly major: number;
  /** e.g. "15.18" */
  readonly version: string;
}

export type ClientTool =
  | 'pg_dump'
  | 'pg_restore'
  | 'pg_basebackup'
  | 'pg_verifybackup'
  | ServerTool;

/** Tools of the server package (postgresql-N), not of the client's: a restored data directory's start. */
export type ServerTool = 'pg_ctl';

export function isServerTool(tool: ClientTool): tool is ServerTool {
  return tool === 'pg_ctl';
}

export function toolPath(install: ClientInstall, tool: ClientTool): string {
  return join(install.binDir, tool);
}

/**
 * The folder `tool` really lives in (a PATH entry may hold a symlink to it): where the
 * programs that come with it are (pg_waldump beside pg_verifybackup, pg_controldata and
 * postgres beside pg_ctl).
 */
export async function realInstall(
  install: ClientInstall,
  tool: ClientTool,
): Promise<ClientInstall> {
  const real = await realpath(toolPath(install, tool)).catch(() => null);
  if (real !== null && basename(real) === tool) return { ...install, binDir: dirname(real) };
  // A link to a program of another name (Debian's pg_wrapper) is no folder of the tool's:
  // the major's own folder is, when it holds the tool.
  const own = join('/usr/lib/postgresql', String(install.major), 'bin');
  return (await isExecutable(join(own, tool))) ? { ...install, binDir: own } : install;
}

/**
 * Parses `pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)` → 15.18 / 15. Before
 * PostgreSQL 10 the major release had two parts: `9.6.24` → major 9.6.
 */
export function parseClientVersion(text: string): { version: string; major: number } | null {
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(text);
  if (!m) return null;
  const first = Number(m[1]);
  const version = [m[1], m[2], m[3]].filter((p) => p !== undefined).join('.');
  const major = first >= 10 ? first : Number(`${first}.${m[2] ?? 0}`);
  return { version, major };
}

/** `server_version_num` 150018 → "15.18" (major 15), 90624 → "9.6.24" (major 9.6). */
export function formatServerVersion(num: number): { version: string; major: number } {
  if (num >= 100000) {
    const major = Math.floor(num / 10000);
    return { version: `${major}.${num % 10000}`, major };
  }
  const major = Math.floor(num / 10000);
  const minor = Math.floor(num / 100) % 100;
  return { version: `${major}.${minor}.${num % 100}`, major: Number(`${major}.${minor}`) };
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Directories that may hold PostgreSQL clients, in order of preference for the same major. */
export async function candidateBinDirs(
  pgBinDir: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string[]> {
  const dirs: string[] = [];
  if (pgBinDir !== '') dirs.push(pgBinDir);
  for (const d of (env.PATH ?? '').split(delimiter)) if (d !== '') dirs.push(d);
  for (const root of ['/usr/lib/postgresql', '/usr/pgsql']) {
    try {
      const entries = await readdir(root);
      for (const e of entries.sort((a, b) => Number(b) - Number(a)))
        dirs.push(join(root, e, 'bin'));
    } catch {}
  }
  for (const d of ['/opt/homebrew/bin', '/usr/local/bin']) dirs.push(d);
  return [...new Set(dirs)];
}

/** Every distinct client installation found that has `tool`. */
export async function findClients(
  tool: ClientTool,
  pgBinDir = '',
  env: NodeJS.ProcessEnv = process.env,
): Promise<ClientInstall[]> {
  const found: ClientInstall[] = [];
  const seen = new Set<string>();
  for (const dir of await candidateBinDirs(pgBinDir, env)) {
    const path = join(dir, tool);
    if (!(await isExecutable(path))) continue;
    try {
      const { stdout } = await run(path, ['--version'], { timeout: 10_000, env: childEnv(env) });
      const v = parseClientVersion(stdout);
      if (!v) continue;
      const key = `${v.version}`;
      if (seen.has(key)) continue;
      seen.add(key);
      found.push({ binDir: dir, ...v });
    } catch {}
  }
  return found;
}

/**
 * Picks the client for a server of major `serverMajor`: the server's own major first,
 * then the oldest newer one (pg_dump reads older servers, never newer ones). Among
 * equals, the earlier directory (pg-bin-dir, then PATH) wins.
 */
export function selectClient(
  found: readonly ClientInstall[],
  serverMajor: number,
): ClientInstall | null {
  const usable = found.filter((c) => c.major >= serverMajor);
  if (usable.length === 0) return null;
  const best = Math.min(...usable.map((c) => c.major));
  return usable.find((c) => c.major === best) ?? null;
}
