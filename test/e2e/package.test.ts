// The npm package as a user gets it: `npm pack` of this checkout, installed into an empty
// directory with no network (the CLI is one bundle: the package has no dependencies), then
// run through its `bin`. And the release check the release workflow runs.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../harness/fixtures.js';
import { REPO_ROOT, requireBuilt } from '../harness/node.js';

let work: string;
let tarball: string;
let files: string[];

beforeAll(async () => {
  requireBuilt('dist/cli/index.js');
  work = await tempDir('e2e-package');
  const packed = await execa(
    'npm',
    ['pack', '--json', '--pack-destination', work, '--ignore-scripts'],
    { cwd: REPO_ROOT },
  );
  const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
  tarball = join(work, info?.filename ?? '');
  files = (info?.files ?? []).map((f) => f.path).sort();
}, 120_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the npm package', () => {
  it('holds the CLI bundle, its licences and the docs a user reads; nothing else', () => {
    // The action's own bundle (dist/index.js) runs from the repository, never from npm.
    // ncc names its one lazy chunk by a module id, which moves as the source does.
    const chunks = files.filter((f) => /^dist\/cli\/\d+\.index\.js$/.test(f));
    expect(chunks).toHaveLength(1);
    expect(files).toEqual(
      [
        'CHANGELOG.md',
        'LICENSE',
        'README.md',
        chunks[0],
        'dist/cli/index.js',
        'dist/cli/licenses.txt',
        'dist/cli/package.json',
        'package.json',
      ].filter((f) => f !== 'LICENSE' || files.includes('LICENSE')),
    );
  });

  it('installs into an empty directory offline and runs its CLI', async () => {
    const home = join(work, 'user');
    await mkdir(home);
    await execa(
      'npm',
      ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball],
      { cwd: home, env: { npm_config_cache: join(work, 'npm-cache') } },
    );
    const bin = join(home, 'node_modules', '.bin', 'pg-dr');
    const help = await execa(bin, ['--help'], { cwd: home, reject: false });
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toMatch(/^Usage: pg-dr <command>/);
    const { version } = (await import('../../package.json', { with: { type: 'json' } })).default;
    const v = await execa(bin, ['--version'], { cwd: home, reject: false });
    expect(v.exitCode).toBe(0);
    expect(v.stdout.trim()).toBe(`pg-dr ${version}`);
    const backupHelp = await execa(bin, ['backup', '--help'], { cwd: home, reject: false });
    expect(backupHelp.exitCode).toBe(0);
    expect(backupHelp.stdout).toMatch(/^Usage: pg-dr backup /);
    expect(backupHelp.stdout).toMatch(/^Required:\n {2}--primary-endpoint/m);
    // A real run of the installed CLI: a usage error names the input and exits non-zero.
    const bad = await execa(bin, ['list', '--prefix=../x'], { cwd: home, reject: false });
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toMatch(/primary-endpoint|prefix/);
  });
});

describe('the release check (scripts/release-check.mjs)', () => {
  const check = (tag: string) =>
    execa('node', ['scripts/release-check.mjs', tag], { cwd: REPO_ROOT, reject: false });

  it("prints the CHANGELOG section of package.json's version as the release notes", async () => {
    const { version } = (await import('../../package.json', { with: { type: 'json' } })).default;
    const r = await check(`v${version}`);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.length).toBeGreaterThan(50);
    expect(r.stdout).not.toMatch(/^## /m);
  });

  it('refuses a tag that is not the version, or not vX.Y.Z, naming the fix', async () => {
    const other = await check('v99.0.0');
    expect(other.exitCode).toBe(1);
    expect(other.stderr).toMatch(
      /package\.json says .*, the tag v99\.0\.0: set "version": "99\.0\.0"/,
    );
    const malformed = await check('release-1');
    expect(malformed.exitCode).toBe(1);
    expect(malformed.stderr).toContain('is not vMAJOR.MINOR.PATCH');
  });
});
