import { type GitHubClient, GitHubUnavailableError } from './github.js';
import {
  type AlertCondition,
  type AlertKey,
  type AlertState,
  decide,
  initialState,
  isValidAlertKey,
  parseMarker,
  parseState,
  renderBody,
  renderChangeComment,
  renderRecoveryComment,
  renderTitle,
} from './text.js';

export type { AlertCondition, AlertKey } from './text.js';

/** What happened to one alert. The feed never throws: API trouble is `failed`. */
export type AlertOutcome =
  /** opened: a new issue; updated: body updated and a comment posted (news);
   *  unchanged: body updated quietly; closed: recovered comment posted and closed. */
  | {
      state: 'opened' | 'updated' | 'unchanged' | 'closed';
      key: AlertKey;
      issue: number;
      url: string;
    }
  /** clear() with no open issue for the key. */
  | { state: 'none'; key: AlertKey }
  /** No feed (no token, no repository), or the GitHub API is down for this run (the
   *  client warned once). */
  | { state: 'skipped'; key: AlertKey; reason: string }
  /** The GitHub API refused or failed; a warning was logged. */
  | { state: 'failed'; key: AlertKey; error: string };

export interface OpenAlert {
  /** As read from the issue: any well-formed key, also one this version does not raise. */
  key: string;
  number: number;
  /** First seen, ISO time. */
  since: string;
}

export interface AlertFeed {
  /** Opens the key's issue, or updates it (commenting only when it is news). */
  raise(c: AlertCondition): Promise<AlertOutcome>;
  /** Comments "✅ Recovered: …" and closes the key's open issue; `none` when there is none. */
  clear(key: AlertKey, recovery: string): Promise<AlertOutcome>;
  /** The open alerts (empty when they cannot be listed; a warning is logged). */
  open(): Promise<OpenAlert[]>;
  /** The feed's client, for a command's other GitHub reads: they share its outage breaker. */
  readonly client?: GitHubClient;
}

export interface AlertFeedOptions {
  client: GitHubClient;
  owner: string;
  repo: string;
  /** Put on every alert issue (created when missing) and used to find them again. */
  labels: readonly string[];
  /** Link to this workflow run, or null outside GitHub Actions. */
  runUrl: string | null;
  now: () => Date;
  /** Warnings: every API failure ends up here, once. */
  log: (warning: string) => void;
  /** Logins a new alert issue is assigned to (`alert-assignees`). */
  assignees?: readonly string[];
  /** Users and teams named once, in a new issue's opening comment (`alert-mentions`). */
  mentions?: readonly string[];
}

interface IssueRef {
  number: number;
  url: string;
  body: string;
  createdAt: string;
}

const LABEL_COLOR = 'b60205';
const LABEL_DESCRIPTION = 'Disaster-recovery alert, opened and closed by pg-dr';

/** Alerts as GitHub issues: one open issue per key, found by a hidden marker and the labels. */
export function createAlertFeed(opts: AlertFeedOptions): AlertFeed {
  const feed = new IssueFeed(opts);
  return {
    raise: (c) => feed.raise(c),
    clear: (key, recovery) => feed.clear(key, recovery),
    open: () => feed.open(),
    client: opts.client,
  };
}

/**
 * The state behind {@link createAlertFeed}: the open alert issues, listed once per feed
 * and kept current by it, and the labels, created once when missing.
 */
class IssueFeed {
  private readonly labels: string[];
  /** Open alert issues by key, oldest first; null until listed, or after a failure. */
  private index: Promise<Map<string, IssueRef[]>> | null = null;
  private labelsReady: Promise<void> | null = null;

  constructor(private readonly opts: AlertFeedOptions) {
    this.labels = [...new Set(opts.labels)];
  }

  private get where(): { owner: string; repo: string } {
    return { owner: this.opts.owner, repo: this.opts.repo };
  }

  private get issues(): GitHubClient['rest']['issues'] {
    return this.opts.client.rest.issues;
  }

  async raise(c: AlertCondition): Promise<AlertOutcome> {
    if (!isValidAlertKey(c.key)) return this.failed(c.key, 'raised', invalidKey(c.key));
    try {
      const at = this.opts.now();
      const byKey = await this.loadIndex();
      const list = byKey.get(c.key) ?? [];
      if (list.length === 0) return await this.openIssue(c, at, byKey);
      return await this.updateIssue(c, at, await this.closeDuplicates(c.key, list));
    } catch (e) {
      return this.failed(c.key, 'raised', e);
    }
  }

  async clear(key: AlertKey, recovery: string): Promise<AlertOutcome> {
    if (!isValidAlertKey(key)) return this.failed(key, 'cleared', invalidKey(key));
    try {
      const at = this.opts.now();
      const byKey = await this.loadIndex();
      const list = byKey.get(key) ?? [];
      const [first] = list;
      if (first === undefined) return { state: 'none', key };
      const since = parseState(first.body)?.since ?? first.createdAt;
      await this.issues.createComment({
        ...this.where,
        issue_number: first.number,
        body: renderRecoveryComment(recovery, since, this.opts.runUrl, at),
      });
      for (const issue of list)
        await this.issues.update({
          ...this.where,
          issue_number: issue.number,
          state: 'closed',
          state_reason: 'completed',
        });
      byKey.delete(key);
      return { state: 'closed', key, issue: first.number, url: first.url };
    } catch (e) {
      return this.failed(key, 'cleared', e);
    }
  }

  async open(): Promise<OpenAlert[]> {
    try {
      const byKey = await this.loadIndex();
      return [...byKey.entries()].flatMap(([key, list]) =>
        list.slice(0, 1).map((i) => ({
          key,
          number: i.number,
          since: parseState(i.body)?.since ?? i.createdAt,
        })),
      );
    } catch (e) {
      if (!(e instanceof GitHubUnavailableError)) this.warn('Open alerts could not be listed', e);
      return [];
    }
  }

  /** A new issue for a key that has none open. */
  private async openIssue(
    c: AlertCondition,
    at: Date,
    byKey: Map<string, IssueRef[]>,
  ): Promise<AlertOutcome> {
    await this.ensureLabels();
    const state = initialState(c, at);
    const body = renderBody(c, state, this.opts.runUrl, at);
    const assignees = [...(this.opts.assignees ?? [])];
    const { data } = await this.issues.create({
      ...this.where,
      title: renderTitle(c),
      body,
      labels: [...this.labels],
      ...(assignees.length > 0 ? { assignees } : {}),
    });
    const ref = { number: data.number, url: data.html_url, body, createdAt: data.created_at };
    byKey.set(c.key, [ref]);
    // Mentions notify once, here; the updates that follow never repeat them. The issue
    // stands when this comment fails: a warning, not a second issue on the next raise.
    const mentions = this.opts.mentions ?? [];
    if (mentions.length > 0)
      await this.issues
        .createComment({
          ...this.where,
          issue_number: data.number,
          body: `${mentions.join(' ')}: a new pg-dr alert needs a person — ${renderTitle(c)}`,
        })
        .catch((e: unknown) => {
          if (!(e instanceof GitHubUnavailableError))
            this.warn(`Alert '${c.key}': the mentions could not be posted`, e);
        });
    return { state: 'opened', key: c.key, issue: ref.number, url: ref.url };
  }

  /** The key's open issue: body updated, and a comment when the condition is news. */
  private async updateIssue(c: AlertCondition, at: Date, issue: IssueRef): Promise<AlertOutcome> {
    const { runUrl } = this.opts;
    const prev: AlertState | null = parseState(issue.body);
    const { reason, next } = decide(prev, c, at, prev?.since ?? issue.createdAt);
    // Comment first: should the body update then fail, the next run tells again
    // rather than never.
    if (reason !== null)
      await this.issues.createComment({
        ...this.where,
        issue_number: issue.number,
        body: renderChangeComment(reason, c, prev, runUrl, at),
      });
    const body = renderBody(c, next, runUrl, at);
    await this.issues.update({
      ...this.where,
      issue_number: issue.number,
      title: renderTitle(c),
      body,
    });
    issue.body = body;
    return {
      state: reason !== null ? 'updated' : 'unchanged',
      key: c.key,
      issue: issue.number,
      url: issue.url,
    };
  }

  private loadIndex(): Promise<Map<string, IssueRef[]>> {
    this.index ??= this.listOpen().catch((e: unknown) => {
      this.index = null;
      throw e;
    });
    return this.index;
  }

  private async listOpen(): Promise<Map<string, IssueRef[]>> {
    const { client } = this.opts;
    const issues = await client.paginate(client.rest.issues.listForRepo, {
      ...this.where,
      state: 'open',
      ...(this.labels.length > 0 ? { labels: this.labels.join(',') } : {}),
      sort: 'created',
      direction: 'asc',
      per_page: 100,
    });
    const byKey = new Map<string, IssueRef[]>();
    for (const issue of issues) {
      if (issue.pull_request) continue;
      const key = parseMarker(issue.body);
      if (key === null) continue;
      const list = byKey.get(key) ?? [];
      list.push({
        number: issue.number,
        url: issue.html_url,
        body: issue.body ?? '',
        createdAt: issue.created_at,
      });
      byKey.set(key, list);
    }
    for (const list of byKey.values()) list.sort((a, b) => a.number - b.number);
    return byKey;
  }

  private ensureLabels(): Promise<void> {
    this.labelsReady ??= this.createMissingLabels().catch((e: unknown) => {
      this.labelsReady = null;
      throw e;
    });
    return this.labelsReady;
  }

  private async createMissingLabels(): Promise<void> {
    for (const name of this.labels) {
      try {
        await this.issues.getLabel({ ...this.where, name });
        continue;
      } catch (e) {
        if (statusOf(e) !== 404) throw e;
      }
      try {
        await this.issues.createLabel({
          ...this.where,
          name,
          color: LABEL_COLOR,
          description: LABEL_DESCRIPTION,
        });
      } catch (e) {
        if (!isAlreadyExists(e)) throw e;
      }
    }
  }

  /** Closes all but the oldest open issue of a key (left by concurrent runs). */
  private async closeDuplicates(key: string, list: IssueRef[]): Promise<IssueRef> {
    const [keep, ...extra] = list;
    if (keep === undefined) throw new Error(`no issue for ${key}`);
    for (const dup of extra) {
      await this.issues.createComment({
        ...this.where,
        issue_number: dup.number,
        body: `Duplicate of #${keep.number}, which tracks alert \`${key}\`.`,
      });
      await this.issues.update({
        ...this.where,
        issue_number: dup.number,
        state: 'closed',
        state_reason: 'not_planned',
      });
    }
    list.splice(1);
    return keep;
  }

  private warn(what: string, e: unknown): string {
    this.index = null; // the cache may be stale after a half-done update
    const error = describeError(e);
    this.opts.log(`${what} on ${this.opts.owner}/${this.opts.repo}: ${error}`);
    return error;
  }

  private failed(key: AlertKey, action: string, e: unknown): AlertOutcome {
    if (e instanceof GitHubUnavailableError) {
      this.index = null;
      return { state: 'skipped', key, reason: e.message };
    }
    return { state: 'failed', key, error: this.warn(`Alert '${key}' could not be ${action}`, e) };
  }
}

/** A feed that does nothing: no token or no repository. Every call is `skipped`. */
export function disabledFeed(reason: string): AlertFeed {
  return {
    raise: async (c) => ({ state: 'skipped', key: c.key, reason }),
    clear: async (key) => ({ state: 'skipped', key, reason }),
    open: async () => [],
  };
}

function invalidKey(key: string): Error {
  return new Error(
    `invalid alert key "${key}" (expected e.g. backup-stale or destination-unreachable:<name>).`,
  );
}

function statusOf(e: unknown): number | undefined {
  const status = (e as { status?: unknown } | null)?.status;
  return typeof status === 'number' ? status : undefined;
}

function isAlreadyExists(e: unknown): boolean {
  if (statusOf(e) !== 422) return false;
  const errors = (e as { response?: { data?: { errors?: unknown } } }).response?.data?.errors;
  return (
    Array.isArray(errors) &&
    errors.some((x) => (x as { code?: unknown })?.code === 'already_exists')
  );
}

/** One line a person can act on; never includes request headers (the token). */
export function describeError(e: unknown): string {
  const status = statusOf(e);
  const message = (e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ').trim();
  if (e instanceof Error && e.name === 'SecretInRequestError') return message;
  if (status === undefined || !(e instanceof Error) || !('request' in e))
    return `${message || 'unknown error'}.`;
  if (!('response' in e) || e.response === undefined)
    return `could not reach the GitHub API (${message}), also after retries.`;
  const api = `GitHub API ${status} (${message})`;
  if (status === 401) return `${api}: the github-token is invalid or expired.`;
  if (status === 403 || status === 429) {
    if (/rate limit/i.test(message)) return `${api}: rate limited; try again later.`;
    return `${api}: the token may not write issues — give the job \`permissions: issues: write\`.`;
  }
  if (status === 404)
    return `${api}: the repository is not visible to the token, or it has no issues.`;
  if (status === 410) return `${api}: issues are turned off for this repository.`;
  if (status >= 500) return `${api}: GitHub (or the network) failed, also after retries.`;
  return `${api}.`;
}
