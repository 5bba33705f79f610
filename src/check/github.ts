/**
 * `check`'s GitHub rows: the token may read the repository's issues (alerts are issues),
 * and `backup-workflow` names a workflow the monitor can read the runs of. Through the
 * alert feed's client, so an outage costs one retry budget and shows as "GitHub API
 * unavailable", not a hang.
 */
import { type GitHubClient, GitHubUnavailableError } from '../alerts/github.js';
import { type CheckRow, fail, ok, skipped, within } from './row.js';

export interface GitHubCheckSettings {
  /** The alert feed's client; null when there is no token or no repository. */
  readonly client: GitHubClient | null;
  readonly token: boolean;
  readonly repository: { readonly owner: string; readonly repo: string } | null;
  /** `backup-workflow`; null when not set. */
  readonly workflow: string | null;
}

/** How long the GitHub rows may take in all (the client's outage budget is 20 s). */
export const GITHUB_BOUND_MS = 45_000;

const ISSUES = 'GitHub: the token can read issues (alerts)';
const WORKFLOW = "GitHub: 'backup-workflow' found";

const statusOf = (e: unknown): number | null => {
  const s = (e as { status?: unknown } | null)?.status;
  return typeof s === 'number' ? s : null;
};

function unavailable(check: string, e: unknown): CheckRow | null {
  if (e instanceof GitHubUnavailableError || (statusOf(e) ?? 0) >= 500)
    return fail(
      check,
      e instanceof GitHubUnavailableError
        ? `GitHub API unavailable (${e.reason})`
        : `GitHub API unavailable: ${(e as Error).message}`,
      'Run the check again later (https://www.githubstatus.com); nothing to change in the set-up for this.',
    );
  return null;
}

async function issuesRow(s: GitHubCheckSettings): Promise<CheckRow> {
  if (!s.token) return skipped(ISSUES, "'github-token' is not set: alerts are not opened");
  if (!s.repository || !s.client)
    return fail(
      ISSUES,
      'GITHUB_REPOSITORY is not set (expected "owner/name")',
      'Run in GitHub Actions, or set GITHUB_REPOSITORY=owner/name for the CLI.',
    );
  const { owner, repo } = s.repository;
  try {
    await s.client.rest.issues.listForRepo({ owner, repo, state: 'open', per_page: 1 });
    return ok(
      ISSUES,
      `issues of ${owner}/${repo} listed (opening one needs 'issues: write', which only a real alert shows)`,
    );
  } catch (e) {
    const down = unavailable(ISSUES, e);
    if (down) return down;
    const status = statusOf(e);
    return fail(
      ISSUES,
      `GET /repos/${owner}/${repo}/issues: HTTP ${status} (${(e as Error).message})`,
      status === 401
        ? "GitHub refused the token (expired or revoked): set 'github-token' to the workflow's GITHUB_TOKEN or another valid token."
        : "Give the job `permissions: issues: write` (and `actions: read` for the monitor), and check 'github-token' is a token of this repository.",
    );
  }
}

async function workflowRow(s: GitHubCheckSettings): Promise<CheckRow> {
  if (!s.workflow)
    return skipped(
      WORKFLOW,
      "'backup-workflow' is not set: the monitor does not check the success rate",
    );
  if (!s.token || !s.client || !s.repository)
    return skipped(WORKFLOW, "needs 'github-token' and GITHUB_REPOSITORY");
  const { owner, repo } = s.repository;
  const { client, workflow } = s;
  try {
    const { data } = await client.rest.actions.listWorkflowRuns({
      owner,
      repo,
      workflow_id: workflow,
      per_page: 1,
    });
    return ok(WORKFLOW, `${workflow}: ${data.total_count} run(s) in ${owner}/${repo}`);
  } catch (e) {
    const down = unavailable(WORKFLOW, e);
    if (down) return down;
    const status = statusOf(e);
    if (status !== 404)
      return fail(
        WORKFLOW,
        `GET /repos/${owner}/${repo}/actions/workflows/${workflow}/runs: HTTP ${status}`,
        'Give the job `permissions: actions: read` so the monitor can read the backup runs.',
      );
    const found = await client.rest.actions
      .listRepoWorkflows({ owner, repo, per_page: 100 })
      .then(({ data }) => data.workflows.map((w) => w.path.split('/').pop() ?? w.path))
      .catch(() => null);
    return fail(
      WORKFLOW,
      `no workflow "${workflow}" in ${owner}/${repo} (GitHub API 404)`,
      `Set 'backup-workflow' to the backup workflow's file name${found ? (found.length ? `; found: ${found.join(', ')}` : '; the repository has no workflow files') : ''}.`,
    );
  }
}

/** Both GitHub rows, within one time bound. */
export async function checkGitHub(s: GitHubCheckSettings): Promise<CheckRow[]> {
  try {
    return await within(GITHUB_BOUND_MS, async () => {
      const issues = await issuesRow(s);
      return [issues, await workflowRow(s)];
    });
  } catch (e) {
    const why = `GitHub API unavailable: ${(e as Error).message}`;
    const later = 'Run the check again later (https://www.githubstatus.com).';
    return [
      s.token ? fail(ISSUES, why, later) : skipped(ISSUES, "'github-token' is not set"),
      s.workflow ? fail(WORKFLOW, why, later) : skipped(WORKFLOW, "'backup-workflow' is not set"),
    ];
  }
}
