import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { describeSource, repositoryFromRemote, type SourceInfo } from '../../src/source/index.js';

const temporary: string[] = [];

async function tempDir(label: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), `pg-dr-source-${label}-`));
  temporary.push(dir);
  return dir;
}

afterEach(async () => {
  await Promise.all(temporary.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** The environment of a local run: no GitHub Actions, and git never looks above the temp folder. */
function localEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, GIT_CEILING_DIRECTORIES: tmpdir() };
  delete env.GITHUB_ACTIONS;
  return env;
}

async function git(cwd: string, ...args: string[]): Promise<string> {
  const result = await execa(
    'git',
    ['-c', 'user.name=pg-dr test', '-c', 'user.email=test@example.com', ...args],
    { cwd, env: localEnv() },
  );
  return result.stdout.trim();
}

async function repoWithCommit(remote?: string): Promise<{ dir: string; commit: string }> {
  const dir = await tempDir('repo');
  await git(dir, 'init', '-q', '-b', 'main');
  await writeFile(path.join(dir, 'docker-compose.yml'), 'services: {}\n');
  await git(dir, 'add', '.');
  await git(dir, 'commit', '-q', '--no-gpg-sign', '-m', 'platform');
  if (remote !== undefined) await git(dir, 'remote', 'add', 'origin', remote);
  return { dir, commit: await git(dir, 'rev-parse', 'HEAD') };
}

const NOTHING: SourceInfo = {
  repository: null,
  commit: null,
  ref: null,
  workflow: null,
  runId: null,
  runAttempt: null,
  runUrl: null,
  actor: null,
};

describe('describeSource in GitHub Actions', () => {
  const actionsEnv: NodeJS.ProcessEnv = {
    GITHUB_ACTIONS: 'true',
    GITHUB_REPOSITORY: 'acme/platform',
    GITHUB_SHA: '0123456789abcdef0123456789abcdef01234567',
    GITHUB_REF: 'refs/heads/main',
    GITHUB_WORKFLOW: 'Disaster recovery backup',
    GITHUB_RUN_ID: '987654321',
    GITHUB_RUN_ATTEMPT: '2',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_ACTOR: 'octocat',
  };

  it('maps the GITHUB_* variables', async () => {
    // cwd is not a repository: in Actions the environment is the source of truth.
    expect(await describeSource(actionsEnv, await tempDir('empty'))).toEqual({
      repository: 'acme/platform',
      commit: '0123456789abcdef0123456789abcdef01234567',
      ref: 'refs/heads/main',
      workflow: 'Disaster recovery backup',
      runId: '987654321',
      runAttempt: '2',
      runUrl: 'https://github.com/acme/platform/actions/runs/987654321',
      actor: 'octocat',
    });
  });

  it('builds the run URL on GitHub Enterprise Server and leaves missing values null', async () => {
    const source = await describeSource(
      {
        GITHUB_ACTIONS: 'true',
        GITHUB_REPOSITORY: 'ops/platform',
        GITHUB_RUN_ID: '42',
        GITHUB_SERVER_URL: 'https://ghe.example.com/',
        GITHUB_ACTOR: '',
      },
      await tempDir('empty'),
    );
    expect(source).toEqual({
      ...NOTHING,
      repository: 'ops/platform',
      runId: '42',
      runUrl: 'https://ghe.example.com/ops/platform/actions/runs/42',
    });
  });

  it('has no run URL without a server URL or a run id', async () => {
    const { GITHUB_SERVER_URL: _server, ...withoutServer } = actionsEnv;
    expect((await describeSource(withoutServer, tmpdir())).runUrl).toBeNull();
    const { GITHUB_RUN_ID: _id, ...withoutRunId } = actionsEnv;
    expect((await describeSource(withoutRunId, tmpdir())).runUrl).toBeNull();
  });
});

describe('describeSource from git', () => {
  it('reads commit, branch and owner/name, and drops the credentials in the remote', async () => {
    const { dir, commit } = await repoWithCommit(
      'https://user:s3cr3t@github.com/acme/platform.git',
    );
    const source = await describeSource(localEnv(), dir);
    expect(source).toEqual({
      ...NOTHING,
      repository: 'acme/platform',
      commit,
      ref: 'refs/heads/main',
    });
    expect(commit).toMatch(/^[0-9a-f]{40}$/);
    const serialized = JSON.stringify(source);
    expect(serialized).not.toContain('s3cr3t');
    expect(serialized).not.toContain('user');
  });

  it('works from a subfolder and names a detached HEAD by its tag', async () => {
    const { dir, commit } = await repoWithCommit('git@github.com:acme/platform.git');
    await git(dir, 'tag', 'v1.2.0');
    await git(dir, 'checkout', '-q', '--detach', 'v1.2.0');
    const sub = path.join(dir, 'deploy');
    await mkdir(sub);
    expect(await describeSource(localEnv(), sub)).toEqual({
      ...NOTHING,
      repository: 'acme/platform',
      commit,
      ref: 'refs/tags/v1.2.0',
    });
  });

  it('leaves repository null without a remote and commit null before the first commit', async () => {
    const dir = await tempDir('fresh');
    await git(dir, 'init', '-q', '-b', 'main');
    expect(await describeSource(localEnv(), dir)).toEqual({ ...NOTHING, ref: 'refs/heads/main' });
  });

  it('gives nulls outside a repository', async () => {
    expect(await describeSource(localEnv(), await tempDir('plain'))).toEqual(NOTHING);
  });

  it('gives nulls for a folder that does not exist', async () => {
    const missing = path.join(await tempDir('gone'), 'nowhere');
    expect(await describeSource(localEnv(), missing)).toEqual(NOTHING);
  });

  it('gives nulls when there is no git binary', async () => {
    const { dir } = await repoWithCommit('https://github.com/acme/platform.git');
    const noGit = { ...localEnv(), PATH: await tempDir('empty-path') };
    expect(await describeSource(noGit, dir)).toEqual(NOTHING);
  });
});

describe('repositoryFromRemote', () => {
  it.each([
    ['https://github.com/acme/platform.git', 'acme/platform'],
    ['https://github.com/acme/platform', 'acme/platform'],
    ['https://github.com/acme/platform/', 'acme/platform'],
    ['https://x-access-token:ghs_abc123@github.com/acme/platform.git', 'acme/platform'],
    ['https://ghp_abc123@github.com/acme/platform.git', 'acme/platform'],
    ['http://user:pass@ghe.example.com:8443/ops/platform.git', 'ops/platform'],
    ['git@github.com:acme/platform.git', 'acme/platform'],
    ['github.com:acme/platform', 'acme/platform'],
    ['ssh://git@ghe.example.com:2222/ops/platform.git', 'ops/platform'],
    ['git://github.com/acme/platform.git', 'acme/platform'],
    [
      'https://oauth2:glpat-abc123@gitlab.com/group/sub/platform.git?x=1#f',
      'gitlab.com/group/sub/platform',
    ],
    ['/srv/git/platform.git', '/srv/git/platform'],
    ['', null],
    ['https://', null],
  ])('%j → %j', (remote, expected) => {
    const repository = repositoryFromRemote(remote);
    expect(repository).toBe(expected);
    for (const secret of ['ghs_abc123', 'ghp_abc123', 'pass', 'glpat-abc123', 'oauth2']) {
      expect(repository ?? '').not.toContain(secret);
    }
  });
});
