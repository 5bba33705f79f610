import { describe, expect, it } from 'vitest';
import type { BackupAtDestination } from '../../src/manifest/catalog.js';
import { historyChart, nightlyHistory } from '../../src/monitor/history.js';
import { plantedManifest } from '../harness/plant.js';

const NOW = new Date('2026-12-01T09:00:00Z');

/** A backup as the catalog reads it: complete (with its manifest) unless `problem` is set. */
function backup(
  id: string,
  durationSeconds: number,
  problem: string | null = null,
): BackupAtDestination {
  const manifest = plantedManifest({
    id,
    createdAt: new Date(0).toISOString(),
    version: 'test',
    durationSeconds,
    objects: [{ name: 'database.dump.zst.age', kind: 'database', data: new Uint8Array(2048) }],
    destinations: [],
  });
  return {
    id,
    destination: 'b2',
    manifest: problem === null ? manifest : null,
    objects: new Map(),
    verificationKeys: [],
    verificationSignatures: new Set(),
    problem,
    hasManifest: problem === null,
    future: false,
    untrusted: false,
    manifestSha256: null,
  };
}

const scans = (...list: BackupAtDestination[]) => new Map([['b2', list]]);

describe('nightlyHistory', () => {
  it('30 nights ending today; each night its newest complete backup; why each empty night is empty', () => {
    const nights = nightlyHistory(
      scans(
        backup('20261130T020000Z-aaaaaa', 60),
        backup('20261130T140000Z-bbbbbb', 90), // a second run that night: the newer counts
        backup('20261129T020000Z-cccccc', 30, 'missing manifest.json'), // incomplete: no bar
        backup('20261120T020000Z-dddddd', 45),
        backup('20261110T020000Z-eeeeee', 50), // older than keep-daily 14: weekly survivors
      ),
      NOW,
      14,
    );
    expect(nights.length).toBe(30);
    expect(nights[0]?.day).toBe('2026-11-02');
    expect(nights.at(-1)).toEqual({ day: '2026-12-01', backup: null, gap: 'today' });
    const at = (day: string) => nights.find((n) => n.day === day);
    expect(at('2026-11-30')?.backup).toEqual({
      id: '20261130T140000Z-bbbbbb',
      durationSeconds: 90,
      storedBytes: 2048,
    });
    expect(at('2026-11-29')?.gap).toBe('missed');
    // keep-daily 14 keeps the last 14 days (today and 13 before) whole: an empty night
    // there is missed; from 14 days back prune thins, so an empty night is not called missed.
    expect(at('2026-11-18')?.gap).toBe('missed');
    expect(at('2026-11-17')?.gap).toBe('thinned');
    expect(at('2026-11-16')?.gap).toBe('thinned');
    // Before the first backup found: none yet, not missed.
    expect(at('2026-11-09')?.gap).toBe('before-first');
    expect(at('2026-11-10')?.gap).toBe(null);
  });

  it('no backup at all: nothing is called missed, and the charts draw 30 empty nights', () => {
    const nights = nightlyHistory(scans(), NOW, 14);
    expect(nights.filter((n) => n.gap === 'missed')).toEqual([]);
    const chart = historyChart(nights, 14);
    expect(chart).toContain('Missed nights (no complete backup that UTC day): none.');
    expect(chart).toContain(`bar [${Array(30).fill(0).join(', ')}]`);
    expect(chart).toContain('y-axis "seconds" 0 --> 1');
  });

  it('scales the axis to the figures: hours for long backups, GiB for large ones', () => {
    const b = backup('20261130T020000Z-aaaaaa', 3 * 3600);
    const big = {
      ...b,
      manifest: b.manifest && {
        ...b.manifest,
        objects: b.manifest.objects.map((o) => ({
          ...o,
          encrypted: { ...o.encrypted, bytes: 5 * 1024 ** 3 },
        })),
      },
    };
    const chart = historyChart(nightlyHistory(scans(big), NOW, 14), 14);
    expect(chart).toContain('title "Backup duration per night (hours)"');
    expect(chart).toContain('y-axis "hours" 0 --> 5');
    expect(chart).toContain('title "Stored size per night (GiB)"');
    expect(chart).toMatch(/bar \[(0, ){28}5, 0\]/);
  });
});
