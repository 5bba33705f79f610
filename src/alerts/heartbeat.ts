/**
 * A dead man's switch outside GitHub (healthchecks.io and compatible services): `<url>/start`
 * when a backup starts, `<url>` when it succeeds, `<url>/fail` when it fails. The service
 * alerts when the success ping stops coming — also when GitHub stops running the schedules,
 * which no alert raised from inside a run can notice.
 *
 * The URL holds the check's secret (a UUID or a ping key): it never appears in a message.
 * A ping is retried once; all of a run's pings together hold it at most BUDGET_MS.
 */
import type { Host } from '../report/host.js';
import { post } from './post.js';

export const BUDGET_MS = 10_000;
/** Characters of the failure reason sent with `/fail`. */
const MAX_BODY = 2_000;

export type Beat = 'start' | 'success' | 'fail';

const SUFFIX: Readonly<Record<Beat, string>> = { start: '/start', success: '', fail: '/fail' };

/** Where a ping goes: the URL with `/start` or `/fail` added to its path, the query kept. */
export function pingUrl(base: string, beat: Beat): string {
  const url = new URL(base);
  url.pathname = url.pathname.replace(/\/+$/, '') + SUFFIX[beat];
  return url.toString();
}

export class Heartbeat {
  private started: Promise<void> = Promise.resolve();

  constructor(
    private readonly url: string | null,
    private readonly host: Host,
  ) {}

  /** Sends `/start` without holding the run (the backup goes on meanwhile). */
  start(): void {
    if (!this.url) return;
    this.started = this.send('start', '', Date.now() + BUDGET_MS);
  }

  /**
   * Sends the run's outcome, after the start ping when that one is still on its way; `body`
   * (never a secret) says why a run failed. Holds the run at most BUDGET_MS in all.
   */
  async finish(beat: Exclude<Beat, 'start'>, body: string): Promise<void> {
    if (!this.url) return;
    // The reason may quote a child's error line; the service keeps a short log, not a report.
    const reason = body.length > MAX_BODY ? `${body.slice(0, MAX_BODY - 1)}…` : body;
    const deadline = Date.now() + BUDGET_MS;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.started,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, BUDGET_MS);
      }),
    ]);
    clearTimeout(timer);
    await this.send(beat, reason, deadline);
  }

  private async send(beat: Beat, body: string, deadline: number): Promise<void> {
    const failed = await post(
      pingUrl(this.url as string, beat),
      body,
      'text/plain; charset=utf-8',
      deadline,
    );
    if (failed)
      this.host.warning(
        `heartbeat: the ${beat} ping was not delivered (${failed}); the backup itself is not affected.`,
      );
  }
}
