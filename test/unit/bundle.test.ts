import { createReadStream, createWriteStream } from 'node:fs';
import {
  chmod,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { Header } from 'tar';
import { afterEach, describe, expect, it } from 'vitest';
import {
  collectConfigFiles,
  createBundleStream,
  DEFAULT_CONFIG_PATHS,
  extractBundle,
  isEnvFile,
  parseConfigPaths,
} from '../../src/bundle/index.js';
import { InputError } from '../../src/errors.js';
import { INPUT_SPECS } from '../../src/inputs/spec.generated.js';

const temporary: string[] = [];

async function tempDir(label: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), `pg-dr-bundle-${label}-`));
  temporary.push(dir);
  return dir;
}

afterEach(async () => {
  await Promise.all(temporary.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** Writes `files` (relative path → content) under `root`. */
async function writeTree(root: string, files: Record<string, string | Buffer>): Promise<void> {
  for (const [relative, content] of Object.entries(files)) {
    const file = path.join(root, relative);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
  }
}

/** Every regular file under `root`, as sorted relative POSIX paths. */
async function listFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)))
    .map((relative) => relative.split(path.sep).join('/'))
    .sort();
}

function expectConfigPathsError(pattern: string): void {
  let caught: unknown;
  try {
    parseConfigPaths(`docker-compose.yml\n  ${pattern}  \n`);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(InputError);
  const error = caught as InputError;
  expect(error.input).toBe('config-paths');
  expect(error.message).toContain(`Invalid 'config-paths': ${JSON.stringify(pattern)}. Expected`);
}

/** A platform checkout: what should be bundled, and what must not be. */
const PLATFORM: Record<string, string | Buffer> = {
  'docker-compose.yml': 'services: {}\n',
  'compose.prod.yaml': 'services:\n  api: {}\n',
  'services/api/Dockerfile': 'FROM node:24\n',
  'services/api/Dockerfile.dev': 'FROM node:24-slim\n',
  'services/worker/worker.Dockerfile': 'FROM alpine\n',
  '.dockerignore': 'node_modules\n',
  'services/api/.dockerignore': '.git\n',
  '.env.example': 'DATABASE_URL=\n',
  'services/api/api.env.example': 'PORT=\n',
  'deploy/deploy.sh': '#!/bin/sh\necho deploy\n',
  'deploy/k8s/app.yaml': 'kind: Deployment\n',
  'deploy/.hidden.conf': 'hidden=1\n',
  'deploy/payload.bin': Buffer.from([0, 1, 2, 255, 254, 0, 10, 13]),
  // never bundled by default
  '.env': 'DATABASE_PASSWORD=hunter2\n',
  '.env.production': 'DATABASE_PASSWORD=prod\n',
  'deploy/.env': 'TOKEN=abc\n',
  'deploy/prod.env': 'TOKEN=def\n',
  'README.md': '# platform\n',
  'src/index.ts': 'export {};\n',
  '.git/compose.yml': 'not: config\n',
  '.git/deploy/x': 'x\n',
  'node_modules/pkg/docker-compose.yml': 'services: {}\n',
  'services/api/node_modules/dep/Dockerfile': 'FROM scratch\n',
  'deploy/node_modules/dep/index.js': '\n',
};

const DEFAULT_MATCHES = [
  '.dockerignore',
  '.env.example',
  'compose.prod.yaml',
  'deploy/.hidden.conf',
  'deploy/deploy.sh',
  'deploy/k8s/app.yaml',
  'deploy/payload.bin',
  'docker-compose.yml',
  'services/api/.dockerignore',
  'services/api/Dockerfile',
  'services/api/Dockerfile.dev',
  'services/api/api.env.example',
  'services/worker/worker.Dockerfile',
];

describe('parseConfigPaths', () => {
  it('reads one glob per line, trimmed, without blank lines and comments', () => {
    const text =
      '\n  # platform files\n docker-compose.yml \r\n\n./deploy/**\n!deploy/tmp/**\n# end\n';
    expect(parseConfigPaths(text)).toEqual(['docker-compose.yml', 'deploy/**', '!deploy/tmp/**']);
    expect(parseConfigPaths('  \n# nothing\n')).toEqual([]);
  });

  it('has defaults equal to the action.yml default of config-paths', () => {
    expect(parseConfigPaths(INPUT_SPECS['config-paths'].default)).toEqual([
      ...DEFAULT_CONFIG_PATHS,
    ]);
  });

  it.each([
    '../etc/*',
    'deploy/../../etc/passwd',
    '..',
    '{..,x}/etc/*',
    '/etc/passwd',
    '!/etc/*',
    '\\\\server\\share\\*',
    'C:/Windows/*',
    '~/.ssh/*',
    'deploy/[abc',
    'deploy/{a,b',
    'deploy/a,b}',
    'deploy/@(a|b',
    '!',
  ])('rejects %j naming config-paths', (pattern) => {
    expectConfigPathsError(pattern);
  });

  it('accepts globs that only look odd', () => {
    expect(parseConfigPaths('deploy/[!.]*\ndeploy/{a,b}/**\nv1..2/*\ndeploy/x]')).toEqual([
      'deploy/[!.]*',
      'deploy/{a,b}/**',
      'v1..2/*',
      'deploy/x]',
    ]);
  });
});

describe('isEnvFile', () => {
  it('tells env files from env templates', () => {
    for (const name of ['.env', '.env.production', '.env.local', 'prod.env', '.ENV']) {
      expect(isEnvFile(name), name).toBe(true);
    }
    for (const name of [
      '.env.example',
      'api.env.example',
      '.env.sample',
      '.env.template',
      'environment.yml',
      'envoy.yaml',
    ]) {
      expect(isEnvFile(name), name).toBe(false);
    }
  });
});

describe('collectConfigFiles', () => {
  it('picks compose, Dockerfile, .dockerignore, env templates and deploy/ files by default', async () => {
    const workspace = await tempDir('ws');
    await writeTree(workspace, PLATFORM);
    expect(await collectConfigFiles(workspace, DEFAULT_CONFIG_PATHS)).toEqual(DEFAULT_MATCHES);
  });

  it('never takes .env files through wildcards, and takes them when a glob names them', async () => {
    const workspace = await tempDir('ws');
    await writeTree(workspace, PLATFORM);

    const everything = await collectConfigFiles(workspace, ['**', '**/*']);
    expect(everything).not.toContain('.env');
    expect(everything).not.toContain('.env.production');
    expect(everything).not.toContain('deploy/.env');
    expect(everything).not.toContain('deploy/prod.env');
    expect(everything).toContain('.env.example');
    expect(everything.some((file) => file.startsWith('.git/'))).toBe(false);
    expect(everything.some((file) => file.includes('node_modules/'))).toBe(false);

    const named = await collectConfigFiles(workspace, [...DEFAULT_CONFIG_PATHS, '.env.production']);
    expect(named).toEqual([...DEFAULT_MATCHES, '.env.production'].sort());

    // `*` also matches nothing, so `*.env` names `.env` as well.
    expect(await collectConfigFiles(workspace, ['deploy/*.env'])).toEqual([
      'deploy/.env',
      'deploy/prod.env',
    ]);
    expect(await collectConfigFiles(workspace, ['deploy/prod.env'])).toEqual(['deploy/prod.env']);
  });

  it('applies ! exclusions and returns [] when nothing matches', async () => {
    const workspace = await tempDir('ws');
    await writeTree(workspace, PLATFORM);
    expect(await collectConfigFiles(workspace, ['deploy/**', '!deploy/k8s/**'])).toEqual([
      'deploy/.hidden.conf',
      'deploy/deploy.sh',
      'deploy/payload.bin',
    ]);
    expect(await collectConfigFiles(workspace, ['nothing/**', '*.none'])).toEqual([]);
    expect(await collectConfigFiles(workspace, [])).toEqual([]);
  });

  it('keeps symlinks to files inside the workspace and skips those that lead out', async () => {
    const outside = await tempDir('outside');
    await writeTree(outside, { 'secret.txt': 'do not bundle\n', 'dir/compose.yml': 'x\n' });
    const workspace = await tempDir('ws');
    await writeTree(workspace, { 'docker-compose.yml': 'services: {}\n', '.env': 'S=1\n' });
    await mkdir(path.join(workspace, 'deploy'));
    await symlink('../docker-compose.yml', path.join(workspace, 'deploy/compose-link.yml'));
    await symlink(path.join(outside, 'secret.txt'), path.join(workspace, 'deploy/secret.txt'));
    await symlink(path.join(outside, 'dir'), path.join(workspace, 'deploy/outside-dir'));
    await symlink('..', path.join(workspace, 'deploy/loop'));
    await symlink('../.env', path.join(workspace, 'deploy/app.conf'));
    await symlink('missing', path.join(workspace, 'deploy/dangling'));

    expect(await collectConfigFiles(workspace, ['deploy/**', '**/compose*.yml'])).toEqual([
      'deploy/compose-link.yml',
    ]);
  });

  it('rejects a workspace that does not exist, naming config-paths', async () => {
    const missing = path.join(await tempDir('gone'), 'no-such-checkout');
    const failure = collectConfigFiles(missing, DEFAULT_CONFIG_PATHS);
    await expect(failure).rejects.toBeInstanceOf(InputError);
    await expect(failure).rejects.toMatchObject({ input: 'config-paths' });
    await expect(failure).rejects.toThrow(/workspace ".*no-such-checkout" does not exist/);
  });

  it('rejects unsafe patterns given directly', async () => {
    const workspace = await tempDir('ws');
    await expect(collectConfigFiles(workspace, ['../*'])).rejects.toMatchObject({
      input: 'config-paths',
    });
  });
});

describe('createBundleStream and extractBundle', () => {
  async function buildBundle(): Promise<{ workspace: string; files: string[]; bundle: string }> {
    const workspace = await tempDir('ws');
    await writeTree(workspace, PLATFORM);
    await writeTree(workspace, { [`deploy/long/${'n'.repeat(120)}/@at-sign.yml`]: 'a: 1\n' });
    await chmod(path.join(workspace, 'deploy/deploy.sh'), 0o755);
    const files = await collectConfigFiles(workspace, DEFAULT_CONFIG_PATHS);
    const bundle = path.join(await tempDir('out'), 'config.tar.gz');
    await pipeline(createBundleStream(workspace, files), createWriteStream(bundle));
    return { workspace, files, bundle };
  }

  async function expectSameContents(files: string[], from: string, to: string): Promise<void> {
    for (const file of files) {
      const original = await readFile(path.join(from, file));
      const restored = await readFile(path.join(to, file));
      expect(restored.equals(original), file).toBe(true);
    }
  }

  it('round-trips through extractBundle with identical files, bytes and modes', async () => {
    const { workspace, files, bundle } = await buildBundle();
    expect(files.length).toBe(DEFAULT_MATCHES.length + 1);
    expect((await readFile(bundle)).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));

    const target = path.join(await tempDir('restore'), 'config');
    const extracted = await extractBundle(createReadStream(bundle), target);
    expect(extracted).toEqual(files);
    expect(await listFiles(target)).toEqual(files);
    await expectSameContents(files, workspace, target);
    expect((await stat(path.join(target, 'deploy/deploy.sh'))).mode & 0o777).toBe(0o755);
  });

  it('round-trips through the system tar -xzf', async () => {
    const { workspace, files, bundle } = await buildBundle();
    const target = await tempDir('gnutar');
    await execa('tar', ['-xzf', bundle, '-C', target]);
    expect(await listFiles(target)).toEqual(files);
    await expectSameContents(files, workspace, target);
    const listing = await execa('tar', ['-tzf', bundle]);
    expect(listing.stdout.split('\n')).toEqual(files);
  });

  it('stores a symlinked file as its content', async () => {
    const workspace = await tempDir('ws');
    await writeTree(workspace, { 'docker-compose.yml': 'services: {}\n' });
    await mkdir(path.join(workspace, 'deploy'));
    await symlink('../docker-compose.yml', path.join(workspace, 'deploy/compose.yml'));
    const files = await collectConfigFiles(workspace, DEFAULT_CONFIG_PATHS);
    const target = await tempDir('restore');
    expect(await extractBundle(createBundleStream(workspace, files), target)).toEqual(files);
    expect(await readFile(path.join(target, 'deploy/compose.yml'), 'utf8')).toBe('services: {}\n');
  });

  it('refuses a bundle that would write more than its bounds, and leaves nothing', async () => {
    const workspace = await tempDir('ws');
    await writeTree(workspace, { 'deploy/big.bin': Buffer.alloc(2 * 1024 * 1024, 7) });
    const files = await collectConfigFiles(workspace, DEFAULT_CONFIG_PATHS);
    const target = path.join(await tempDir('restore'), 'config');
    await expect(
      extractBundle(createBundleStream(workspace, files), target, {
        maxBytes: 1024 * 1024,
        maxEntries: 10,
      }),
    ).rejects.toThrow(/would write more than 1048576 bytes/);
    await expect(readdir(target)).rejects.toThrow(/ENOENT/);
    // Within the bounds, the same bundle extracts.
    expect(
      await extractBundle(createBundleStream(workspace, files), target, {
        maxBytes: 4 * 1024 * 1024,
        maxEntries: 10,
      }),
    ).toEqual(files);
  });

  it('bundles and extracts an empty file list', async () => {
    const workspace = await tempDir('ws');
    const target = await tempDir('restore');
    expect(await extractBundle(createBundleStream(workspace, []), target)).toEqual([]);
    expect(await readdir(target)).toEqual([]);
  });

  it('errors the stream when a listed file is gone', async () => {
    const workspace = await tempDir('ws');
    const sink = path.join(await tempDir('out'), 'config.tar.gz');
    await expect(
      pipeline(createBundleStream(workspace, ['missing.yml']), createWriteStream(sink)),
    ).rejects.toThrow(/ENOENT|missing\.yml/);
  });

  it('refuses to bundle paths outside the workspace', () => {
    expect(() => createBundleStream('/tmp', ['../etc/passwd'])).toThrow(/'\.\.' segment/);
    expect(() => createBundleStream('/tmp', ['/etc/passwd'])).toThrow(/absolute path/);
  });
});

describe('extractBundle on hostile or broken input', () => {
  type Entry = {
    path: string;
    content?: string;
    type?: 'File' | 'SymbolicLink';
    linkpath?: string;
  };

  /** A gzip'd tar written header by header, so it can hold what node-tar would refuse to pack. */
  function rawTarball(entries: readonly Entry[]): Buffer {
    const blocks: Buffer[] = [];
    for (const entry of entries) {
      const body = Buffer.from(entry.content ?? '');
      const header = new Header({
        path: entry.path,
        type: entry.type ?? 'File',
        mode: 0o644,
        size: entry.type === 'SymbolicLink' ? 0 : body.length,
        mtime: new Date('2026-01-01T00:00:00Z'),
        ...(entry.linkpath === undefined ? {} : { linkpath: entry.linkpath }),
      });
      header.encode();
      if (header.block === undefined) throw new Error('header did not encode');
      blocks.push(header.block);
      if (entry.type !== 'SymbolicLink' && body.length > 0) {
        blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
      }
    }
    blocks.push(Buffer.alloc(1024));
    return gzipSync(Buffer.concat(blocks));
  }

  async function expectRefused(entries: readonly Entry[], pattern: RegExp): Promise<void> {
    const parent = await tempDir('hostile');
    const target = path.join(parent, 'config');
    await mkdir(target);
    await writeFile(path.join(target, 'existing.txt'), 'keep me\n');
    await expect(extractBundle(Readable.from([rawTarball(entries)]), target)).rejects.toThrow(
      pattern,
    );
    // Nothing written: not the good entries before the bad one, nothing outside.
    expect(await readdir(parent)).toEqual(['config']);
    expect(await readdir(target)).toEqual(['existing.txt']);
    expect(await readFile(path.join(target, 'existing.txt'), 'utf8')).toBe('keep me\n');
  }

  it('refuses an entry escaping with ../', async () => {
    await expectRefused(
      [
        { path: 'deploy/ok.sh', content: 'fine\n' },
        { path: '../evil', content: 'pwned\n' },
      ],
      /Refusing to extract.*"\.\.\/evil" has a '\.\.' segment/,
    );
  });

  it('refuses an entry with .. in the middle of its path', async () => {
    await expectRefused(
      [{ path: 'deploy/../../evil', content: 'pwned\n' }],
      /has a '\.\.' segment/,
    );
  });

  it('refuses an absolute entry', async () => {
    await expectRefused([{ path: '/tmp/evil', content: 'pwned\n' }], /has an absolute path/);
  });

  it('refuses links, such as one pointing out of the folder', async () => {
    await expectRefused(
      [
        { path: 'deploy/ok.sh', content: 'fine\n' },
        { path: 'deploy/etc', type: 'SymbolicLink', linkpath: '/etc' },
        { path: 'deploy/etc/evil', content: 'pwned\n' },
      ],
      /"deploy\/etc" is a link/,
    );
  });

  it('refuses a truncated bundle without writing anything', async () => {
    const whole = rawTarball([{ path: 'deploy/big.txt', content: 'x'.repeat(100_000) }]);
    const parent = await tempDir('truncated');
    const target = path.join(parent, 'config');
    await expect(
      extractBundle(Readable.from([whole.subarray(0, Math.floor(whole.length / 2))]), target),
    ).rejects.toThrow();
    expect(await readdir(parent)).toEqual([]);
  });

  it('fails with the error of the stream it reads', async () => {
    const target = path.join(await tempDir('broken'), 'config');
    const source = new Readable({
      read() {
        this.destroy(new Error('download interrupted'));
      },
    });
    await expect(extractBundle(source, target)).rejects.toThrow('download interrupted');
  });

  it('refuses to write through a symlinked folder already in the target', async () => {
    const outside = await tempDir('outside');
    const target = await tempDir('restore');
    await symlink(outside, path.join(target, 'deploy'));
    await expect(
      extractBundle(Readable.from([rawTarball([{ path: 'deploy/evil', content: 'x\n' }])]), target),
    ).rejects.toThrow(/"deploy" already exists and is not a folder/);
    expect(await readdir(outside)).toEqual([]);
  });
});
