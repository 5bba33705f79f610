import { execa } from 'execa';
import { childEnv } from '../child-env.js';

/** Where a backup came from. Every field is null when it cannot be known. */
export interface SourceInfo {
  /** `owner/name` of the platform repository (or a credential-free remote when not GitHub-shaped). */
  repository: string | null;
  /** Full commit SHA checked out. */
  commit: string | null;
  /** Full ref, e.g. `refs/heads/main` or `refs/tags/v1.2.0`. */
  ref: string | null;
  /** Name of the GitHub Actions workflow. */
  workflow: string | null;
  /** GitHub Actions run id. */
  runId: string | null;
  /** GitHub Actions run attempt (1 for the first). */
  runAttempt: string | null;
  /** Link to the GitHub Actions run. */
  runUrl: string | null;
  /** GitHub user who triggered the run. */
  actor: string | null;
}

const GIT_TIMEOUT_MS = 10_000;

/**
 * Describes where this run comes from: from the GITHUB_* variables inside GitHub
 * Actions, otherwise from the git checkout at `cwd`. Never throws for a missing git,
 * a folder that is not a repository or a repository without commits or remote: the
 * fields it cannot read are null. Credentials in a remote URL never come out.
 */
export async function describeSource(env: NodeJS.ProcessEnv, cwd: string): Promise<SourceInfo> {
  if (env.GITHUB_ACTIONS === 'true') return fromGitHubEnv(env);
  return fromGit(env, cwd);
}

function fromGitHubEnv(env: NodeJS.ProcessEnv): SourceInfo {
  const repository = present(env.GITHUB_REPOSITORY);
  const runId = present(env.GITHUB_RUN_ID);
  const server = sanitizeUrl(present(env.GITHUB_SERVER_URL) ?? '');
  return {
    repository,
    commit: present(env.GITHUB_SHA),
    ref: present(env.GITHUB_REF),
    workflow: present(env.GITHUB_WORKFLOW),
    runId,
    runAttempt: present(env.GITHUB_RUN_ATTEMPT),
    runUrl:
      server !== null && repository !== null && runId !== null
        ? `${server.replace(/\/+$/, '')}/${repository}/actions/runs/${runId}`
        : null,
    actor: present(env.GITHUB_ACTOR),
  };
}

async function fromGit(env: NodeJS.ProcessEnv, cwd: string): Promise<SourceInfo> {
  const [head, branch, remote] = await Promise.all([
    git(env, cwd, ['rev-parse', '--verify', '-q', 'HEAD']),
    git(env, cwd, ['symbolic-ref', '-q', 'HEAD']),
    git(env, cwd, ['remote', 'get-url', 'origin']),
  ]);
  const commit = head !== null && /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/.test(head) ? head : null;
  let ref = branch?.startsWith('refs/') ? branch : null;
  if (ref === null && commit !== null) {
    // Detached HEAD (CI checkouts, `git checkout v1.2.0`): name it by a tag on this commit.
    const tag = await git(env, cwd, ['describe', '--tags', '--exact-match', 'HEAD']);
    ref = tag !== null ? `refs/tags/${tag}` : null;
  }
  return {
    repository: remote !== null ? repositoryFromRemote(remote) : null,
    commit,
    ref,
    workflow: null,
    runId: null,
    runAttempt: null,
    runUrl: null,
    actor: null,
  };
}

/** Trimmed stdout of a successful git command, or null for any failure (no git, not a repo, …). */
async function git(
  env: NodeJS.ProcessEnv,
  cwd: string,
  args: readonly string[],
): Promise<string | null> {
  try {
    const result = await execa('git', args, {
      cwd,
      env: childEnv(env, { GIT_TERMINAL_PROMPT: '0', GIT_OPTIONAL_LOCKS: '0', LC_ALL: 'C' }),
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
      timeout: GIT_TIMEOUT_MS,
    });
    if (result.failed || result.exitCode !== 0) return null;
    return present(result.stdout.trim());
  } catch {
    return null;
  }
}

/**
 * `owner/name` for a remote whose path has two segments (`https://github.com/o/n.git`,
 * `git@github.com:o/n.git`, `ssh://git@ghe.example.com/o/n`), else the remote with
 * user, password, query and fragment removed (`gitlab.com/group/sub/name`), else
 * null. Never returns credentials.
 */
export function repositoryFromRemote(remote: string): string | null {
  const text = remote.trim();
  if (text === '') return null;
  let host: string;
  let repoPath: string;
  const scpLike = /^(?:[^@/]+@)?([^:/]+):(?!\/)(.+)$/.exec(text);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return null;
    }
    host = url.protocol === 'file:' ? '' : url.host;
    repoPath = decodeURIComponentSafe(url.pathname);
  } else if (scpLike !== null && !/^[A-Za-z]$/.test(scpLike[1] ?? '')) {
    host = scpLike[1] ?? '';
    repoPath = scpLike[2] ?? '';
  } else {
    host = ''; // a local path
    repoPath = text;
  }
  const segments = repoPath
    .replace(/\.git\/?$/, '')
    .split('/')
    .filter((segment) => segment !== '');
  if (host !== '' && segments.length === 2) return segments.join('/');
  if (segments.length === 0) return null;
  const cleanPath = segments.join('/');
  return host === ''
    ? `${repoPath.startsWith('/') ? '/' : ''}${cleanPath}`
    : `${host}/${cleanPath}`;
}

/** A URL without user, password, query or fragment; null when it does not parse. */
function sanitizeUrl(text: string): string | null {
  if (text === '') return null;
  try {
    const url = new URL(text);
    url.username = '';
    url.password = '';
    url.search = '';
    url.hash = '';
    return url.toString().replace(/\/+$/, '');
  } catch {
    return null;
  }
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function present(value: string | undefined): string | null {
  return value === undefined || value === '' ? null : value;
}
