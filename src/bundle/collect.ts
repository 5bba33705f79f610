import { type PathLike, type Stats, stat as statCallback } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { type GlobOptions, glob } from 'tinyglobby';
import { InputError } from '../errors.js';
import { CONFIG_PATHS_INPUT, checkConfigPattern } from './paths.js';

/** Folders never bundled, at any depth, whatever the globs say. */
const NEVER_BUNDLED = ['.git', 'node_modules'] as const;

/** Suffixes that mark an env file as a template (no secrets), bundled like any file. */
const ENV_TEMPLATE = /\.(?:example|sample|template)$/;

/**
 * Lists the workspace files matched by `patterns` (see parseConfigPaths), as sorted,
 * relative POSIX paths of regular files. Zero matches is not an error.
 *
 * - Nothing under `.git/` or `node_modules/`, at any depth.
 * - Dotfiles match like any file.
 * - An env file (`.env`, `.env.*`, `*.env`, except `*.example`/`*.sample`/`*.template`
 *   templates) is included only when a glob names it: that glob's last segment
 *   contains `.env` (e.g. `.env.production`, `deploy/*.env`), never through `*` or `**`.
 * - A symlink to a file is included when its target is a regular file inside the
 *   workspace (and not itself an excluded file); symlinked folders are not walked.
 */
export async function collectConfigFiles(
  workspace: string,
  patterns: readonly string[],
): Promise<string[]> {
  const root = await resolveWorkspace(workspace);
  const checked = patterns.map(checkConfigPattern);
  const negations = checked.filter((p) => p.startsWith('!'));
  const positives = checked.filter((p) => !p.startsWith('!'));
  if (positives.length === 0) return [];

  const options: Omit<GlobOptions, 'patterns'> = {
    cwd: root,
    dot: true,
    onlyFiles: true,
    // Symlinks are resolved so that links to files are seen; `stat` below refuses
    // to report a linked folder, so no walk ever leaves the tree through a link.
    followSymbolicLinks: true,
    fs: { stat: statExceptDirectories as unknown as typeof statCallback },
    ignore: NEVER_BUNDLED.map((name) => `**/${name}/**`),
  };
  const candidates = await glob([...positives, ...negations], options);
  const envNamers = positives.filter(namesEnvFile);
  const namedEnvFiles = new Set(
    envNamers.length > 0 ? await glob([...envNamers, ...negations], options) : [],
  );

  const kept = await Promise.all(
    candidates.map(async (file) => ((await isBundleable(root, file, namedEnvFiles)) ? file : null)),
  );
  return kept.filter((file): file is string => file !== null).sort(compareStrings);
}

async function resolveWorkspace(workspace: string): Promise<string> {
  try {
    const root = await realpath(workspace);
    if ((await stat(root)).isDirectory()) return root;
  } catch {
    // reported below
  }
  throw new InputError(
    CONFIG_PATHS_INPUT,
    `Invalid '${CONFIG_PATHS_INPUT}': the workspace ${JSON.stringify(workspace)} does not exist or is not a folder. Expected the globs to be matched in a checked-out workspace (run actions/checkout first).`,
  );
}

async function isBundleable(
  root: string,
  file: string,
  namedEnvFiles: ReadonlySet<string>,
): Promise<boolean> {
  if (isNeverBundled(file)) return false;
  let real: string;
  try {
    real = await realpath(path.join(root, file));
    if (!(await stat(real)).isFile()) return false;
  } catch {
    return false; // vanished or a dangling link
  }
  const realRelative = path.relative(root, real);
  if (escapesRoot(realRelative)) return false; // a link out of the workspace
  const realPosix = realRelative.split(path.sep).join('/');
  if (isNeverBundled(realPosix)) return false;
  if (isEnvFile(path.posix.basename(file)) || isEnvFile(path.posix.basename(realPosix))) {
    return namedEnvFiles.has(file);
  }
  return true;
}

function escapesRoot(relative: string): boolean {
  return relative === '..' || relative.startsWith(`..${path.sep}`) || path.isAbsolute(relative);
}

function isNeverBundled(relativePosix: string): boolean {
  const segments = relativePosix.split('/');
  return NEVER_BUNDLED.some((name) => segments.includes(name));
}

/** `.env`, `.env.production`, `prod.env`; not `.env.example`, `app.env.sample`, … */
export function isEnvFile(basename: string): boolean {
  const name = basename.toLowerCase();
  const looksLikeEnv = name === '.env' || name.startsWith('.env.') || name.endsWith('.env');
  return looksLikeEnv && !ENV_TEMPLATE.test(name);
}

/** True when the glob's last segment spells out `.env`, so env files it matches were asked for. */
function namesEnvFile(pattern: string): boolean {
  const last = pattern.split('/').at(-1) ?? '';
  return last.toLowerCase().includes('.env');
}

/** fs.stat for the glob walker that reports a folder behind a symlink as an error, so it is skipped. */
function statExceptDirectories(
  target: PathLike,
  callback: (error: NodeJS.ErrnoException | null, stats?: Stats) => void,
): void {
  statCallback(target, (error, stats) => {
    if (error) {
      callback(error);
    } else if (stats.isDirectory()) {
      const skipped: NodeJS.ErrnoException = new Error(`Not following a symlink to a folder.`);
      skipped.code = 'EISDIR';
      callback(skipped);
    } else {
      callback(null, stats);
    }
  });
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
