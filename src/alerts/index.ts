import type { SummaryTable } from '../report/host.js';
import { lit } from '../report/status.js';
import { type AlertFeed, type AlertOutcome, createAlertFeed, disabledFeed } from './feed.js';
import { apiUrlFromEnv, createGitHubClient, parseRepository } from './github.js';

export {
  type AlertFeed,
  type AlertFeedOptions,
  type AlertOutcome,
  createAlertFeed,
  describeError,
  disabledFeed,
  type OpenAlert,
} from './feed.js';
export {
  apiUrlFromEnv,
  createGitHubClient,
  DEFAULT_API_URL,
  type GitHubClient,
  type GitHubClientOptions,
  GitHubUnavailableError,
  parseRepository,
  SecretInRequestError,
} from './github.js';
export {
  ALERT_KEYS,
  type AlertCondition,
  type AlertKey,
  type AlertKind,
  destinationUnreachableKey,
  formatDuration,
  formatTime,
  isValidAlertKey,
} from './text.js';

export interface AlertFeedFromEnvOptions {
  /** `github-token`; '' gives a disabled feed. */
  token: string;
  labels: readonly string[];
  /** GITHUB_REPOSITORY (owner/name) and GITHUB_API_URL are read from here. */
  env: NodeJS.ProcessEnv;
  runUrl: string | null;
  log: (warning: string) => void;
  now?: () => Date;
  /** Other secrets no request may carry (the token always is one). */
  secrets?: readonly string[];
  assignees?: readonly string[];
  mentions?: readonly string[];
}

/**
 * The feed a command uses: real when there is a token and a repository, else a
 * disabled one whose every call is `skipped` with the reason.
 */
export function alertFeedFromEnv(opts: AlertFeedFromEnvOptions): AlertFeed {
  if (opts.token === '') return disabledFeed('no github-token');
  const repository = parseRepository(opts.env);
  if (repository === null)
    return disabledFeed('GITHUB_REPOSITORY is not set (expected "owner/name")');
  const client = createGitHubClient({
    token: opts.token,
    baseUrl: apiUrlFromEnv(opts.env),
    log: opts.log,
    ...(opts.secrets !== undefined ? { secrets: opts.secrets } : {}),
  });
  return createAlertFeed({
    client,
    ...repository,
    labels: opts.labels,
    runUrl: opts.runUrl,
    now: opts.now ?? (() => new Date()),
    log: opts.log,
    assignees: opts.assignees ?? [],
    mentions: opts.mentions ?? [],
  });
}

/** A job-summary table of what the alert feed did; null when it did nothing. */
export function alertsSummary(outcomes: readonly AlertOutcome[]): SummaryTable | null {
  if (outcomes.length === 0) return null;
  const row = (o: AlertOutcome) => [o.key, describeOutcome(o)];
  // Unsent alerts (no github-token, as on a laptop) are detail: the CLI shows them with --verbose.
  const rows = outcomes.filter((o) => o.state !== 'skipped').map(row);
  const details = outcomes.filter((o) => o.state === 'skipped').map(row);
  const notes = outcomes
    .filter((o) => o.state === 'failed')
    .map((o) => `⚠️ Alert \`${o.key}\` failed: ${o.error} The command's own result stands.`);
  return { title: 'Alerts', header: ['Alert', 'Issue'], rows, details, notes };
}

function describeOutcome(o: AlertOutcome): string {
  switch (o.state) {
    case 'opened':
      return lit('failed', `opened #${o.issue} ${o.url}`);
    case 'updated':
      return lit('failed', `#${o.issue} updated, commented ${o.url}`);
    case 'unchanged':
      return lit('failed', `#${o.issue} still open, no news ${o.url}`);
    case 'closed':
      return lit('ok', `recovered, closed #${o.issue} ${o.url}`);
    case 'none':
      return lit('ok', 'fine (no open issue)');
    case 'skipped':
      return lit('skipped', `not sent: ${o.reason}`);
    case 'failed':
      return `⚠️ failed: ${o.error}`;
  }
}
