import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A Node.js binary to run the built bundle with. */
export interface NodeBinary {
  /** `node20`, `node24`, …: the major version, for test names. */
  readonly label: string;
  /** Absolute path of the executable. */
  readonly path: string;
}

/** The repository root (this file is `test/harness/node.ts`). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where `scripts/ensure-node24.sh` installs Node 24, most stable first. */
const NODE24_CANDIDATES = [
  '.cache/node24/bin/node',
  '.cache/node24/node_modules/node/bin/node',
  `.cache/node24/node_modules/node-${process.platform}-${process.arch}/bin/node`,
] as const;

const INSTALL_HINT = 'run `bash scripts/ensure-node24.sh` (it installs Node 24 into .cache/node24)';

function versionOf(path: string): string | undefined {
  const r = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function label(version: string): string {
  return `node${version.replace(/^v/, '').split('.')[0] ?? ''}`;
}

/** The Node 24 binary in `.cache/node24`, when one is there and really is Node 24. */
export function findNode24(root = REPO_ROOT): string | undefined {
  for (const candidate of NODE24_CANDIDATES) {
    const path = join(root, candidate);
    if (existsSync(path) && versionOf(path)?.startsWith('v24.')) return path;
  }
  return undefined;
}

/**
 * Why the Node 24 runs are skipped on this machine, or undefined when they are not.
 * Throws under CI (`CI` set): CI must test the runtime action.yml declares.
 */
export function node24SkipNote(): string | undefined {
  if (process.version.startsWith('v24.') || findNode24() !== undefined) return undefined;
  const ci = process.env.CI ?? '';
  if (ci !== '' && ci !== 'false' && ci !== '0')
    throw new Error(
      `CI is set but no Node 24 binary was found in .cache/node24: ${INSTALL_HINT}. ` +
        'action.yml declares `runs.using: node24`, so CI must run the bundle on Node 24.',
    );
  return `Node 24 is not installed here, so dist/ is only run on ${process.version}: ${INSTALL_HINT}.`;
}

/**
 * The Node binaries the built bundle is run with: the one running the tests
 * (`process.execPath`, Node 20 here) and the Node 24 of `.cache/node24` when present.
 * Without Node 24: throws under CI, otherwise returns the current Node only (see
 * `node24SkipNote()` for the note the tests print).
 */
export function nodeBinaries(): NodeBinary[] {
  const current: NodeBinary = { label: label(process.version), path: process.execPath };
  if (process.version.startsWith('v24.')) return [current];
  node24SkipNote(); // throws under CI when Node 24 is missing
  const node24 = findNode24();
  return node24 === undefined ? [current] : [current, { label: 'node24', path: node24 }];
}

/**
 * The absolute path of a built file (`dist/index.js`, `dist/cli/index.js`). The tests run
 * the bundle as committed and never build it: a missing one fails with what to do.
 */
export function requireBuilt(relativePath: string): string {
  const path = join(REPO_ROOT, relativePath);
  if (!existsSync(path))
    throw new Error(
      `${relativePath} is missing. The e2e tests run the committed bundle and never build it: ` +
        'run `npm run package` first.',
    );
  return path;
}
