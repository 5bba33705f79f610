import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchWithin } from '../../src/alerts/deadline.js';
import { createGitHubClient } from '../../src/alerts/github.js';
import { post } from '../../src/alerts/post.js';

// A hung request must end on time even when the garbage collector runs meanwhile: with
// `AbortSignal.timeout` it did not (the suite's hung-API test once waited out its 60 s).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let server: Server;
let base: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    // /hang: never answers. /stall: the headers and one byte, then nothing.
    if (req.url?.startsWith('/stall')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** `work`'s outcome while a GC runs every 20 ms; 'still waiting' when it outlives `guardMs`. */
async function underGc<T>(work: () => Promise<T>, guardMs = 5_000) {
  const collecting = setInterval(gc, 20);
  let guard: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work().then(
        (value) => ({ value }),
        (error: unknown) => ({ error: error as Error }),
      ),
      new Promise<'still waiting'>((resolve) => {
        guard = setTimeout(() => resolve('still waiting'), guardMs);
      }),
    ]);
  } finally {
    clearInterval(collecting);
    clearTimeout(guard);
  }
}

describe('fetchWithin: a deadline that holds under garbage collection', () => {
  it('a request that gets no answer is cut with a TimeoutError', async () => {
    const out = await underGc(() => fetchWithin(300, `${base}/hang`));
    expect(out).not.toBe('still waiting');
    expect(out).toHaveProperty('error.name', 'TimeoutError');
    expect(out).toHaveProperty('error.message', 'no answer within 300 ms');
  });

  it('a body that stops arriving is cut too', async () => {
    const out = await underGc(async () => (await fetchWithin(300, `${base}/stall`)).text());
    expect(out).not.toBe('still waiting');
    expect(out).toHaveProperty('error.name', 'TimeoutError');
  });

  it("a caller's signal ends it at once, with the caller's reason", async () => {
    const stop = new AbortController();
    const sent = fetchWithin(60_000, `${base}/hang`, { method: 'GET' }, stop.signal);
    const why = new Error('outage');
    setTimeout(() => stop.abort(why), 50);
    const out = await underGc(() => sent, 2_000);
    expect(out).toEqual({ error: why });
    const late = new AbortController();
    late.abort(why);
    await expect(fetchWithin(60_000, `${base}/hang`, { signal: late.signal })).rejects.toBe(why);
  });

  it('the GitHub client with its retries and outage budget gives up on a hung API', async () => {
    const log: string[] = [];
    const client = createGitHubClient({
      token: 'ghp_unit_test_token_000000000000000000',
      baseUrl: `${base}/hang`,
      retries: 1,
      retryBaseMs: 1,
      timeoutMs: 300,
      outageBudgetMs: 30_000,
      log: (m) => log.push(m),
    });
    const out = await underGc(() => client.rest.issues.listForRepo({ owner: 'o', repo: 'r' }));
    expect(out).not.toBe('still waiting');
    expect(out).toHaveProperty('error.name', 'GitHubUnavailableError');
    expect(log.join('\n')).toMatch(
      /GitHub API unavailable \(no answer on GET \/repos\/\{owner\}\/\{repo\}\/issues: no answer within 300 ms, after 1 retry\)/,
    );
  });

  it('a heartbeat or webhook POST to a hung receiver ends with a reason', async () => {
    const out = await underGc(() =>
      post(`${base}/hang`, '{}', 'application/json', Date.now() + 1_500),
    );
    expect(out).toEqual({ value: 'no answer in time' });
  });
});
