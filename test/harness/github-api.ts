import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stateful stand-in for the GitHub REST API on 127.0.0.1, speaking enough of it for
 * Octokit: issues, issue comments, labels and workflow runs of one repository.
 *
 * Stricter than GitHub in one place: creating an issue with a label that does not exist
 * is a 422 here (GitHub would create the label), so a test notices a feed that forgot to
 * create its labels.
 */
export interface FakeGitHubApi {
  /** API root to give Octokit as `baseUrl` (GITHUB_API_URL), e.g. `http://127.0.0.1:4567`. */
  readonly url: string;
  readonly state: FakeGitHubState;
  /** Every request received, in order (also the refused ones). */
  readonly requests: RecordedRequest[];
  /**
   * The next `count` requests (Infinity: all) whose `METHOD /path` matches `pathPattern`
   * (all when omitted) are answered with `status` and a GitHub-like message.
   */
  failNext(status: number, count: number, pathPattern?: RegExp | string, opts?: FailOptions): void;
  /** Forgets every pending failNext rule. */
  clearFailures(): void;
  /** Workflow runs returned for `GET /repos/{o}/{r}/actions/workflows/{file}/runs`. */
  seedRuns(file: string, runs: readonly Partial<FakeRun>[]): FakeRun[];
  stop(): Promise<void>;
}

export interface FailOptions {
  /** Response headers, e.g. `{ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '…' }`. */
  headers?: Record<string, string>;
  message?: string;
  /** Wait this long before answering (for timeout tests). */
  delayMs?: number;
}

export interface RecordedRequest {
  method: string;
  /** Path without the base path and query, e.g. `/repos/o/r/issues`. */
  path: string;
  query: Record<string, string>;
  body: unknown;
  /** Status the server answered with. */
  status: number;
}

export interface FakeGitHubState {
  readonly owner: string;
  readonly repo: string;
  issues: FakeIssue[];
  labels: FakeLabel[];
  runs: Map<string, FakeRun[]>;
}

export interface FakeLabel {
  id: number;
  name: string;
  color: string;
  description: string | null;
}

export interface FakeComment {
  id: number;
  body: string;
  created_at: string;
}

export interface FakeIssue {
  number: number;
  title: string;
  body: string | null;
  state: 'open' | 'closed';
  state_reason: 'completed' | 'not_planned' | 'reopened' | null;
  labels: string[];
  /** Logins assigned when the issue was created (GitHub drops the ones it cannot assign; this keeps all). */
  assignees: string[];
  comments: FakeComment[];
  created_at: string;
  updated_at: string;
  closed_at: string | null;
  /** Set to make this "issue" a pull request (the issues API lists both). */
  pull_request?: { url: string };
}

export interface FakeRun {
  id: number;
  name: string;
  run_number: number;
  run_attempt: number;
  event: string;
  status: 'completed' | 'in_progress' | 'queued';
  conclusion: 'success' | 'failure' | 'cancelled' | 'skipped' | 'timed_out' | null;
  head_branch: string;
  created_at: string;
  updated_at: string;
  run_started_at: string;
  html_url: string;
}

export interface StartGitHubApiOptions {
  token: string;
  owner: string;
  repo: string;
  /** Serve under a path, like GitHub Enterprise Server's `/api/v3`. */
  basePath?: string;
  /** Clock for created/updated times; default the real one. */
  now?: () => Date;
}

interface FailRule {
  status: number;
  remaining: number;
  pattern: RegExp | string | undefined;
  opts: FailOptions;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const DEFAULT_MESSAGES: Record<number, string> = {
  401: 'Bad credentials',
  403: 'Resource not accessible by integration',
  404: 'Not Found',
  422: 'Validation Failed',
  429: 'API rate limit exceeded',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

const RUN_STATUSES = new Set([
  'completed',
  'in_progress',
  'queued',
  'requested',
  'waiting',
  'pending',
]);

export async function startGitHubApi(opts: StartGitHubApiOptions): Promise<FakeGitHubApi> {
  const now = opts.now ?? (() => new Date());
  const basePath = (opts.basePath ?? '').replace(/\/+$/, '');
  const state: FakeGitHubState = {
    owner: opts.owner,
    repo: opts.repo,
    issues: [],
    labels: [],
    runs: new Map(),
  };
  const requests: RecordedRequest[] = [];
  const rules: FailRule[] = [];
  let nextId = 1000;
  let url = '';

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) send(res, 500, { message: String(e) });
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const full = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = (req.method ?? 'GET').toUpperCase();
    const raw = await readBody(req);
    let body: unknown = null;
    if (raw !== '') {
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
      }
    }
    const path = full.pathname.startsWith(basePath)
      ? full.pathname.slice(basePath.length) || '/'
      : full.pathname;
    const record: RecordedRequest = {
      method,
      path,
      query: Object.fromEntries(full.searchParams),
      body,
      status: 0,
    };
    requests.push(record);

    const rule = rules.find(
      (r) =>
        r.remaining > 0 &&
        (r.pattern === undefined ||
          (typeof r.pattern === 'string'
            ? `${method} ${path}`.includes(r.pattern)
            : r.pattern.test(`${method} ${path}`))),
    );
    if (rule !== undefined) {
      rule.remaining -= 1;
      if (rule.opts.delayMs !== undefined) await sleep(rule.opts.delayMs);
      record.status = rule.status;
      send(
        res,
        rule.status,
        {
          message: rule.opts.message ?? DEFAULT_MESSAGES[rule.status] ?? 'Error',
          documentation_url: 'https://docs.github.com/rest',
        },
        rule.opts.headers,
      );
      return;
    }

    const auth = req.headers.authorization ?? '';
    if (auth !== `token ${opts.token}` && auth !== `Bearer ${opts.token}`) {
      record.status = 401;
      send(res, 401, {
        message: 'Bad credentials',
        documentation_url: 'https://docs.github.com/rest',
      });
      return;
    }

    try {
      const { status, data, headers } = route(method, path, full.searchParams, body);
      record.status = status;
      send(res, status, data, headers);
    } catch (e) {
      const err = e instanceof HttpError ? e : new HttpError(500, String(e));
      record.status = err.status;
      send(res, err.status, {
        message: err.message,
        documentation_url: 'https://docs.github.com/rest',
        ...err.extra,
      });
    }
  }

  type Result = { status: number; data: unknown; headers?: Record<string, string> };

  function route(method: string, path: string, q: URLSearchParams, body: unknown): Result {
    const prefix = `/repos/${state.owner}/${state.repo}`;
    if (!path.startsWith(`${prefix}/`)) throw new HttpError(404, 'Not Found');
    const rest = path.slice(prefix.length);
    const b = (body ?? {}) as Record<string, unknown>;
    const issueMatch = /^\/issues\/(\d+)$/.exec(rest);
    const commentsMatch = /^\/issues\/(\d+)\/comments$/.exec(rest);
    const labelMatch = /^\/labels\/([^/]+)$/.exec(rest);
    const runsMatch = /^\/actions\/workflows\/([^/]+)\/runs$/.exec(rest);

    if (rest === '/issues' && method === 'GET') {
      const st = q.get('state') ?? 'open';
      const wanted = (q.get('labels') ?? '')
        .split(',')
        .map((l) => l.trim().toLowerCase())
        .filter((l) => l !== '');
      let list = state.issues.filter(
        (i) =>
          (st === 'all' || i.state === st) &&
          wanted.every((w) => i.labels.some((l) => l.toLowerCase() === w)),
      );
      const dir = q.get('direction') ?? 'desc';
      list = [...list].sort((a, b) => (dir === 'asc' ? a.number - b.number : b.number - a.number));
      return paginate(path, q, list.map(issueJson));
    }
    if (rest === '/issues' && method === 'POST') {
      const title = typeof b.title === 'string' ? b.title : '';
      if (title.trim() === '') throw validation('Issue', 'title', 'missing_field');
      const labels = labelNames(b.labels);
      const t = now().toISOString();
      const issue: FakeIssue = {
        number: nextNumber(),
        title,
        body: typeof b.body === 'string' ? b.body : null,
        state: 'open',
        state_reason: null,
        labels,
        assignees: Array.isArray(b.assignees) ? b.assignees.map(String) : [],
        comments: [],
        created_at: t,
        updated_at: t,
        closed_at: null,
      };
      state.issues.push(issue);
      return { status: 201, data: issueJson(issue) };
    }
    if (issueMatch !== null) {
      const issue = findIssue(Number(issueMatch[1]));
      if (method === 'GET') return { status: 200, data: issueJson(issue) };
      if (method === 'PATCH') {
        if (typeof b.title === 'string') issue.title = b.title;
        if (typeof b.body === 'string' || b.body === null) issue.body = b.body;
        if (b.labels !== undefined) issue.labels = labelNames(b.labels);
        const t = now().toISOString();
        if (b.state === 'closed' && issue.state === 'open') {
          issue.state = 'closed';
          issue.closed_at = t;
          issue.state_reason = b.state_reason === 'not_planned' ? 'not_planned' : 'completed';
        } else if (b.state === 'open' && issue.state === 'closed') {
          issue.state = 'open';
          issue.closed_at = null;
          issue.state_reason = 'reopened';
        } else if (b.state !== undefined && b.state !== 'open' && b.state !== 'closed') {
          throw validation('Issue', 'state', 'invalid');
        }
        issue.updated_at = t;
        return { status: 200, data: issueJson(issue) };
      }
    }
    if (commentsMatch !== null) {
      const issue = findIssue(Number(commentsMatch[1]));
      if (method === 'GET')
        return paginate(
          path,
          q,
          issue.comments.map((c) => commentJson(issue, c)),
        );
      if (method === 'POST') {
        if (typeof b.body !== 'string' || b.body === '')
          throw validation('IssueComment', 'body', 'missing_field');
        const comment = { id: nextId++, body: b.body, created_at: now().toISOString() };
        issue.comments.push(comment);
        issue.updated_at = comment.created_at;
        return { status: 201, data: commentJson(issue, comment) };
      }
    }
    if (rest === '/labels' && method === 'GET') return paginate(path, q, state.labels);
    if (rest === '/labels' && method === 'POST') {
      const name = typeof b.name === 'string' ? b.name.trim() : '';
      if (name === '') throw validation('Label', 'name', 'missing_field');
      if (findLabel(name) !== undefined) throw validation('Label', 'name', 'already_exists');
      const label: FakeLabel = {
        id: nextId++,
        name,
        color: typeof b.color === 'string' ? b.color : 'ededed',
        description: typeof b.description === 'string' ? b.description : null,
      };
      state.labels.push(label);
      return { status: 201, data: label };
    }
    if (labelMatch !== null && method === 'GET') {
      const label = findLabel(decodeURIComponent(labelMatch[1] ?? ''));
      if (label === undefined) throw new HttpError(404, 'Not Found');
      return { status: 200, data: label };
    }
    if (rest === '/actions/workflows' && method === 'GET') {
      // The workflows the runs were seeded for, as GitHub lists a repository's workflow files.
      const files = [...state.runs.keys()].sort();
      const workflows = files.map((f, i) => ({
        id: 1000 + i,
        name: f.replace(/\.ya?ml$/, ''),
        path: `.github/workflows/${f}`,
        state: 'active',
      }));
      return { status: 200, data: { total_count: workflows.length, workflows } };
    }
    if (runsMatch !== null && method === 'GET') {
      const runs = state.runs.get(decodeURIComponent(runsMatch[1] ?? ''));
      if (runs === undefined) throw new HttpError(404, 'Not Found');
      const status = q.get('status');
      const list = runs
        .filter(
          (r) =>
            status === null ||
            (RUN_STATUSES.has(status) ? r.status === status : r.conclusion === status),
        )
        .sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
      const page = paginate(path, q, list);
      return { ...page, data: { total_count: list.length, workflow_runs: page.data } };
    }
    throw new HttpError(404, 'Not Found');
  }

  function paginate<T>(path: string, q: URLSearchParams, all: T[]): Result & { data: T[] } {
    const perPage = Math.min(Math.max(Number(q.get('per_page') ?? 30) || 30, 1), 100);
    const page = Math.max(Number(q.get('page') ?? 1) || 1, 1);
    const last = Math.max(Math.ceil(all.length / perPage), 1);
    const data = all.slice((page - 1) * perPage, page * perPage);
    const link = (p: number, rel: string) => {
      const params = new URLSearchParams(q);
      params.set('page', String(p));
      return `<${url}${path}?${params}>; rel="${rel}"`;
    };
    const links: string[] = [];
    if (page > 1) links.push(link(page - 1, 'prev'), link(1, 'first'));
    if (page < last) links.push(link(page + 1, 'next'), link(last, 'last'));
    return {
      status: 200,
      data,
      ...(links.length > 0 ? { headers: { link: links.join(', ') } } : {}),
    };
  }

  function nextNumber(): number {
    return state.issues.reduce((n, i) => Math.max(n, i.number), 0) + 1;
  }

  function findIssue(n: number): FakeIssue {
    const issue = state.issues.find((i) => i.number === n);
    if (issue === undefined) throw new HttpError(404, 'Not Found');
    return issue;
  }

  function findLabel(name: string): FakeLabel | undefined {
    return state.labels.find((l) => l.name.toLowerCase() === name.toLowerCase());
  }

  function labelNames(value: unknown): string[] {
    if (value === undefined) return [];
    if (!Array.isArray(value)) throw validation('Issue', 'labels', 'invalid');
    return value.map((v) => {
      const name = typeof v === 'string' ? v : (v as { name?: unknown })?.name;
      const label = typeof name === 'string' ? findLabel(name) : undefined;
      if (label === undefined) throw validation('Label', 'name', 'invalid');
      return label.name;
    });
  }

  function issueJson(i: FakeIssue): Record<string, unknown> {
    const web = `https://github.example/${state.owner}/${state.repo}`;
    return {
      id: i.number * 7919,
      node_id: `I_${i.number}`,
      number: i.number,
      url: `${url}/repos/${state.owner}/${state.repo}/issues/${i.number}`,
      html_url: `${web}/issues/${i.number}`,
      title: i.title,
      body: i.body,
      state: i.state,
      state_reason: i.state_reason,
      labels: i.labels.map((n) => findLabel(n) ?? { name: n }),
      comments: i.comments.length,
      user: { login: 'github-actions[bot]' },
      created_at: i.created_at,
      updated_at: i.updated_at,
      closed_at: i.closed_at,
      ...(i.pull_request !== undefined ? { pull_request: i.pull_request } : {}),
    };
  }

  function commentJson(i: FakeIssue, c: FakeComment): Record<string, unknown> {
    return {
      id: c.id,
      body: c.body,
      html_url: `https://github.example/${state.owner}/${state.repo}/issues/${i.number}#issuecomment-${c.id}`,
      user: { login: 'github-actions[bot]' },
      created_at: c.created_at,
      updated_at: c.created_at,
    };
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  url = `http://127.0.0.1:${port}${basePath}`;

  return {
    url,
    state,
    requests,
    failNext(status, count, pathPattern, failOpts = {}) {
      rules.push({ status, remaining: count, pattern: pathPattern, opts: failOpts });
    },
    clearFailures() {
      rules.length = 0;
    },
    seedRuns(file, runs) {
      const list = state.runs.get(file) ?? [];
      const seeded = runs.map((r, i) => {
        const id = r.id ?? nextId++;
        const created = r.created_at ?? now().toISOString();
        const run: FakeRun = {
          id,
          name: r.name ?? file.replace(/\.ya?ml$/, ''),
          run_number: r.run_number ?? list.length + i + 1,
          run_attempt: r.run_attempt ?? 1,
          event: r.event ?? 'schedule',
          status: r.status ?? 'completed',
          conclusion: r.conclusion === undefined ? 'success' : r.conclusion,
          head_branch: r.head_branch ?? 'main',
          created_at: created,
          updated_at: r.updated_at ?? created,
          run_started_at: r.run_started_at ?? created,
          html_url:
            r.html_url ?? `https://github.example/${state.owner}/${state.repo}/actions/runs/${id}`,
        };
        return run;
      });
      list.push(...seeded);
      state.runs.set(file, list);
      return seeded;
    },
    stop() {
      return new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}

function validation(resource: string, field: string, code: string): HttpError {
  return new HttpError(422, 'Validation Failed', { errors: [{ resource, field, code }] });
}

function send(
  res: ServerResponse,
  status: number,
  data: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.destroyed) return;
  const text = JSON.stringify(data);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'x-github-request-id': `FAKE-${Date.now()}`,
    ...headers,
  });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
