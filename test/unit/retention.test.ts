import { describe, expect, it } from 'vitest';
import { INPUT_SPECS } from '../../src/inputs/spec.generated.js';
import { backupIdTime } from '../../src/manifest/id.js';
import { type PruneCandidate, planPrune } from '../../src/retention/plan.js';
import {
  applyPolicy,
  isoWeek,
  type RetentionRules,
  type TimedBackup,
  utcDay,
} from '../../src/retention/policy.js';

// Timelines are generated; every expected set below is written out by hand.

/** `2026-11-26T02:00` → the backup made then (UTC). */
function at(minute: string): TimedBackup {
  const id = `${minute.replace(/[-:]/g, '')}00Z-7f3a9c`;
  return { id, time: backupIdTime(id) };
}
/** The 02:00 UTC backup of a day. */
const day = (date: string): string => at(`${date}T02:00`).id;

/** One backup a day at 02:00 UTC from `from` to `to`, both included. */
function daily(from: string, to: string, skip: (date: string) => boolean = () => false) {
  const out: TimedBackup[] = [];
  for (let t = Date.parse(`${from}T02:00Z`); t <= Date.parse(`${to}T02:00Z`); t += 86_400_000) {
    const date = new Date(t).toISOString().slice(0, 10);
    if (!skip(date)) out.push(at(`${date}T02:00`));
  }
  return out;
}

const NONE: RetentionRules = { last: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0 };

/** The action's defaults, read from action.yml (via the generated spec). */
const DEFAULTS: RetentionRules = {
  last: Number(INPUT_SPECS['keep-last'].default),
  daily: Number(INPUT_SPECS['keep-daily'].default),
  weekly: Number(INPUT_SPECS['keep-weekly'].default),
  monthly: Number(INPUT_SPECS['keep-monthly'].default),
  yearly: Number(INPUT_SPECS['keep-yearly'].default),
};

const kept = (r: { keep: Map<string, string[]> }) => [...r.keep.keys()];

describe('UTC periods', () => {
  it('labels ISO weeks by their week-year, Monday to Sunday', () => {
    const w = (s: string) => isoWeek(new Date(s));
    expect(w('2026-11-25T02:00:00Z')).toBe('2026-W48');
    expect(w('2026-12-28T00:00:00Z')).toBe('2026-W53'); // Monday of week 53 (2026 starts on a Thursday)
    expect(w('2027-01-01T02:00:00Z')).toBe('2026-W53');
    expect(w('2027-01-03T23:59:59Z')).toBe('2026-W53'); // Sunday, last second of the week
    expect(w('2027-01-04T00:00:00Z')).toBe('2027-W01');
    expect(w('2024-12-30T02:00:00Z')).toBe('2025-W01'); // Monday before New Year
    expect(w('2021-01-03T02:00:00Z')).toBe('2020-W53');
    expect(w('2026-01-01T02:00:00Z')).toBe('2026-W01');
  });
  it('uses UTC, not the local zone', () => {
    expect(utcDay(new Date('2026-11-25T23:30:00-05:00'))).toBe('2026-11-26');
  });
});

describe('applyPolicy (restic forget semantics)', () => {
  it('the defaults are 7 / 14 / 8 / 12 / 3', () => {
    expect(DEFAULTS).toEqual({ last: 7, daily: 14, weekly: 8, monthly: 12, yearly: 3 });
  });

  it('daily 02:00 backups over three years, default rules', () => {
    const backups = daily('2024-01-01', '2026-12-31');
    expect(backups).toHaveLength(366 + 365 + 365);
    const r = applyPolicy(backups, DEFAULTS);
    const expected = [
      // keep-daily 14 (covers keep-last 7 and the weeks of 12-31, 12-27, 12-20)
      '2026-12-31',
      '2026-12-30',
      '2026-12-29',
      '2026-12-28',
      '2026-12-27',
      '2026-12-26',
      '2026-12-25',
      '2026-12-24',
      '2026-12-23',
      '2026-12-22',
      '2026-12-21',
      '2026-12-20',
      '2026-12-19',
      '2026-12-18',
      // the rest of keep-weekly 8: Sundays of 2026-W50 … W46, and keep-monthly 12
      '2026-12-13',
      '2026-12-06',
      '2026-11-30',
      '2026-11-29',
      '2026-11-22',
      '2026-11-15',
      '2026-10-31',
      '2026-09-30',
      '2026-08-31',
      '2026-07-31',
      '2026-06-30',
      '2026-05-31',
      '2026-04-30',
      '2026-03-31',
      '2026-02-28',
      '2026-01-31',
      // keep-yearly 3 (2026 is 2026-12-31); the oldest backup is not kept: every rule is full
      '2025-12-31',
      '2024-12-31',
    ].map(day);
    expect(kept(r)).toEqual(expected);
    expect(r.remove).toHaveLength(1096 - 32);
    expect(r.remove).toContain(day('2024-01-01'));
    expect(r.keep.get(day('2026-12-31'))).toEqual([
      'last',
      'daily 2026-12-31',
      'weekly 2026-W53',
      'monthly 2026-12',
      'yearly 2026',
    ]);
    expect(r.keep.get(day('2026-12-25'))).toEqual(['last', 'daily 2026-12-25']);
    expect(r.keep.get(day('2026-12-20'))).toEqual(['daily 2026-12-20', 'weekly 2026-W51']);
    expect(r.keep.get(day('2026-11-30'))).toEqual(['monthly 2026-11']);
    expect(r.keep.get(day('2026-11-15'))).toEqual(['weekly 2026-W46']);
    expect(r.keep.get(day('2024-12-31'))).toEqual(['yearly 2024']);
  });

  it('crosses the year and ISO week 53 (2026-12-28 … 2027-01-03)', () => {
    const backups = daily('2026-12-14', '2027-01-06');
    const r = applyPolicy(backups, { ...NONE, weekly: 3, monthly: 2, yearly: 2 });
    expect([...r.keep]).toEqual([
      [day('2027-01-06'), ['weekly 2027-W01', 'monthly 2027-01', 'yearly 2027']],
      // Sunday 2027-01-03 closes ISO week 2026-W53, which began on Monday 2026-12-28
      [day('2027-01-03'), ['weekly 2026-W53']],
      [day('2026-12-31'), ['monthly 2026-12', 'yearly 2026']],
      [day('2026-12-27'), ['weekly 2026-W52']],
    ]);
    expect(r.remove).toHaveLength(24 - 4);
  });

  it('counts only periods that have a backup: a missing month costs nothing', () => {
    const backups = daily('2026-01-01', '2026-06-30', (d) => d.startsWith('2026-04'));
    const r = applyPolicy(backups, { ...NONE, monthly: 3 });
    // June, May, then March: April has no backup and is not one of the 3 months.
    expect(kept(r)).toEqual([day('2026-06-30'), day('2026-05-31'), day('2026-03-31')]);
  });

  it('counts only days that have a backup: a 10-day gap', () => {
    const backups = [...daily('2026-03-01', '2026-03-10'), ...daily('2026-03-21', '2026-03-23')];
    const r = applyPolicy(backups, { ...NONE, daily: 5 });
    expect(kept(r)).toEqual(
      ['2026-03-23', '2026-03-22', '2026-03-21', '2026-03-10', '2026-03-09'].map(day),
    );
  });

  it('several a day: daily keeps the newest of the day, last counts each backup', () => {
    const backups: TimedBackup[] = [];
    for (const date of ['2026-11-20', '2026-11-21', '2026-11-22', '2026-11-23', '2026-11-24'])
      for (const hh of ['02', '08', '14', '20']) backups.push(at(`${date}T${hh}:00`));
    backups.push(at('2026-11-25T02:00'), at('2026-11-25T08:00'), at('2026-11-25T14:00'));
    const shuffled = [...backups].reverse(); // order of input does not matter
    const r = applyPolicy(shuffled, { ...NONE, last: 3, daily: 4 });
    expect([...r.keep]).toEqual([
      [at('2026-11-25T14:00').id, ['last', 'daily 2026-11-25']],
      [at('2026-11-25T08:00').id, ['last']],
      [at('2026-11-25T02:00').id, ['last']],
      [at('2026-11-24T20:00').id, ['daily 2026-11-24']],
      [at('2026-11-23T20:00').id, ['daily 2026-11-23']],
      [at('2026-11-22T20:00').id, ['daily 2026-11-22']],
    ]);
    expect(r.remove).toHaveLength(23 - 6);
    expect(r.remove[0]).toBe(at('2026-11-24T14:00').id); // newest first
  });

  it('keeps the oldest backup while a rule has periods left (restic ≥ 0.17)', () => {
    const backups = [at('2026-11-24T01:00'), at('2026-11-24T02:00'), at('2026-11-25T02:00')];
    const unfilled = applyPolicy(backups, { ...NONE, daily: 7 });
    expect([...unfilled.keep]).toEqual([
      [day('2026-11-25'), ['daily 2026-11-25']],
      [day('2026-11-24'), ['daily 2026-11-24']],
      [at('2026-11-24T01:00').id, ['oldest daily 2026-11-24']],
    ]);
    const filled = applyPolicy(backups, { ...NONE, daily: 2 });
    expect(kept(filled)).toEqual([day('2026-11-25'), day('2026-11-24')]);
    expect(filled.remove).toEqual([at('2026-11-24T01:00').id]);
  });

  it('a rule of 0 keeps nothing; all rules 0 is an empty policy that keeps everything', () => {
    const backups = daily('2026-11-20', '2026-11-25');
    expect(kept(applyPolicy(backups, { ...NONE, last: 2 }))).toEqual([
      day('2026-11-25'),
      day('2026-11-24'),
    ]);
    const empty = applyPolicy(backups, NONE);
    expect(empty.remove).toEqual([]);
    expect(empty.keep.get(day('2026-11-20'))).toEqual(['policy is empty']);
  });

  it('rejects bad rules and duplicate ids', () => {
    expect(() => applyPolicy([], { ...NONE, daily: -1 })).toThrow(/daily/);
    expect(() => applyPolicy([], { ...NONE, weekly: 1.5 })).toThrow(/weekly/);
    expect(() => applyPolicy([], { ...NONE, last: Number.NaN })).toThrow(/last/);
    const b = at('2026-11-25T02:00');
    expect(() => applyPolicy([b, b], DEFAULTS)).toThrow(/twice/);
  });
});

describe('planPrune safety rails', () => {
  const NOW = new Date('2026-11-25T03:00:00Z');
  const entry = (
    b: TimedBackup,
    complete = true,
    latestVerification: PruneCandidate['latestVerification'] = null,
  ): PruneCandidate => ({ ...b, complete, latestVerification });
  const plan = (entries: PruneCandidate[], rules: RetentionRules, extra = {}) =>
    planPrune({ entries, rules, now: NOW, maxBackupAgeHours: 26, ...extra });
  const actions = (p: ReturnType<typeof planPrune>) =>
    Object.fromEntries(p.decisions.map((d) => [d.id, d.action]));

  it('ignores a backup dated in the future: not newest, not counted, not deleted', () => {
    const future = { ...entry(at('2099-01-01T02:00')), future: true };
    const p = plan([future, entry(at('2026-11-25T02:00')), entry(at('2026-11-24T02:00'))], {
      ...NONE,
      last: 1,
    });
    expect(actions(p)).toEqual({
      [future.id]: 'keep',
      [at('2026-11-25T02:00').id]: 'keep',
      [at('2026-11-24T02:00').id]: 'delete',
    });
    expect(p.decisions[0]?.reasons).toEqual(['dated in the future: ignored']);
    expect(p.decisions[1]?.reasons).toContain('newest');
  });

  it('never deletes a folder that has a manifest, however damaged', () => {
    const damaged = { ...entry(at('2026-11-01T02:00'), false), hasManifest: true };
    const bare = entry(at('2026-11-02T02:00'), false);
    const p = plan([entry(at('2026-11-25T02:00')), bare, damaged], { ...NONE, last: 1 });
    expect(actions(p)[damaged.id]).toBe('keep');
    expect(actions(p)[bare.id]).toBe('delete');
  });

  it('deletes nothing when the plan would delete more than maxDeletions', () => {
    const entries = [
      entry(at('2026-11-25T02:00')),
      entry(at('2026-11-24T02:00')),
      entry(at('2026-11-23T02:00')),
      entry(at('2026-11-22T02:00')),
    ];
    const p = plan(entries, { ...NONE, last: 1 }, { maxDeletions: 2 });
    expect(p.refused).toMatch(/would delete 3 backups, more than max-deletions \(2\)/);
    expect(p.decisions.every((d) => d.action === 'keep')).toBe(true);
    expect(plan(entries, { ...NONE, last: 1 }, { maxDeletions: 3 }).refused).toBeNull();
  });

  it('keeps the newest complete backup, not the newest folder', () => {
    const p = plan(
      [
        entry(at('2026-11-25T02:00'), false), // in flight
        entry(at('2026-11-24T02:00')),
        entry(at('2026-11-23T02:00')),
      ],
      { ...NONE, yearly: 1 },
    );
    expect(p.refused).toBeNull();
    expect(p.decisions).toEqual([
      { id: day('2026-11-25'), action: 'keep', reasons: ['incomplete: in flight?'] },
      { id: day('2026-11-24'), action: 'keep', reasons: ['newest', 'yearly 2026'] },
      { id: day('2026-11-23'), action: 'delete', reasons: ['no keep rule matches'] },
    ]);
  });

  it('refuses to prune anything while the newest complete backup is stale', () => {
    const entries = [
      entry(at('2026-11-24T00:00')), // 27 h before NOW
      ...daily('2026-10-01', '2026-11-20').map((b) => entry(b)),
      entry(at('2026-09-01T02:00'), false), // old incomplete: would be deleted
    ];
    const p = plan(entries, { ...NONE, last: 1 });
    expect(p.refused).toMatch(/20261124T000000Z-7f3a9c\) is 27 h old.*max-backup-age-hours \(26\)/);
    expect(p.decisions).toHaveLength(53);
    expect(p.decisions.every((d) => d.action === 'keep')).toBe(true);
    // 26 h old exactly is still fresh
    const fresh = planPrune({
      entries,
      rules: { ...NONE, last: 1 },
      now: new Date('2026-11-25T02:00:00Z'),
      maxBackupAgeHours: 26,
    });
    expect(fresh.refused).toBeNull();
    expect(fresh.decisions.filter((d) => d.action === 'keep').map((d) => d.id)).toEqual([
      at('2026-11-24T00:00').id,
    ]);
  });

  it('refuses when there is no complete backup at all', () => {
    const p = plan([entry(at('2026-11-01T02:00'), false)], DEFAULTS);
    expect(p.refused).toMatch(/no complete backup/);
    expect(actions(p)).toEqual({ [day('2026-11-01')]: 'keep' });
  });

  it('deletes incomplete backups older than 24 h, keeps younger ones', () => {
    const p = plan(
      [
        entry(at('2026-11-25T02:00')),
        entry(at('2026-11-24T04:00'), false), // 23 h
        entry(at('2026-11-24T02:00'), false), // 25 h
      ],
      DEFAULTS,
    );
    expect(p.decisions).toEqual([
      {
        id: day('2026-11-25'),
        action: 'keep',
        reasons: [
          'newest',
          'last',
          'daily 2026-11-25',
          'weekly 2026-W48',
          'monthly 2026-11',
          'yearly 2026',
        ],
      },
      { id: at('2026-11-24T04:00').id, action: 'keep', reasons: ['incomplete: in flight?'] },
      { id: day('2026-11-24'), action: 'delete', reasons: ['incomplete, older than 24 h'] },
    ]);
  });

  describe('verification', () => {
    const v = (ok: boolean, iso: string) => ({ ok, at: new Date(iso) });
    // 2026-11-01 … 11-25, keep-last 3 keeps 11-25, 11-24, 11-23 only.
    const base = () => daily('2026-11-01', '2026-11-25').map((b) => entry(b));
    const withV = (list: PruneCandidate[], date: string, ver: { ok: boolean; at: Date }) =>
      list.map((e) => (e.id === day(date) ? { ...e, latestVerification: ver } : e));

    it('keeps the only backup verified in the window, even when its verification failed', () => {
      let entries = withV(base(), '2026-11-20', v(false, '2026-11-21T05:00:00Z'));
      entries = withV(entries, '2026-11-05', v(true, '2026-11-06T05:00:00Z')); // outside 8 d
      const p = plan(entries, { ...NONE, last: 3 });
      expect(p.decisions.filter((d) => d.action === 'keep')).toEqual([
        { id: day('2026-11-25'), action: 'keep', reasons: ['newest', 'last'] },
        { id: day('2026-11-24'), action: 'keep', reasons: ['last'] },
        { id: day('2026-11-23'), action: 'keep', reasons: ['last'] },
        {
          id: day('2026-11-20'),
          action: 'keep',
          reasons: ['only verified in the last 8 d (failed)'],
        },
      ]);
      // with a wider window 11-05 is verified too: 11-20 is no longer the only one,
      // and 11-05 is the newest that passed
      const wide = plan(entries, { ...NONE, last: 3 }, { verifyWindowDays: 30 });
      expect(actions(wide)[day('2026-11-20')]).toBe('delete');
      expect(wide.decisions.find((d) => d.id === day('2026-11-05'))?.reasons).toEqual([
        'newest verified ok',
      ]);
    });

    it('keeps the newest backup that passed verification in the window', () => {
      let entries = withV(base(), '2026-11-20', v(false, '2026-11-21T05:00:00Z'));
      entries = withV(entries, '2026-11-18', v(true, '2026-11-19T05:00:00Z'));
      entries = withV(entries, '2026-11-17', v(true, '2026-11-18T05:00:00Z'));
      const p = plan(entries, { ...NONE, last: 3 });
      const keptIds = p.decisions.filter((d) => d.action === 'keep').map((d) => d.id);
      expect(keptIds).toEqual(['2026-11-25', '2026-11-24', '2026-11-23', '2026-11-18'].map(day));
      expect(p.decisions.find((d) => d.id === day('2026-11-18'))?.reasons).toEqual([
        'newest verified ok',
      ]);
    });

    it('a verification inside keep rules adds its reason', () => {
      const entries = withV(base(), '2026-11-24', v(true, '2026-11-24T05:00:00Z'));
      const p = plan(entries, { ...NONE, last: 3 });
      expect(p.decisions.find((d) => d.id === day('2026-11-24'))?.reasons).toEqual([
        'only verified in the last 8 d (passed)',
        'last',
      ]);
      expect(p.decisions.filter((d) => d.action === 'keep')).toHaveLength(3);
    });
  });

  it('the README example', () => {
    const v = (ok: boolean, iso: string) => ({ ok, at: new Date(iso) });
    const p = planPrune({
      entries: [
        entry(at('2026-11-26T02:00')),
        entry(at('2026-11-25T20:00'), false),
        entry(at('2026-11-25T14:00')),
        entry(at('2026-11-25T02:00')),
        entry(at('2026-11-24T02:00'), true, v(false, '2026-11-25T05:00:00Z')),
        entry(at('2026-11-23T02:00')),
        entry(at('2026-11-22T02:00')),
        entry(at('2026-11-21T02:00'), true, v(true, '2026-11-22T05:00:00Z')),
        entry(at('2026-11-20T02:00'), false),
        entry(at('2026-11-15T02:00')),
        entry(at('2026-10-31T02:00')),
        entry(at('2026-10-15T02:00')),
      ],
      rules: { last: 2, daily: 3, weekly: 2, monthly: 2, yearly: 2 },
      now: new Date('2026-11-26T03:00:00Z'),
      maxBackupAgeHours: 26,
    });
    expect(p.refused).toBeNull();
    expect(p.decisions.map((d) => [d.id.slice(0, 13), d.action, d.reasons.join(', ')])).toEqual([
      [
        '20261126T0200',
        'keep',
        'newest, last, daily 2026-11-26, weekly 2026-W48, monthly 2026-11, yearly 2026',
      ],
      ['20261125T2000', 'keep', 'incomplete: in flight?'],
      ['20261125T1400', 'keep', 'last, daily 2026-11-25'],
      ['20261125T0200', 'delete', 'no keep rule matches'],
      ['20261124T0200', 'keep', 'daily 2026-11-24'],
      ['20261123T0200', 'delete', 'no keep rule matches'],
      ['20261122T0200', 'keep', 'weekly 2026-W47'],
      ['20261121T0200', 'keep', 'newest verified ok'],
      ['20261120T0200', 'delete', 'incomplete, older than 24 h'],
      ['20261115T0200', 'delete', 'no keep rule matches'],
      ['20261031T0200', 'keep', 'monthly 2026-10'],
      ['20261015T0200', 'keep', 'oldest yearly 2026'],
    ]);
  });
});
