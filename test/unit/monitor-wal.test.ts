import { describe, expect, it } from 'vitest';
import { rpoChart, rpoSeries, rpoSummary, type WalRunTimes } from '../../src/monitor/wal.js';

const T0 = Date.parse('2026-11-30T12:00:00Z');
const min = (m: number) => new Date(T0 + m * 60_000);

/** A run every 5 minutes that took 40 s, ending its WAL at its start. */
function runs(starts: readonly number[]): WalRunTimes[] {
  return starts.map((m) => ({ endAt: min(m), finishedAt: new Date(min(m).getTime() + 40_000) }));
}

describe('achieved RPO', () => {
  it('is, before each run finished, the time since the newest WAL stored before it', () => {
    const r = runs([0, 5, 10, 30]);
    const series = rpoSeries(r, min(31));
    expect(series.map((p) => p.seconds)).toEqual([340, 340, 1240]);
    const s = rpoSummary(r, min(31));
    expect(s.worstSeconds).toBe(1240);
    expect(s.worstAt?.toISOString()).toBe('2026-11-30T12:30:40.000Z');
    expect(s.medianSeconds).toBe(340);
    expect(s.nowSeconds).toBe(60);
  });

  it('counts the exposure now when it is the worst (the shipping stopped)', () => {
    const s = rpoSummary(runs([0, 5]), min(125));
    expect(s.nowSeconds).toBe(120 * 60);
    expect(s.worstSeconds).toBe(120 * 60);
    expect(s.worstAt?.toISOString()).toBe(min(125).toISOString());
  });

  it('leaves out runs older than the window, and says when there is none', () => {
    const old = runs([-8 * 24 * 60, -8 * 24 * 60 + 5]);
    expect(rpoSeries(old, min(0))).toEqual([]);
    expect(rpoSummary([], min(0)).worstSeconds).toBeNull();
    expect(rpoChart([], min(0))).toContain('No WAL run recorded yet.');
  });

  it('charts the worst per day over 7 days', () => {
    const chart = rpoChart(runs([0, 5, 10, 30]), min(31));
    expect(chart).toContain('Achieved RPO over 7 days: worst **20 min 40 s**');
    expect(chart).toMatch(/bar \[0, 0, 0, 0, 0, 0, 20\.7\]/);
    expect(chart).toContain('x-axis "day (UTC), 11-24 to 11-30"');
  });
});
