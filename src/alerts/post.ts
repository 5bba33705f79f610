/**
 * One delivery to a URL that holds a secret (a heartbeat check, a chat webhook): a POST,
 * retried once, within a deadline; the result is a reason in words that never hold the URL.
 */

import { fetchWithin } from './deadline.js';

/** One attempt; two attempts and the pause between fit in a 10 s budget. */
const ATTEMPT_MS = 4_000;
const RETRY_PAUSE_MS = 500;

/** Why a request failed, without the URL. */
function reasonOf(e: unknown): string {
  const err = e as { name?: string; cause?: { code?: string } };
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError') return 'no answer in time';
  const code = err?.cause?.code;
  return code ? `could not connect (${code})` : 'could not connect';
}

/** POSTs `body`; null when delivered (2xx), else why not (`HTTP 500`, `could not connect …`). */
export async function post(
  url: string,
  body: string,
  contentType: string,
  deadline: number,
): Promise<string | null> {
  let last = '';
  for (let attempt = 1; attempt <= 2; attempt++) {
    const left = deadline - Date.now();
    if (left <= 0) return last || 'no time left';
    try {
      const res = await fetchWithin(Math.min(ATTEMPT_MS, left), url, {
        method: 'POST',
        body,
        headers: { 'content-type': contentType },
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return null;
      last = `HTTP ${res.status}`;
    } catch (e) {
      last = reasonOf(e);
    }
    if (attempt === 1 && deadline - Date.now() > RETRY_PAUSE_MS)
      await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
  }
  return last;
}
