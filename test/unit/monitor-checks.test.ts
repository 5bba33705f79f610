import { describe, expect, it } from 'vitest';
import { ALERT_KEYS } from '../../src/alerts/index.js';
import type { MonitorSettings } from '../../src/inputs/parse.js';
import type { BackupAtDestination } from '../../src/manifest/catalog.js';
import { CHECKS, type Finding } from '../../src/monitor/checks.js';
import type { MonitorView } from '../../src/monitor/view.js';

const NOW = new Date('2025-03-10T12:00:00Z');
const settings = {
  maxBackupAgeHours: 26,
  maxVerifyAgeDays: 8,
  backupWorkflow: 'backup.yml',
  minSuccessRate: 0.8,
} as MonitorSettings;

function backup(destination: string, id: string, problem: string | null = null) {
  return {
    id,
    destination,
    manifest: null,
    objects: new Map([['database.dump.age', 10]]),
    verificationKeys: [],
    verificationSignatures: new Set(),
    problem,
    hasManifest: problem === null,
    future: false,
    untrusted: false,
    manifestSha256: null,
  } satisfies BackupAtDestination;
}

function view(over: Partial<MonitorView> = {}): MonitorView {
  return {
    destinations: [
      { name: 'r2', bucket: 'pgdr', endpoint: 'https://r2.example.com' },
      { name: 'b2', bucket: 'pgdr', endpoint: 'https://b2.example.com' },
    ],
    scans: new Map([
      ['r2', [backup('r2', '20250310T030000Z-aaaaaa')]],
      ['b2', [backup('b2', '20250310T030000Z-aaaaaa')]],
    ]),
    unreachable: new Map(),
    verifications: [],
    runs: { state: 'not-configured', why: 'no github-token' },
    ...over,
  };
}

const evaluate = (v: MonitorView): Finding[] => CHECKS.flatMap((c) => c.evaluate(v, settings, NOW));

describe('monitor checks', () => {
  it('one check per alert kind, and each finding keyed by its check’s kind', () => {
    const kinds = CHECKS.map((c) => c.kind);
    expect(new Set(kinds).size).toBe(kinds.length);
    // Raised and cleared by the backup alone: its run's failure, and its comparison with
    // the backup before it (made once, when the backup is taken).
    expect(ALERT_KEYS.filter((k) => !kinds.includes(k))).toEqual([
      'backup-failed',
      'backup-changed',
      'wal-failed',
      'wal-degraded',
    ]);
    for (const c of CHECKS)
      for (const f of [c.evaluate(view(), settings, NOW)].flat())
        expect(f.key === c.kind || f.key.startsWith(`${c.kind}:`), f.key).toBe(true);
  });

  it('an alert’s condition carries the finding’s key; ok and skipped raise nothing', () => {
    const stale = view({
      scans: new Map([['r2', [backup('r2', '20250308T030000Z-aaaaaa')]]]),
      unreachable: new Map([['b2', 'AccessDenied (HTTP 403)']]),
    });
    const byKey = new Map(evaluate(stale).map((f) => [f.key, f]));
    const alerts = [...byKey.values()].filter((f) => f.state === 'alert');
    expect(alerts.map((f) => f.key)).toEqual([
      'destination-unreachable:b2',
      'backup-stale',
      'verification-stale',
    ]);
    for (const f of alerts) expect(f.state === 'alert' && f.condition.key).toBe(f.key);
    const staleFinding = byKey.get('backup-stale');
    expect(staleFinding?.state === 'alert' && staleFinding.condition.figure).toBe(2);
    // 57 h old, as a person reads an age; stale since the backup's time + the 26 h limit.
    expect(staleFinding?.detail).toBe('r2: newest 20250308T030000Z-aaaaaa is 2 d 9 h old');
    expect(staleFinding?.state === 'alert' && staleFinding.condition.since).toBe(
      '2025-03-09T05:00:00.000Z',
    );
    // Never verified: no time the condition began is known, so the feed's first sight stands.
    const never = byKey.get('verification-stale');
    expect(never?.state === 'alert' && never.condition.since).toBeUndefined();
    expect(byKey.get('backup-degraded')?.state).toBe('skipped');
    expect(byKey.get('destination-unreachable:r2')).toMatchObject({
      state: 'ok',
      detail: 'pgdr listed',
      recovery: 'r2 (pgdr) can be listed again.',
    });
  });

  it('nothing listed: only reachability is judged', () => {
    const none = view({
      scans: new Map(),
      unreachable: new Map([
        ['r2', 'timeout'],
        ['b2', 'timeout'],
      ]),
    });
    expect(evaluate(none).map((f) => [f.check, f.state])).toEqual([
      ['r2 reachable', 'alert'],
      ['b2 reachable', 'alert'],
      ['backup fresh', 'skipped'],
      ['newest backup everywhere', 'skipped'],
      ['nothing foreign in the bucket', 'skipped'],
      ['verified recently', 'skipped'],
      ['last verification passed', 'skipped'],
      ['backup workflow found', 'skipped'],
      ['backup runs succeed', 'skipped'],
      ['WAL fresh', 'skipped'],
    ]);
  });

  it('the success rate alerts below the minimum, and says why it is skipped', () => {
    const runs = (conclusions: (string | null)[]): MonitorView['runs'] => ({
      state: 'read',
      workflow: 'backup.yml',
      runs: conclusions.map((conclusion) => ({ conclusion })),
    });
    const rate = (v: MonitorView) => evaluate(v).find((f) => f.key === 'low-success-rate');
    expect(rate(view({ runs: runs(['success', 'failure', null]) }))).toMatchObject({
      state: 'alert',
      detail: '1 of the last 3 completed runs of backup.yml succeeded (33%, minimum 80%)',
      condition: { figure: 33, worseWhen: 'lower' },
    });
    // No run found: nothing is known about the rate; not 🟢 "0 of the last 0 … (100%)".
    expect(rate(view({ runs: runs([]) }))).toMatchObject({
      state: 'unknown',
      detail: 'no completed run of backup.yml found: the success rate is unknown',
    });
    expect(rate(view())?.detail).toBe('skipped: no github-token');
    expect(rate(view({ runs: { state: 'unreadable', error: 'HTTP 502' } }))?.detail).toBe(
      'runs unreadable: HTTP 502',
    );
  });

  it('a backup workflow GitHub does not know raises backup-workflow-missing; found, it clears', () => {
    const found = (v: MonitorView) => evaluate(v).find((f) => f.key === 'backup-workflow-missing');
    const missing = view({
      runs: { state: 'not-found', workflow: 'bakup.yml', error: 'GitHub API 404: Not Found' },
    });
    expect(found(missing)).toMatchObject({
      state: 'alert',
      detail: 'bakup.yml not found: GitHub API 404: Not Found',
      condition: { key: 'backup-workflow-missing' },
    });
    const f = found(missing);
    expect(f?.state === 'alert' && f.condition.title).toBe(
      'pg-dr: the backup workflow bakup.yml does not exist',
    );
    expect(evaluate(missing).find((x) => x.key === 'low-success-rate')?.state).toBe('skipped');
    const back = found(view({ runs: { state: 'read', workflow: 'backup.yml', runs: [] } }));
    expect(back).toMatchObject({ state: 'ok', detail: 'backup.yml found' });
    expect(found(view())?.state).toBe('skipped');
  });

  it('verification ages read as ages, and their alert begins at the last one + the limit', () => {
    const v = (startedAt: string, ok = true) => ({
      destination: 'r2',
      v: {
        backupId: '20250310T030000Z-aaaaaa',
        level: 'restore',
        ok,
        error: ok ? null : 'boom',
        startedAt,
      },
    });
    const old = view({
      verifications: [v('2025-03-01T06:00:00Z')] as unknown as MonitorView['verifications'],
    });
    const f = evaluate(old).find((x) => x.key === 'verification-stale');
    expect(f).toMatchObject({ state: 'alert', detail: 'last verification 9 d 6 h ago' });
    expect(f?.state === 'alert' && f.condition.since).toBe('2025-03-09T06:00:00.000Z');
    const failed = view({
      verifications: [v('2025-03-09T06:00:00Z', false)] as unknown as MonitorView['verifications'],
    });
    const g = evaluate(failed).find((x) => x.key === 'verification-failed');
    expect(g?.state === 'alert' && g.condition.since).toBe('2025-03-09T06:00:00.000Z');
  });
});

describe('monitor check: WAL fresh (wal-stale)', () => {
  const walCheck = CHECKS.find((c) => c.kind === 'wal-stale');
  const run = (minutesAgo: number) => ({
    runId: '20250310T115000Z-abcdef',
    endAt: new Date(NOW.getTime() - minutesAgo * 60_000),
    finishedAt: new Date(NOW.getTime() - minutesAgo * 60_000 + 30_000),
    endLsn: '0/5000000',
  });
  const state = (v: MonitorView, limit?: number) =>
    [
      walCheck?.evaluate(v, { ...settings, ...(limit ? { maxWalAgeMinutes: limit } : {}) }, NOW),
    ].flat()[0];

  it('is skipped where no WAL is shipped, and when the records cannot be read', () => {
    expect(state(view({ wal: { state: 'read', runs: [] } }))?.state).toBe('skipped');
    expect(state(view({ wal: null }))?.state).toBe('skipped');
    expect(state(view({ wal: { state: 'unreadable', error: 'boom' } }))?.detail).toContain('boom');
  });

  it('is ok within max-wal-age-minutes (default 30) and raises wal-stale past it, since the limit was crossed', () => {
    expect(state(view({ wal: { state: 'read', runs: [run(29)] } }))?.state).toBe('ok');
    const stale = state(view({ wal: { state: 'read', runs: [run(31)] } }));
    expect(stale?.state).toBe('alert');
    if (stale?.state !== 'alert') throw new Error('no alert');
    expect(stale.condition.title).toBe('pg-dr: no WAL shipped for 31 min (limit 30 min)');
    expect(stale.condition.since).toBe(new Date(NOW.getTime() - 60_000).toISOString());
    expect(state(view({ wal: { state: 'read', runs: [run(31)] } }), 45)?.state).toBe('ok');
  });
});
