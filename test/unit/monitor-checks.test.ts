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
    expect(ALERT_KEYS.filter((k) => !kinds.includes(k))).toEqual(['backup-failed']);
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
      ['backup runs succeed', 'skipped'],
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
    expect(rate(view({ runs: runs([]) }))?.state).toBe('ok');
    expect(rate(view())?.detail).toBe('skipped: no github-token');
    expect(rate(view({ runs: { state: 'unreadable', error: 'HTTP 502' } }))?.detail).toBe(
      'runs unreadable: HTTP 502',
    );
  });
});
