import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  apiUrlFromEnv,
  createGitHubClient,
  parseRepository,
  SecretInRequestError,
} from '../../src/alerts/github.js';
import { alertsSummary, describeError, disabledFeed } from '../../src/alerts/index.js';
import {
  ALERT_KEYS,
  type AlertCondition,
  type AlertKey,
  type AlertState,
  decide,
  destinationUnreachableKey,
  fingerprintOf,
  formatDuration,
  initialState,
  isValidAlertKey,
  parseMarker,
  parseState,
  renderBody,
  renderChangeComment,
  renderMarker,
  renderRecoveryComment,
  renderState,
  renderTitle,
} from '../../src/alerts/text.js';

const T0 = new Date('2025-03-01T04:00:00Z');
const at = (hours: number) => new Date(T0.getTime() + hours * 3_600_000);

function failing(
  figure: number,
  detail = 'The backup failed 3 times: pg_dump exited with 1.',
): AlertCondition {
  return {
    key: 'backup-failed',
    title: 'Backups are failing',
    detail,
    figure,
    lastGood: { id: '20250228T030000Z-3fa9c1', time: '2025-02-28T03:04:12Z', where: ['r2', 'b2'] },
    nextStep: 'Read the failed step of the run.',
  };
}

describe('marker and state', () => {
  it('round-trips the marker for every key shape', () => {
    for (const key of ['backup-stale', destinationUnreachableKey('r2'), 'low-success-rate']) {
      expect(parseMarker(`${renderMarker(key)}\n\nbody`)).toBe(key);
      expect(isValidAlertKey(key)).toBe(true);
    }
    expect(renderMarker('backup-stale')).toBe('<!-- pg-dr:alert key=backup-stale -->');
  });

  it('finds no marker in text that only mentions it, or a malformed key', () => {
    expect(parseMarker(null)).toBeNull();
    expect(parseMarker('pg-dr:alert key=backup-stale')).toBeNull();
    expect(parseMarker('<!-- pg-dr:alert key=Backup Stale -->')).toBeNull();
    expect(parseMarker('<!-- pg-dr:alert key=a:b:c -->')).toBeNull();
    expect(isValidAlertKey('destination-unreachable:-x')).toBe(false);
    expect(isValidAlertKey('x -->')).toBe(false);
  });

  it('round-trips the state and survives a hand-edited one', () => {
    const state: AlertState = {
      v: 1,
      since: T0.toISOString(),
      seen: at(1).toISOString(),
      fp: 'abc',
      fig: -3.5,
      told: null,
    };
    expect(parseState(`x\n${renderState(state)}\ny`)).toEqual(state);
    expect(parseState('<!-- pg-dr:state {"v":1,"since":3} -->')).toBeNull();
    expect(parseState('<!-- pg-dr:state {not json} -->')).toBeNull();
    expect(parseState(undefined)).toBeNull();
  });
});

describe('is it news?', () => {
  const prev = initialState(failing(3), T0);

  it('an identical hourly repeat is not news, and keeps since', () => {
    const { reason, next } = decide(prev, failing(3), at(1), 'ignored');
    expect(reason).toBeNull();
    expect(next.since).toBe(T0.toISOString());
    expect(next.seen).toBe(at(1).toISOString());
  });

  it('a condition that knows when it began is "since" then, on opening and on every update', () => {
    const began = '2025-02-28T05:00:00.000Z';
    const c = { ...failing(3), since: began };
    expect(initialState(c, T0).since).toBe(began);
    // An issue opened before the check knew (the old "since" = the first run that saw it).
    expect(decide(prev, c, at(1), 'ignored').next.since).toBe(began);
    const body = renderBody(c, initialState(c, at(1)), null, at(1));
    expect(body).toContain(
      '### Since\n\n2025-02-28 05:00 UTC — 1 d as of the last check (2025-03-01 05:00 UTC).',
    );
  });

  it('numbers, times, backup ids and hashes changing in the detail are not news', () => {
    const a =
      'Stale for 26 hours; newest 20250228T030000Z-3fa9c1 at 2025-02-28T03:04:12Z (sha 9f86d081884c).';
    const b =
      'Stale for 27 hours; newest 20250301T030000Z-aa0b1c at 2025-03-01 03:04 UTC (sha 2c26b46b68ff).';
    expect(fingerprintOf({ detail: a })).toBe(fingerprintOf({ detail: b }));
    expect(decide(prev, failing(3, a), at(1), '').reason).not.toBe('worse');
    expect(decide(initialState(failing(3, a), T0), failing(3, b), at(1), '').reason).toBeNull();
  });

  it('a different failure is news (changed)', () => {
    const c = failing(3, 'The backup failed 3 times: r2 answered 403 AccessDenied.');
    expect(decide(prev, c, at(1), '').reason).toBe('changed');
    // …unless the caller says what counts.
    const same = { ...c, fingerprint: 'backup-failed' };
    expect(
      decide(initialState({ ...failing(3), fingerprint: 'backup-failed' }, T0), same, at(1), '')
        .reason,
    ).toBeNull();
  });

  it('a worse figure is news; a better or equal one is not; per worseWhen', () => {
    expect(decide(prev, failing(4), at(1), '').reason).toBe('worse');
    expect(decide(prev, failing(2), at(1), '').reason).toBeNull();
    const rate = (figure: number): AlertCondition => ({
      ...failing(figure),
      key: 'low-success-rate',
      worseWhen: 'lower',
      detail: 'Success rate over the last 30 runs is low.',
    });
    const told80 = initialState(rate(80), T0);
    expect(decide(told80, rate(70), at(1), '').reason).toBe('worse');
    expect(decide(told80, rate(90), at(1), '').reason).toBeNull();
  });

  it('compares with what a person was last told, not the last hour', () => {
    // Told 3; drops to 2 quietly; back at 3 is not news; 4 is.
    const quiet = decide(prev, failing(2), at(1), '').next;
    expect(quiet.told).toBe(3);
    expect(quiet.fig).toBe(2);
    expect(decide(quiet, failing(3), at(2), '').reason).toBeNull();
    const worse = decide(quiet, failing(4), at(2), '');
    expect(worse.reason).toBe('worse');
    expect(worse.next.told).toBe(4);
  });

  it('a lost state (edited by hand) updates quietly once, since from the issue', () => {
    const { reason, next } = decide(null, failing(9), at(5), '2025-02-27T00:00:00Z');
    expect(reason).toBeNull();
    expect(next.since).toBe('2025-02-27T00:00:00Z');
    expect(next.told).toBe(9);
  });

  it('ignores a figure that is not a number', () => {
    const s = initialState(failing(Number.NaN), T0);
    expect(s.fig).toBeNull();
    expect(decide(s, failing(5), at(1), '').reason).toBeNull();
  });
});

describe('text a person reads', () => {
  it('the body says what, since when, last good backup, the run and the next step', () => {
    const c = failing(3);
    const state = decide(initialState(c, T0), c, at(26), '').next;
    const body = renderBody(c, state, 'https://github.com/o/r/actions/runs/1', at(26));
    expect(body.startsWith('<!-- pg-dr:alert key=backup-failed -->\n<!-- pg-dr:state {')).toBe(
      true,
    );
    expect(parseMarker(body)).toBe('backup-failed');
    expect(parseState(body)).toEqual(state);
    expect(body).toContain(
      '### What is wrong\n\nThe backup failed 3 times: pg_dump exited with 1.',
    );
    expect(body).toContain(
      '### Since\n\n2025-03-01 04:00 UTC — 1 d 2 h as of the last check (2025-03-02 06:00 UTC).',
    );
    expect(body).toContain(
      '### Last good backup\n\n`20250228T030000Z-3fa9c1`, finished 2025-02-28 03:04 UTC (2 d 2 h ago), stored at **r2**, **b2**.',
    );
    expect(body).toContain('[The run that last checked](https://github.com/o/r/actions/runs/1)');
    expect(body).toContain('### Next step\n\nRead the failed step of the run.');
  });

  it('says so when there is no good backup, or it is not known, or no run', () => {
    const none = renderBody(
      { ...failing(1), lastGood: null },
      initialState(failing(1), T0),
      null,
      T0,
    );
    expect(none).toContain('**None.** No complete backup was found.');
    expect(none).toContain('Not run from GitHub Actions.');
    const { lastGood: _, ...unknown } = failing(1);
    expect(renderBody(unknown, initialState(unknown, T0), null, T0)).toContain(
      'Not known to this check.',
    );
  });

  it('truncates huge details and titles to fit GitHub limits', () => {
    const c = { ...failing(1, 'x'.repeat(100_000)), title: 't'.repeat(1000) };
    expect(renderBody(c, initialState(c, T0), null, T0).length).toBeLessThan(65_536);
    expect(renderTitle(c).length).toBeLessThanOrEqual(250);
  });

  it('comments: worse with the figures, recovered with how long it lasted', () => {
    const prev = initialState(failing(3), T0);
    expect(renderChangeComment('worse', failing(5), prev, null, at(1))).toMatch(
      /^⚠️ \*\*Worse\*\* than last reported \(3 → 5\)\.\n\nThe backup failed/,
    );
    const rec = renderRecoveryComment(
      'backup `20250302T070000Z-77ab01` at r2 and b2.',
      T0.toISOString(),
      'https://run',
      at(27),
    );
    expect(rec).toBe(
      '✅ Recovered: backup `20250302T070000Z-77ab01` at r2 and b2.\n\nOpen since 2025-03-01 04:00 UTC (1 d 3 h).\nChecked 2025-03-02 07:00 UTC by [this run](https://run).',
    );
  });

  it('durations', () => {
    expect(formatDuration(30_000)).toBe('under a minute');
    expect(formatDuration(7 * 60_000)).toBe('7 min');
    expect(formatDuration(3_600_000)).toBe('1 h');
    expect(formatDuration(3 * 86_400_000)).toBe('3 d');
    // The user's case: the newest backup 55 h old reads in days and hours.
    expect(formatDuration(55 * 3_600_000)).toBe('2 d 7 h');
    expect(formatDuration((54 * 60 + 59) * 60_000)).toBe('2 d 6 h');
    expect(formatDuration(26 * 3_600_000 + 30 * 60_000)).toBe('1 d 2 h');
    expect(formatDuration(90 * 60_000)).toBe('1 h 30 min');
    expect(formatDuration(59 * 60_000 + 59_999)).toBe('59 min');
    expect(formatDuration(Number.NaN)).toBe('under a minute');
    expect(formatDuration(-5 * 3_600_000)).toBe('under a minute');
  });
});

describe('the GitHub client', () => {
  const TOKEN = 'ghs_unitTestToken0123456789';

  it('refuses to send a request whose text holds the token or another secret', async () => {
    const sent: string[] = [];
    const client = createGitHubClient({
      token: TOKEN,
      secrets: ['hunter2-db-password'],
      baseUrl: 'http://127.0.0.1:9',
      retries: 0,
    });
    // A fetch that records instead of sending.
    const request = {
      fetch: async (url: string) => {
        sent.push(url);
        return new Response('{"number":1}', {
          status: 201,
          headers: { 'content-type': 'application/json' },
        });
      },
    };
    await expect(
      client.rest.issues.create({
        owner: 'o',
        repo: 'r',
        title: 't',
        body: `leak ${TOKEN}`,
        request,
      }),
    ).rejects.toBeInstanceOf(SecretInRequestError);
    await expect(
      client.rest.issues.createComment({
        owner: 'o',
        repo: 'r',
        issue_number: 1,
        body: 'postgres://u:hunter2-db-password@db',
        request,
      }),
    ).rejects.toThrow(/Refused to send POST .*Nothing was posted/);
    await expect(
      client.rest.issues.update({ owner: 'o', repo: 'r', issue_number: 1, title: TOKEN, request }),
    ).rejects.toBeInstanceOf(SecretInRequestError);
    await client.rest.issues.create({ owner: 'o', repo: 'r', title: 't', body: 'clean', request });
    expect(sent).toEqual(['http://127.0.0.1:9/repos/o/r/issues']);
  });

  it('the refusal message never repeats the secret', () => {
    const e = new SecretInRequestError('POST /repos/o/r/issues');
    expect(describeError(e)).not.toContain(TOKEN);
    expect(describeError(e)).toContain('Refused to send POST /repos/o/r/issues');
  });

  it('names itself pg-dr/<version> and uses GITHUB_API_URL', () => {
    const client = createGitHubClient({ token: TOKEN, baseUrl: 'https://ghe.example/api/v3/' });
    const req = client.request.endpoint('GET /repos/{owner}/{repo}/issues', {
      owner: 'o',
      repo: 'r',
    });
    expect(req.url).toBe('https://ghe.example/api/v3/repos/o/r/issues');
    expect(req.headers['user-agent']).toMatch(/^pg-dr\/\d+\.\d+\.\d+ /);
    expect(apiUrlFromEnv({})).toBe('https://api.github.com');
    expect(apiUrlFromEnv({ GITHUB_API_URL: 'https://ghe.example/api/v3/' })).toBe(
      'https://ghe.example/api/v3',
    );
  });

  it('parses GITHUB_REPOSITORY', () => {
    expect(parseRepository({ GITHUB_REPOSITORY: 'acme/platform.web' })).toEqual({
      owner: 'acme',
      repo: 'platform.web',
    });
    expect(parseRepository({})).toBeNull();
    expect(parseRepository({ GITHUB_REPOSITORY: 'acme' })).toBeNull();
    expect(parseRepository({ GITHUB_REPOSITORY: 'a/b/c' })).toBeNull();
  });
});

describe('outcomes', () => {
  it('API errors become one actionable line', () => {
    const apiError = (status: number, message: string) =>
      Object.assign(new Error(message), { status, request: {}, response: { status } });
    expect(describeError(apiError(403, 'Resource not accessible by integration'))).toContain(
      '`permissions: issues: write`',
    );
    expect(describeError(apiError(401, 'Bad credentials'))).toContain('invalid or expired');
    expect(describeError(apiError(403, 'API rate limit exceeded'))).toContain('rate limited');
    expect(describeError(apiError(503, 'Service Unavailable'))).toContain('also after retries');
    expect(
      describeError(Object.assign(new Error('ECONNREFUSED'), { status: 500, request: {} })),
    ).toBe('could not reach the GitHub API (ECONNREFUSED), also after retries.');
  });

  it('a disabled feed skips with its reason', async () => {
    const feed = disabledFeed('no github-token');
    expect(await feed.raise(failing(1))).toEqual({
      state: 'skipped',
      key: 'backup-failed',
      reason: 'no github-token',
    });
    expect(await feed.open()).toEqual([]);
  });

  it('the summary table shows failures as warnings, and that the result stands', () => {
    expect(alertsSummary([])).toBeNull();
    const t = alertsSummary([
      { state: 'opened', key: 'backup-stale', issue: 7, url: 'https://x/7' },
      { state: 'failed', key: 'backup-failed', error: 'GitHub API 403 (…).' },
    ]);
    expect(t?.rows).toEqual([
      ['backup-stale', '🔴 opened #7 https://x/7'],
      ['backup-failed', '⚠️ failed: GitHub API 403 (…).'],
    ]);
    expect(t?.notes).toEqual([
      "⚠️ Alert `backup-failed` failed: GitHub API 403 (…). The command's own result stands.",
    ]);
  });
});

// The typing is checked by tsc (`npm run build`; tsconfig includes test/): the build fails
// should a misspelt key below ever compile again (its ts-expect-error goes unused).
describe('typed alert keys', () => {
  it('a misspelt key does not compile: not on a condition, not in raise or clear', async () => {
    const feed = disabledFeed('no github-token');
    // @ts-expect-error misspelt: such a clear() would leave the backup-stale issue open forever
    const cleared = await feed.clear('backup-stal', 'fine');
    // @ts-expect-error the bare kind is no key: the key names its destination
    await feed.clear('destination-unreachable', 'fine');
    // @ts-expect-error misspelt on a condition
    const raised = await feed.raise({ ...failing(1), key: 'backup-faild' });
    // @ts-expect-error misspelt per-destination key
    const typo: AlertCondition = { ...failing(1), key: 'destination-unreachabel:r2' };
    expect([cleared.key, raised.key, typo.key]).toEqual([
      'backup-stal',
      'backup-faild',
      'destination-unreachabel:r2',
    ]);
  });

  it('every kind pg-dr raises is a key, the per-destination one with its name', () => {
    const keys: AlertKey[] = [
      'backup-failed',
      'backup-degraded',
      'backup-changed',
      'backup-stale',
      destinationUnreachableKey('r2'),
      'verification-failed',
      'verification-stale',
      'low-success-rate',
      'backup-workflow-missing',
      'untrusted-objects',
      'wal-failed',
      'wal-degraded',
      'wal-stale',
    ];
    expect(keys.map((k) => k.split(':')[0])).toEqual([...ALERT_KEYS]);
    expect(keys.every(isValidAlertKey)).toBe(true);
    expectTypeOf(destinationUnreachableKey).returns.toExtend<AlertKey>();
    expectTypeOf<'backup-stale'>().toExtend<AlertKey>();
    expectTypeOf<'backup-stal'>().not.toExtend<AlertKey>();
  });
});
