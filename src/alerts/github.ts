import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import { Octokit } from '@octokit/rest';
import Bottleneck from 'bottleneck/light.js';
import { VERSION } from '../version.js';
import { fetchWithin } from './deadline.js';

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
  /** Each HTTP request is aborted after this long (default 10 s); a timeout is retried. */
  timeoutMs?: number;
  /**
   * Once a request has failed with a 5xx, a network error or a timeout, the client gives
   * the API this long (counted from that request's start) before it stops trying for the
   * rest of its life (default 20 s). See {@link GitHubUnavailableError}.
   */
  outageBudgetMs?: number;
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

/**
 * Thrown instead of calling the API once the client has met an outage: a call failed
 * with a 5xx or a network error after its retries, or the API kept failing past the
 * outage budget. Every later call of the same client throws it at once, sending nothing;
 * the one warning was logged when the outage was met.
 */
export class GitHubUnavailableError extends Error {
  override readonly name = 'GitHubUnavailableError';
  constructor(readonly reason: string) {
    super(`GitHub API unavailable (${reason}); skipped.`);
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
  const timeoutMs = opts.timeoutMs ?? 10_000;
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

  const breaker = new OutageBreaker(opts.outageBudgetMs ?? 20_000, retries, log);
  const client = new PgDrOctokit({
    auth: opts.token,
    baseUrl: (opts.baseUrl || DEFAULT_API_URL).replace(/\/+$/, ''),
    userAgent: `pg-dr/${VERSION}`,
    log: { debug: () => {}, info: () => {}, warn: log, error: () => {} },
    request: { fetch: breaker.watch(timeoutMs) },
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
  // Registered after the plugins, so outside them: sees each call once, after its retries.
  client.hook.wrap('request', (request, options) =>
    breaker.call(`${options.method} ${routeOf(options.url)}`, async () => request(options)),
  );
  return client;
}

/**
 * One retry budget per client, not one per call: the first call that fails with a 5xx or
 * a network error past its retries, or a run of failures longer than the budget (hung
 * requests included), opens it; from then on every call throws
 * {@link GitHubUnavailableError} without a request, and one warning tells why.
 */
class OutageBreaker {
  private reason: string | null = null;
  /** Ends the budget: set while requests fail, cleared by any answer below 500. */
  private deadline: NodeJS.Timeout | null = null;
  private readonly stop = new AbortController();
  private readonly opened: Promise<never>;
  private open!: (e: GitHubUnavailableError) => void;

  constructor(
    private readonly budgetMs: number,
    private readonly retries: number,
    private readonly log: (message: string) => void,
  ) {
    this.opened = new Promise<never>((_, reject) => {
      this.open = reject;
    });
    this.opened.catch(() => {});
  }

  /** One call (with its retries): refused when open; its 5xx/network failure opens it. */
  async call<T>(route: string, send: () => Promise<T>): Promise<T> {
    if (this.reason !== null) throw new GitHubUnavailableError(this.reason);
    try {
      return await Promise.race([send(), this.opened]);
    } catch (e) {
      if (e instanceof GitHubUnavailableError) throw e;
      const cause = outageCause(e, route, this.retries);
      if (cause === null) throw e;
      throw this.trip(cause);
    }
  }

  /** Each request, cut after `timeoutMs`: sent only while closed; a failure starts the budget's clock. */
  watch(timeoutMs: number): typeof fetch {
    return async (input, init) => {
      if (this.reason !== null) throw new GitHubUnavailableError(this.reason);
      const started = Date.now();
      try {
        const response = await fetchWithin(timeoutMs, input, init, this.stop.signal);
        if (response.status >= 500) this.trouble(started);
        else this.recovered();
        return response;
      } catch (e) {
        this.trouble(started);
        throw e;
      }
    };
  }

  /** A request started at `since` failed: the budget runs from the first such start. */
  private trouble(since: number): void {
    if (this.deadline !== null || this.reason !== null) return;
    const left = Math.max(0, since + this.budgetMs - Date.now());
    this.deadline = setTimeout(() => {
      this.trip(`no answer below 500 within ${this.budgetMs / 1000} s`);
    }, left);
    this.deadline.unref();
  }

  private recovered(): void {
    if (this.deadline !== null) clearTimeout(this.deadline);
    this.deadline = null;
  }

  private trip(reason: string): GitHubUnavailableError {
    const e = new GitHubUnavailableError(this.reason ?? reason);
    if (this.reason !== null) return e;
    this.reason = reason;
    this.recovered();
    this.log(
      `GitHub API unavailable (${reason}): the rest of this run's alert work is skipped. The command's own result stands.`,
    );
    this.stop.abort(e);
    this.open(e);
    return e;
  }
}

/** `/repos/{owner}/{repo}/issues`, also when a page's full URL is asked: no host, no query. */
function routeOf(url: string): string {
  return url.replace(/^[a-z]+:\/\/[^/]+/i, '').replace(/\?.*$/, '');
}

/** Why an error means GitHub is down (5xx, or no answer at all); null for any other. */
function outageCause(e: unknown, route: string, retries: number): string | null {
  if (!(e instanceof Error) || !('request' in e)) return null;
  const status = (e as { status?: unknown }).status;
  const message = e.message.replace(/\s+/g, ' ').trim();
  const after = `after ${retries} ${retries === 1 ? 'retry' : 'retries'}`;
  if (!('response' in e) || e.response === undefined)
    return `no answer on ${route}: ${message || 'network error'}, ${after}`;
  if (typeof status === 'number' && status >= 500)
    return `${status} ${message} on ${route}, ${after}`;
  return null;
}

/** Limiter groups without the write spacing (the plugin's defaults are process-wide). */
function unpaced(): Record<'write' | 'notifications' | 'search', Bottleneck.Group> {
  const group = () => new Bottleneck.Group({ maxConcurrent: 1, minTime: 0 });
  return { write: group(), notifications: group(), search: group() };
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
