/**
 * The rows of `check` (preflight): one per thing checked, with its state, what was found
 * and, for a ✗, the fix in words a user can act on. Nothing in a row is ever a secret.
 */

/** `ok` ✓, `warn` ⚠️ (not a failure), `fail` ✗, `skipped` ⚪ (the input is not set). */
export type CheckState = 'ok' | 'warn' | 'fail' | 'skipped';

export interface CheckRow {
  /** What was checked, e.g. `b2: write, read, delete a probe`. */
  readonly check: string;
  readonly state: CheckState;
  /** What was found (figures, versions), or why it was skipped. */
  readonly detail: string;
  /** For `fail` (and `warn`): what to change; null when there is nothing to do. */
  readonly fix: string | null;
}

export const ok = (check: string, detail: string): CheckRow => ({
  check,
  state: 'ok',
  detail,
  fix: null,
});

export const warn = (check: string, detail: string, fix: string | null = null): CheckRow => ({
  check,
  state: 'warn',
  detail,
  fix,
});

export const fail = (check: string, detail: string, fix: string): CheckRow => ({
  check,
  state: 'fail',
  detail,
  fix,
});

export const skipped = (check: string, why: string): CheckRow => ({
  check,
  state: 'skipped',
  detail: why,
  fix: null,
});

/** The symbol a row's state is shown with. */
export const SYMBOL: Readonly<Record<CheckState, string>> = {
  ok: '✓',
  warn: '⚠️',
  fail: '✗',
  skipped: '⚪',
};

/** A check that did not answer within its time. */
export class CheckTimeout extends Error {
  constructor(readonly ms: number) {
    super(`no answer within ${Math.round(ms / 1000)} s`);
    this.name = 'CheckTimeout';
  }
}

/**
 * Runs `work` with a time bound: resolves with its rows, or rejects with a CheckTimeout once
 * `ms` have passed (`stop` is aborted then, so the work can let go of what it holds). One hung
 * service cannot hang the command.
 */
export async function within<T>(ms: number, work: (stop: AbortSignal) => Promise<T>): Promise<T> {
  const stop = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const e = new CheckTimeout(ms);
      stop.abort(e);
      reject(e);
    }, ms);
  });
  try {
    return await Promise.race([work(stop.signal), late]);
  } finally {
    clearTimeout(timer);
  }
}
