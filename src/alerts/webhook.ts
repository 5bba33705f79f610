/**
 * `alert-webhook-url`: the alerts also go to a chat. A POST when an alert opens, when it gets
 * worse (the issue feed's `updated`: news a person was not told yet) and when it recovers;
 * nothing while it only persists. The JSON has both `text` (Slack, Mattermost, Rocket.Chat,
 * Google Chat, a Teams workflow mapping `text`) and `content` (Discord), the same line in
 * each, with Discord's mentions disabled: one payload for all of them.
 *
 * Without a working issue feed (no token, or GitHub failing), pg-dr cannot tell news from a
 * repeat: every raise is sent, and recoveries are not (nothing says the alert was open).
 * The URL is a secret: it is never in a message. Deliveries are retried once and all of a
 * run's deliveries hold it at most WEBHOOK_BUDGET_MS.
 */
import type { Host } from '../report/host.js';
import type { AlertCondition, AlertFeed, AlertOutcome } from './feed.js';
import { post } from './post.js';

export const WEBHOOK_BUDGET_MS = 10_000;

/** Slack reads `<…>` as links and mentions (`<!channel>`); `&` starts an entity. */
function plain(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function webhookPayload(line: string): string {
  const text = plain(line);
  return JSON.stringify({ text, content: text, allowed_mentions: { parse: [] } });
}

function issueLink(o: AlertOutcome): string {
  return 'url' in o ? ` — ${o.url}` : '';
}

/** The feed, with each opened, worse and recovered alert also POSTed to `url`. */
export function withWebhook(feed: AlertFeed, url: string | null, host: Host): AlertFeed {
  if (!url) return feed;
  let deadline: number | null = null;
  const send = async (line: string) => {
    deadline ??= Date.now() + WEBHOOK_BUDGET_MS;
    const failed = await post(url, webhookPayload(line), 'application/json', deadline);
    if (failed) host.warning(`alert webhook: not delivered (${failed}).`);
  };
  return {
    async raise(c: AlertCondition) {
      const o = await feed.raise(c);
      if (o.state === 'opened') await send(`🔴 pg-dr alert: ${c.title}${issueLink(o)}`);
      else if (o.state === 'updated')
        await send(`🔴 pg-dr alert, worse: ${c.title}${issueLink(o)}`);
      else if (o.state === 'skipped' || o.state === 'failed')
        await send(`🔴 pg-dr alert: ${c.title} (no GitHub issue: ${o.state})`);
      return o;
    },
    async clear(key, recovery) {
      const o = await feed.clear(key, recovery);
      if (o.state === 'closed')
        await send(`✅ pg-dr recovered (${key}): ${recovery}${issueLink(o)}`);
      return o;
    },
    open: () => feed.open(),
    // The monitor reads runs through the feed's client: one outage, one retry budget.
    ...(feed.client ? { client: feed.client } : {}),
  };
}
