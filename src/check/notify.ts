/**
 * `check`'s notification rows: the alert webhook gets one clearly labelled test message
 * (the same payload code and delivery as a real alert), and the heartbeat gets a POST to
 * `<url>/log`, which healthchecks.io records without changing the check's state. The URLs
 * are secrets: no row holds them, only the status code.
 */
import { post } from '../alerts/post.js';
import { webhookPayload } from '../alerts/webhook.js';
import { type CheckRow, fail, ok, skipped } from './row.js';

const WEBHOOK = "alert webhook ('alert-webhook-url')";
const HEARTBEAT = "heartbeat ('heartbeat-url')";

/** Each delivery: two attempts within this (post.ts: 4 s an attempt). */
const BUDGET_MS = 10_000;

/** The test message a chat receives. */
export function testMessage(repository: string | null): string {
  return `pg-dr check: test message from ${repository ?? 'a pg-dr set-up'}, nothing is wrong.`;
}

export async function checkWebhook(
  url: string | null,
  repository: string | null,
): Promise<CheckRow> {
  if (!url)
    return skipped(WEBHOOK, "'alert-webhook-url' is not set: alerts go to GitHub issues only");
  const failed = await post(
    url,
    webhookPayload(testMessage(repository)),
    'application/json',
    Date.now() + BUDGET_MS,
  );
  if (!failed) return ok(WEBHOOK, 'a test message was delivered (look for it in the channel)');
  return fail(
    WEBHOOK,
    `the test message was not delivered: ${failed}`,
    /^HTTP 4/.test(failed)
      ? "The receiver refused it: check 'alert-webhook-url' is the channel's current incoming-webhook URL (a deleted or rotated webhook answers 403/404)."
      : "The receiver did not take it: check 'alert-webhook-url' and that the service is up and reachable from the runner.",
  );
}

/** Where the heartbeat check POSTs: `<url>/log`, the query kept. */
export function logUrl(base: string): string {
  const url = new URL(base);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/log`;
  return url.toString();
}

export async function checkHeartbeat(url: string | null): Promise<CheckRow> {
  if (!url)
    return skipped(
      HEARTBEAT,
      "'heartbeat-url' is not set: nothing outside GitHub notices when backups stop",
    );
  const failed = await post(
    logUrl(url),
    'pg-dr check: reachability test',
    'text/plain; charset=utf-8',
    Date.now() + BUDGET_MS,
  );
  if (!failed) return ok(HEARTBEAT, 'reachable; a log event was recorded (its state is unchanged)');
  if (failed === 'HTTP 404')
    return ok(
      HEARTBEAT,
      'reachable; the service has no /log endpoint, nothing sent that changes its state',
    );
  return fail(
    HEARTBEAT,
    `not reachable: ${failed}`,
    /^HTTP 4/.test(failed)
      ? "The service refused the ping: check 'heartbeat-url' is the check's ping URL (e.g. https://hc-ping.com/<uuid>)."
      : "Check 'heartbeat-url' and that the service is up and reachable from the runner; meanwhile backups' pings would fail too (warnings only).",
  );
}
