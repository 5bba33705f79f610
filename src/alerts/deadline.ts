/**
 * `fetch` with a deadline that holds under garbage collection.
 *
 * Not `AbortSignal.timeout()`: its timer holds the signal only weakly, and Node's fetch
 * follows a given signal through a weak link too (nodejs/node#55428). Once a GC runs while
 * the request hangs, the abort never reaches it, and the request waits as long as the
 * server does. Measured here on Node 20: a hung request with a 1 s `AbortSignal.timeout`
 * was still waiting at 5 s once anything allocated. Here the timer holds the controller
 * strongly, and the returned promise rejects on time whether or not the abort arrives.
 */

/** The rejection a missed deadline gives: a `TimeoutError`, like `AbortSignal.timeout`'s. */
function timeoutError(ms: number): DOMException {
  return new DOMException(`no answer within ${ms} ms`, 'TimeoutError');
}

/**
 * `fetch(input, init)` that rejects with a `TimeoutError` when no response has come within
 * `ms`, or at once when `init.signal` or one of `also` aborts; the request is aborted
 * either way. The timer runs on after the headers, so a body that stops arriving is cut too.
 */
export function fetchWithin(
  ms: number,
  input: Parameters<typeof fetch>[0],
  init?: RequestInit,
  ...also: AbortSignal[]
): Promise<Response> {
  const controller = new AbortController();
  const outer = [init?.signal, ...also].filter((s): s is AbortSignal => s != null);
  const listening: (() => void)[] = [];
  const cut = new Promise<never>((_, reject) => {
    const stop = (reason: unknown) => {
      controller.abort(reason);
      reject(reason);
    };
    // A request in flight keeps the process alive on its own; a finished one must not.
    setTimeout(() => stop(timeoutError(ms)), ms).unref();
    for (const signal of outer) {
      if (signal.aborted) return stop(signal.reason);
      const onAbort = () => stop(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      listening.push(() => signal.removeEventListener('abort', onAbort));
    }
  });
  cut.catch(() => {});
  const sent = fetch(input, { ...init, signal: controller.signal });
  return Promise.race([sent, cut]).finally(() => {
    for (const unlisten of listening) unlisten();
  });
}
