import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PrefixNeighbours } from '../../src/manifest/catalog.js';
import type { Manifest } from '../../src/manifest/schema.js';
import { DEFAULT_STORED_RATIO, estimateStored, liveEstimate } from '../../src/pipeline/estimate.js';
import { createCliHost } from '../../src/report/host.js';
import {
  etaSeconds,
  formatDuration,
  LOG_EVERY_MS,
  LogPacer,
  percentDone,
  progressLine,
  startProgress,
  type Task,
  type Total,
} from '../../src/report/progress.js';
import { plantedManifest } from '../harness/plant.js';

const MiB = 1024 * 1024;
const exact = (bytes: number): Total => ({ bytes, estimate: false });
const guess = (bytes: number): Total => ({ bytes, estimate: true });

describe('formatDuration', () => {
  it('reads like a clock: m:ss, then h:mm:ss', () => {
    expect(formatDuration(0)).toBe('0:00');
    expect(formatDuration(7.4)).toBe('0:07');
    expect(formatDuration(59.6)).toBe('1:00');
    expect(formatDuration(725)).toBe('12:05');
    expect(formatDuration(3723)).toBe('1:02:03');
    expect(formatDuration(-3)).toBe('0:00');
  });
});

describe('percentDone', () => {
  it('is the whole percent done, null without a total', () => {
    expect(percentDone({ done: 0, total: exact(100), elapsedMs: 1 })).toBe(0);
    expect(percentDone({ done: 345, total: exact(1000), elapsedMs: 1 })).toBe(34);
    expect(percentDone({ done: 5, total: null, elapsedMs: 1 })).toBeNull();
    expect(percentDone({ done: 5, total: exact(0), elapsedMs: 1 })).toBeNull();
  });

  it('never claims more than 99% before the end, estimate or not', () => {
    expect(percentDone({ done: 999, total: exact(1000), elapsedMs: 1 })).toBe(99);
    expect(percentDone({ done: 1000, total: exact(1000), elapsedMs: 1 })).toBe(99);
    expect(percentDone({ done: 5000, total: guess(1000), elapsedMs: 1 })).toBe(99);
  });
});

describe('etaSeconds', () => {
  it('is what is left at the average rate so far', () => {
    // 25 of 100 MB in 10 s: 2.5 MB/s, 75 MB left → 30 s.
    expect(etaSeconds({ done: 25e6, total: exact(100e6), elapsedMs: 10_000 })).toBe(30);
    expect(etaSeconds({ done: 50e6, total: guess(100e6), elapsedMs: 5_000 })).toBe(5);
  });

  it('is unknown before the first byte, without a total, and once an estimate is passed', () => {
    expect(etaSeconds({ done: 0, total: exact(100), elapsedMs: 5_000 })).toBeNull();
    expect(etaSeconds({ done: 10, total: null, elapsedMs: 5_000 })).toBeNull();
    expect(etaSeconds({ done: 10, total: exact(100), elapsedMs: 0 })).toBeNull();
    expect(etaSeconds({ done: 120, total: guess(100), elapsedMs: 5_000 })).toBeNull();
  });

  it('is 0 once an exact total is reached (the consumer may still be finishing)', () => {
    expect(etaSeconds({ done: 100, total: exact(100), elapsedMs: 5_000 })).toBe(0);
  });
});

describe('progressLine', () => {
  it('an exact total: done / total, %, rate, elapsed and ETA', () => {
    const line = progressLine('restore from b2', {
      done: 100 * MiB,
      total: exact(400 * MiB),
      elapsedMs: 20_000,
    });
    expect(line).toBe(
      'restore from b2 100.0 MiB / 400.0 MiB · 25% · ETA 1:00 · 5.2 MB/s · elapsed 0:20',
    );
  });

  it('an estimate says so: ≈ on the total and the ETA, and each destination after', () => {
    const line = progressLine(
      'dump',
      { done: 300 * MiB, total: guess(1200 * MiB), elapsedMs: 10_000 },
      [
        ['b2', 290 * MiB],
        ['r2', 280 * MiB],
      ],
    );
    expect(line).toBe(
      'dump 300.0 MiB / ≈1.2 GiB (estimate) · 25% · ETA ≈0:30 · 31.5 MB/s · elapsed 0:10 · b2 290.0 MiB · r2 280.0 MiB',
    );
  });

  it('an estimate passed: 99%, no ETA, and it says the estimate was passed', () => {
    const line = progressLine('dump', { done: 130, total: guess(100), elapsedMs: 1000 });
    expect(line).toContain('/ ≈100 B (estimate, passed) · 99% · ETA — ·');
    // Reached, not passed: the last part may still be completing.
    const reached = progressLine('dump', { done: 100, total: guess(100), elapsedMs: 1000 });
    expect(reached).toContain('/ ≈100 B (estimate) · 99% · ETA — ·');
  });

  it('no total: the bytes, the rate and the time, no % or ETA', () => {
    const line = progressLine('bundle', { done: 3 * 1024, total: null, elapsedMs: 2000 });
    expect(line).toBe('bundle 3.0 KiB · 0.0 MB/s · elapsed 0:02');
  });

  it('an exact total reached while the consumer works: says what is still going on', () => {
    const f = { done: 100, total: exact(100), elapsedMs: 5000 };
    expect(progressLine('restore from b2', f, [], 'pg_restore -j 4 restoring')).toContain(
      '99% · ETA 0:00 · pg_restore -j 4 restoring · 0.0 MB/s · elapsed 0:05',
    );
    expect(progressLine('restore from b2', { ...f, done: 50 }, [], 'later')).not.toContain('later');
  });
});

describe('LogPacer (the CI log)', () => {
  it('a line at each 10% mark passed, and at most 30 s apart', () => {
    const p = new LogPacer(0);
    expect(p.due(1000, 5)).toBe(false);
    expect(p.due(2000, 10)).toBe(true);
    expect(p.due(3000, 12)).toBe(false);
    // Several marks passed within one tick: one line.
    expect(p.due(4000, 41)).toBe(true);
    expect(p.due(5000, 49)).toBe(false);
    // Slow going: 30 s after the last line, a line without a new mark.
    expect(p.due(4000 + LOG_EVERY_MS - 1, 49)).toBe(false);
    expect(p.due(4000 + LOG_EVERY_MS, 49)).toBe(true);
    expect(p.due(4000 + LOG_EVERY_MS + 1000, 50)).toBe(true);
  });

  it('without a total: every 30 s', () => {
    const p = new LogPacer(0);
    expect(p.due(29_999, null)).toBe(false);
    expect(p.due(30_000, null)).toBe(true);
    expect(p.due(59_999, null)).toBe(false);
    expect(p.due(60_000, null)).toBe(true);
  });

  it('an estimate refined downwards does not repeat the marks already logged', () => {
    const p = new LogPacer(0);
    expect(p.due(1000, 60)).toBe(true);
    expect(p.due(2000, 30)).toBe(false);
    expect(p.due(3000, 65)).toBe(false);
    expect(p.due(4000, 70)).toBe(true);
  });
});

/** A terminal that keeps what is written to it. */
function fakeTerminal(columns: number) {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  }) as unknown as NodeJS.WriteStream;
  Object.assign(stream, { isTTY: true, columns });
  return { stream, text: () => chunks.join('') };
}

describe('startProgress (its defaults: a 1 s timer, 10% or 30 s in a log)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function task(state: { done: number; total: Total | null }): Task {
    return { label: 'dump', done: () => state.done, total: () => state.total };
  }

  it('in a log: one line per 10% mark, then one every 30 s when slow; nothing after stop', () => {
    const logged: string[] = [];
    const sink = new Writable({
      write(c, _e, d) {
        logged.push(...String(c).split('\n').filter(Boolean));
        d();
      },
    });
    const host = createCliHost(sink);
    let clock = 0;
    const state = { done: 0, total: exact(100 * MiB) as Total | null };
    const p = startProgress(host, task(state), { now: () => clock });
    const step = (ms: number, done: number) => {
      clock += ms;
      state.done = done;
      vi.advanceTimersByTime(ms);
    };
    step(1000, 5 * MiB);
    expect(logged).toEqual([]);
    step(1000, 12 * MiB);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatch(
      /^dump 12\.0 MiB \/ 100\.0 MiB · 12% · ETA 0:15 · 6\.3 MB\/s · elapsed 0:02$/,
    );
    for (let i = 0; i < 29; i++) step(1000, 13 * MiB);
    expect(logged).toHaveLength(1);
    step(1000, 13 * MiB);
    expect(logged).toHaveLength(2);
    expect(logged[1]).toContain('13% ·');
    p.stop();
    step(60_000, 99 * MiB);
    expect(logged).toHaveLength(2);
  });

  it('says how an estimate was made once, and again when it changes', () => {
    const logged: string[] = [];
    const host = {
      ...createCliHost(new Writable({ write: (_c, _e, d) => d() })),
      info: (m: string) => logged.push(m),
    };
    let total: Total = { bytes: 100, estimate: true, basis: 'default ratio' };
    const p = startProgress(host, { label: 'dump', done: () => 1, total: () => total });
    vi.advanceTimersByTime(3000);
    expect(logged.filter((l) => l === 'default ratio')).toHaveLength(1);
    total = { bytes: 80, estimate: true, basis: 'previous ratio' };
    vi.advanceTimersByTime(3000);
    expect(logged.filter((l) => l.endsWith('ratio'))).toEqual(['default ratio', 'previous ratio']);
    p.stop();
  });

  it('on a terminal: the line is redrawn in place, cut to the width, and cleared at the end', () => {
    const term = fakeTerminal(60);
    const logged: string[] = [];
    const host = {
      ...createCliHost(new Writable({ write: (_c, _e, d) => d() })),
      info: (m: string) => logged.push(m),
    };
    let clock = 0;
    const state = { done: 10 * MiB, total: exact(40 * MiB) as Total | null };
    const p = startProgress(host, task(state), { tty: term.stream, now: () => clock });
    clock = 1000;
    vi.advanceTimersByTime(1000);
    clock = 2000;
    state.done = 20 * MiB;
    vi.advanceTimersByTime(1000);
    const draws = term.text().split('\r\x1b[K').filter(Boolean);
    expect(draws).toHaveLength(2);
    expect(draws[0]).toMatch(/^dump 10\.0 MiB \/ 40\.0 MiB · 25% · ETA 0:03 · 10\.5 MB\/s · el…$/);
    for (const d of draws) expect(d.length).toBeLessThanOrEqual(59);
    // A log line while the line is live clears it first (never glued to its end).
    p.host.info('Creating roles');
    expect(term.text().endsWith('\r\x1b[K')).toBe(true);
    expect(logged).toEqual(['Creating roles']);
    p.stop();
    // Nothing went to the log but the one line the work wrote.
    expect(logged).toEqual(['Creating roles']);
  });

  it('on a terminal that is not one (a pipe): the log lines', () => {
    const term = fakeTerminal(80);
    Object.assign(term.stream, { isTTY: false });
    const logged: string[] = [];
    const host = {
      ...createCliHost(new Writable({ write: (_c, _e, d) => d() })),
      info: (m: string) => logged.push(m),
    };
    let clock = 0;
    const state = { done: 0, total: exact(100) as Total | null };
    const p = startProgress(host, task(state), { tty: term.stream, now: () => clock });
    clock = 1000;
    state.done = 50;
    vi.advanceTimersByTime(1000);
    p.stop();
    expect(term.text()).toBe('');
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain('50%');
  });
});

function manifestWith(o: {
  id: string;
  sizeBytes: number;
  stored: number;
  compression: Manifest['database']['compression'];
}): Manifest {
  const m = plantedManifest({
    id: o.id,
    createdAt: '2026-11-29T02:00:00.000Z',
    version: '0.1.0',
    objects: [{ name: 'database.dump.zst.age', kind: 'database', data: Buffer.alloc(1) }],
    destinations: [],
  });
  return {
    ...m,
    database: { ...m.database, sizeBytes: o.sizeBytes, compression: o.compression },
    objects: m.objects.map((x) => ({ ...x, encrypted: { ...x.encrypted, bytes: o.stored } })),
  };
}

describe('the backup estimate', () => {
  it("the previous backup's ratio of stored bytes to database size, for the same compression", () => {
    const prev = manifestWith({
      id: '20261129T020000Z-aaaaaa',
      sizeBytes: 1000,
      stored: 200,
      compression: 'zstd',
    });
    expect(estimateStored(5000, 'zstd', prev)).toEqual({
      bytes: 1000,
      ratio: 0.2,
      from: '20261129T020000Z-aaaaaa',
    });
  });

  it('the stated default without a previous backup, or when it used another compression', () => {
    const prev = manifestWith({ id: 'x', sizeBytes: 1000, stored: 900, compression: 'none' });
    for (const p of [null, prev])
      expect(estimateStored(4000, 'zstd', p)).toEqual({
        bytes: 4000 * DEFAULT_STORED_RATIO.zstd,
        ratio: DEFAULT_STORED_RATIO.zstd,
        from: null,
      });
  });

  it('starts from the default and is refined when the previous manifest arrives', async () => {
    let arrive: (v: PrefixNeighbours | string) => void = () => undefined;
    const neighbours = new Promise<PrefixNeighbours | string>((r) => {
      arrive = r;
    });
    const total = liveEstimate(1_000_000, 'zstd', neighbours);
    expect(total()).toMatchObject({ bytes: 250_000, estimate: true });
    expect(total().basis).toMatch(/default ratio for zstd: no earlier backup/);
    const previous = manifestWith({
      id: '20261129T020000Z-bbbbbb',
      sizeBytes: 2_000_000,
      stored: 300_000,
      compression: 'zstd',
    });
    arrive({ previous, others: [] });
    await neighbours;
    expect(total()).toMatchObject({ bytes: 150_000, estimate: true });
    expect(total().basis).toContain('× 0.15 (the ratio of backup 20261129T020000Z-bbbbbb)');
  });

  it('stays on the default when the previous backups cannot be read', async () => {
    const total = liveEstimate(1_000_000, 'gzip', Promise.resolve('no destination'));
    await Promise.resolve();
    expect(total()).toMatchObject({ bytes: 300_000, estimate: true });
  });
});
