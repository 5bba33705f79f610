import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import { Octokit } from '@octokit/rest';
import Bottleneck from 'bottleneck/light.js';
import { VERSION } from '../version.js';

/** The Octokit every part of pg-dr uses: REST methods, retries and rate-limit handling. */
const PgDrOctokit = Octokit.plugin(retry, throttling);
export type GitHubClient = InstanceType<typeof PgDrOctokit>;

export const DEFAULT_API_URL = 'https://api.github.com';

export interface GitHubClientOptions {
  /** A token with `issues: write` (alerts) and `actions: read` (run history). */
  token: string;
  /** REST API root: `GITHUB_API_URL` on GitHub Enterprise Server; default api.github.com. */
  baseUrl?: string | undefined;
  /** Retries after a 5xx, a network error or a rate limit (default 3). */
  retries?: number;
  /** Unit of the back-off: retry n waits n² × this (default 1000 ms). Tests use 1. */
  retryBaseMs?: number;
  /** Each HTTP request is aborted after this long (default 30 s); a timeout is retried. */
  timeoutMs?: number;
  /** A rate limit whose reset is further away than this is not waited for (default 60 s). */
  maxRateLimitWaitSeconds?: number;
  /**
   * Texts that must never leave in a request (the token is always one): a request whose
   * parameters contain one is refused before it is sent.
   */
  secrets?: readonly string[];
  /**
   * Space out writes as GitHub asks of integrations (1 s between writes, 3 s between new
   * issues and comments). Default true; tests turn it off to run fast.
   */
  paceWrites?: boolean;
  /** Where warnings go (rate limits, deprecations). Default: dropped. */
  log?: (message: string) => void;
}

/** Thrown (before sending) for a request whose title, body or other parameter holds a secret. */
export class SecretInRequestError extends Error {
  override readonly name = 'SecretInRequestError';
  constructor(route: string) {
    super(
      `Refused to send ${route}: its text contains the GitHub token or another secret. Nothing was posted.`,
    );
  }
}

/** Secrets this short are too likely to occur by chance to act on. */
const MIN_SECRET_LENGTH = 6;

/**
 * THE one place a GitHub client is built. Retries 5xx and network errors a few times
 * with back-off, waits out short rate limits (primary and secondary) a few times,
 * aborts hung requests, and refuses to send any request carrying the token in its text.
 */
export function createGitHubClient(opts: GitHubClientOptions): GitHubClient {
  const retries = opts.retries ?? 3;
  const retryBaseMs = opts.retryBaseMs ?? 1000;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const maxWait = opts.maxRateLimitWaitSeconds ?? 60;
  const log = opts.log ?? (() => {});
  const secrets = [opts.token, ...(opts.secrets ?? [])].filter(
    (s) => s.length >= MIN_SECRET_LENGTH,
  );

  const onLimit =
    (kind: string) =>
    (retryAfter: number, options: { method: string; url: string }, _o: unknown, count: number) => {
      const again = count < retries && retryAfter <= maxWait;
      log(
        `GitHub API ${kind} on ${options.method} ${options.url}: ${
          again ? `retrying in ${retryAfter} s (${count + 1}/${retries})` : 'giving up'
        }.`,
      );
      return again;
    };

  const client = new PgDrOctokit({
    auth: opts.token,
    baseUrl: (opts.baseUrl || DEFAULT_API_URL).replace(/\/+$/, ''),
    userAgent: `pg-dr/${VERSION}`,
    log: { debug: () => {}, info: () => {}, warn: log, error: () => {} },
    request: { fetch: fetchWithTimeout(timeoutMs) },
    retry: { retries, retryAfterBaseValue: retryBaseMs },
    throttle: {
      retryAfterBaseValue: retryBaseMs,
      fallbackSecondaryRateRetryAfter: 60,
      onRateLimit: onLimit('rate limit'),
      onSecondaryRateLimit: onLimit('secondary rate limit'),
      ...(opts.paceWrites === false ? unpaced() : {}),
    },
  });

  client.hook.before('request', (options) => {
    const { headers: _h, request: _r, baseUrl: _b, ...params } = options;
    const text = JSON.stringify(params);
    if (secrets.some((s) => text.includes(s) || text.includes(JSON.stringify(s).slice(1, -1))))
      throw new SecretInRequestError(`${options.method} ${options.url}`);
  });
  return client;
}

/** Limiter groups without the write spacing (the plugin's defaults are process-wide). */
function unpaced(): Record<'write' | 'notifications' | 'search', Bottleneck.Group> {
  const group = () => new Bottleneck.Group({ maxConcurrent: 1, minTime: 0 });
  return { write: group(), notifications: group(), search: group() };
}

/** `fetch` that gives up after `timeoutMs` (as a retryable network error), honouring any caller signal. */
function fetchWithTimeout(timeoutMs: number): typeof fetch {
  return (input, init) => {
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    return fetch(input, { ...init, signal });
  };
}

/** `owner` and `repo` from `GITHUB_REPOSITORY` ("owner/name"); null when unset or malformed. */
export function parseRepository(env: NodeJS.ProcessEnv): { owner: string; repo: string } | null {
  const m = /^([^/\s]+)\/([^/\s]+)$/.exec((env.GITHUB_REPOSITORY ?? '').trim());
  if (m === null || m[1] === undefined || m[2] === undefined) return null;
  return { owner: m[1], repo: m[2] };
}

/** The REST API root: `GITHUB_API_URL` when set (GitHub Enterprise Server), else api.github.com. */
export function apiUrlFromEnv(env: NodeJS.ProcessEnv): string {
  const url = (env.GITHUB_API_URL ?? '').trim();
  return url === '' ? DEFAULT_API_URL : url.replace(/\/+$/, '');
}
