import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MonitorSettings } from '../../src/inputs/parse.js';
import { tableToMarkdown } from '../../src/report/host.js';
import { type FakeGitHubApi, startGitHubApi } from '../harness/github-api.js';
import { monitorAt, monitorSettings } from '../harness/monitor.js';
import { nightlyHistory, plantComplete, plantNights } from '../harness/plant.js';
import { destinationInputs } from '../harness/run.js';
import { type S3Pair, startS3Pair } from '../harness/s3.js';

let s3: S3Pair;
let gh: FakeGitHubApi;
const token = `ghs_${randomBytes(18).toString('hex')}`;

// A month of nightly backups at both destinations, checked at 09:00 on 1 December: the
// newest (30 Nov, 02:00) is 31 h old, so backups are stale; 24 and 25 Nov were missed.
const NOW = new Date('2026-12-01T09:00:00Z');
const MISSED = ['2026-11-24', '2026-11-25'];
const SLOW = '2026-11-20';
const PREFIX = 'chart/';

beforeAll(async () => {
  s3 = await startS3Pair();
  gh = await startGitHubApi({ token, owner: 'acme', repo: 'platform' });
  const nights = nightlyHistory(NOW, { missed: MISSED, slowDay: SLOW });
  await plantNights(
    [
      { server: s3.primary, bucket: 'pgdr-primary' },
      { server: s3.secondary, bucket: 'pgdr-secondary' },
    ],
    PREFIX,
    nights,
  );
});
afterAll(async () => {
  await Promise.all([s3?.stop(), gh?.stop()]);
});

function settings(extra: Record<string, string> = {}): MonitorSettings {
  return monitorSettings({
    prefix: PREFIX,
    ...destinationInputs(s3.primary, s3.secondary),
    ...extra,
  });
}

function runMonitor(at: Date, s = settings()) {
  return monitorAt(s, { at, apiUrl: gh.url, token });
}

/** Every mermaid xychart in some markdown: its title, x-axis labels and bar values. */
function charts(markdown: string): { title: string; days: string[]; bars: number[] }[] {
  const blocks = [
    ...markdown.matchAll(/```mermaid\n%%\{init: .*\}%%\nxychart-beta\n([\s\S]*?)```/g),
  ];
  return blocks.map(([, body]) => {
    const line = (name: string) => new RegExp(`^ {2}${name} (.*)$`, 'm').exec(body ?? '')?.[1];
    return {
      title: JSON.parse(line('title') ?? '""') as string,
      days: JSON.parse(/\[.*\]$/.exec(line('x-axis') ?? '')?.[0] ?? '[]') as string[],
      bars: JSON.parse(line('bar') ?? '[]') as number[],
    };
  });
}

/** The 30 nights the chart should show: 2 Nov … 1 Dec, as `MM-DD`. */
const DAYS = Array.from({ length: 30 }, (_, i) =>
  new Date(Date.UTC(2026, 10, 2 + i)).toISOString().slice(5, 10),
);

/** The chart's labels of those nights: the day of the month, ✗ on the missed ones. */
const LABELS = DAYS.map(
  (d) => `${MISSED.some((m) => m.endsWith(d)) ? '✗' : ''}${Number(d.slice(3))}`,
);

describe('the monitor pictures the last 30 nights', () => {
  it('two missed nights and tonight are gaps in both charts, named under them, and the stale issue shows the charts', async () => {
    const r = await runMonitor(NOW);
    const summary = tableToMarkdown(r.trends);
    const [duration, size, ...more] = charts(summary);
    expect(more).toEqual([]);
    expect(duration?.title).toBe('Backup duration per night (minutes)');
    expect(size?.title).toBe('Stored size per night (KiB)');
    const gaps = [...MISSED.map((d) => d.slice(5)), '12-01'];
    for (const c of [duration, size]) {
      expect(c?.days).toEqual(LABELS);
      expect(c?.bars.length).toBe(30);
      // A gap is exactly the nights without a backup: 0 there, a bar everywhere else.
      expect(DAYS.filter((_, i) => c?.bars[i] === 0)).toEqual(gaps);
      expect(c?.bars.every((v, i) => gaps.includes(DAYS[i] as string) || v > 0)).toBe(true);
    }
    // The 3× night stands out of the duration chart (in minutes: ~4 vs ~12).
    const bars = duration?.bars ?? [];
    const slow = bars[DAYS.indexOf(SLOW.slice(5))] ?? 0;
    const others = bars.filter((v, i) => v > 0 && DAYS[i] !== SLOW.slice(5));
    expect(slow / Math.max(...others)).toBeGreaterThan(2.5);
    // Stored sizes as planted: the database object (20,000 + 400·n bytes) and the config (500).
    expect(size?.bars[0]).toBe(Number(((20_000 + 500) / 1024).toFixed(1)));

    expect(summary).toContain(
      'Missed nights (no complete backup that UTC day): **2**: 2026-11-24, 2026-11-25.',
    );
    expect(summary).toContain('Today has no backup yet.');
    // The chart stands above the table; the rows say the same for a terminal.
    expect(summary.indexOf('```mermaid')).toBeLessThan(summary.indexOf('| figure | value |'));
    const row = (name: string) => r.trends.rows.find((x) => x[0] === name)?.[1];
    expect(row('missed nights (last 30 days)')).toBe('🔴 2: 2026-11-24, 2026-11-25');
    expect(row('slowest night (last 30 days)')).toMatch(
      /^2026-11-20: 11 min 33 s \(2\.8× the median night\)$/,
    );

    expect(r.report.checks.find((c) => c.key === 'backup-stale')?.state).toBe('alert');
    const issue = gh.state.issues.find(
      (i) => i.state === 'open' && /no fresh backup/.test(i.title),
    );
    const body = issue?.body ?? '';
    expect(body).toContain('### Night by night');
    expect(charts(body)).toEqual([duration, size]);
    expect(body).toContain('**2**: 2026-11-24, 2026-11-25');
    console.log(`--- monitor summary ---\n${summary}\n--- stale issue body ---\n${body}`);
  });

  it('nights older than keep-daily are not called missed: prune thinned them', async () => {
    const r = await runMonitor(NOW, settings({ 'keep-daily': '5' }));
    const summary = tableToMarkdown(r.trends);
    expect(summary).toContain('Missed nights (no complete backup that UTC day): none.');
    expect(summary).toContain(
      'Not counted as missed: 2 nights older than keep-daily (5), where prune keeps one backup a week.',
    );
    expect(r.trends.rows.find((x) => x[0] === 'missed nights (last 30 days)')?.[1]).toBe('🟢 none');
    // The picture is the same: the two nights are still empty slots.
    const [duration] = charts(summary);
    expect(DAYS.filter((_, i) => duration?.bars[i] === 0)).toEqual(['11-24', '11-25', '12-01']);
    expect(duration?.days.filter((d) => d.includes('✗'))).toEqual([]);
  });

  it('a backup at one destination only: the degraded issue shows the charts with tonight’s bar', async () => {
    const tonight = '20261201T020000Z-b00000';
    await plantComplete(s3.primary, 'pgdr-primary', PREFIX, tonight, {
      durationSeconds: 240,
      databaseBytes: 32_000,
    });
    const r = await runMonitor(NOW);
    expect(r.report.checks.find((c) => c.key === 'backup-degraded')?.state).toBe('alert');
    // Degraded has its own light: orange, not the red of a missing backup.
    expect(r.summary.rows.find((x) => x[0] === 'newest backup everywhere')?.[1]).toBe(
      '🟠 degraded',
    );
    const issue = gh.state.issues.find(
      (i) => i.state === 'open' && /not complete at every destination/.test(i.title),
    );
    const [duration, size] = charts(issue?.body ?? '');
    expect(duration?.bars.at(-1)).toBe(4);
    expect(size?.bars.at(-1)).toBe(Number(((32_000 + 500) / 1024).toFixed(1)));
    expect(issue?.body).not.toContain('Today has no backup yet.');
  });
});
