import { describe, expect, it } from 'vitest';
import {
  planWalPrune,
  type WalObjectRef,
  type WalRunRef,
  walAnchor,
} from '../../src/retention/wal-plan.js';

const SEG = 16n * 1024n * 1024n;

/** A run on `timeline` that shipped segments [from, to) whole and a partial up to `to` + 0x100. */
function run(timeline: number, from: number, to: number, key = `r${timeline}-${from}`): WalRunRef {
  const objects: WalObjectRef[] = [];
  for (let s = from; s < to; s++)
    objects.push({
      key: `seg/${timeline}/${s}`,
      kind: 'segment',
      timeline,
      endLsn: BigInt(s + 1) * SEG,
    });
  objects.push({
    key: `partial/${timeline}/${to}`,
    kind: 'partial',
    timeline,
    endLsn: BigInt(to) * SEG + 0x100n,
  });
  if (timeline > 1)
    objects.push({ key: `history/${timeline}`, kind: 'history', timeline, endLsn: null });
  return { key, timeline, endLsn: BigInt(to) * SEG + 0x100n, objects };
}

const lsn = (n: bigint) =>
  `${(n >> 32n).toString(16).toUpperCase()}/${(n & 0xffffffffn).toString(16).toUpperCase()}`;

describe('WAL prune plan', () => {
  it('deletes only what ends at or before the oldest kept base backup start, on its timeline or older', () => {
    const runs = [run(1, 1, 4), run(1, 4, 8), run(1, 8, 12)];
    // The oldest kept base backup starts inside segment 5.
    const anchor = walAnchor([
      { id: 'new', timeline: 1, startLsn: lsn(9n * SEG + 40n) },
      { id: 'old', timeline: 1, startLsn: lsn(5n * SEG + 40n) },
    ]);
    expect(anchor?.backupId).toBe('old');
    const plan = planWalPrune(runs, anchor);
    // Segments 1–4 end at or before 5·SEG ≤ start; segment 5 holds the start: kept.
    expect(plan.objects).toEqual(['partial/1/4', 'seg/1/1', 'seg/1/2', 'seg/1/3', 'seg/1/4']);
    expect(plan.records).toEqual(['r1-1']);
    expect(plan.kept).toBe(runs.flatMap((r) => r.objects).length - 5);
  });

  it('keeps everything a later timeline holds, and every history file', () => {
    const runs = [run(1, 1, 6), run(2, 6, 9)];
    const plan = planWalPrune(runs, walAnchor([{ id: 'b', timeline: 1, startLsn: lsn(7n * SEG) }]));
    expect(plan.objects.every((k) => k.includes('/1/'))).toBe(true);
    expect(plan.objects).not.toContain('history/2');
    expect(plan.records).toEqual(['r1-1']);
    // A base backup on timeline 2: timeline 1's WAL before its start goes, history stays.
    const on2 = planWalPrune(runs, walAnchor([{ id: 'c', timeline: 2, startLsn: lsn(8n * SEG) }]));
    // Segment 7 ends exactly where the backup starts: not needed; segment 8 holds it.
    expect(on2.objects).toContain('seg/2/7');
    expect(on2.objects).not.toContain('seg/2/8');
    expect(on2.objects).not.toContain('history/2');
    expect(on2.records).toEqual(['r1-1']);
  });

  it('deletes nothing without a kept physical backup', () => {
    const plan = planWalPrune([run(1, 1, 4)], walAnchor([]));
    expect(plan).toEqual({ anchor: null, objects: [], records: [], kept: 4 });
  });
});

describe('max_slot_wal_keep_size as the server shows it', () => {
  it('reads units (MB when none) and -1 as unlimited', async () => {
    const { keepSettingBytes } = await import('../../src/postgres/slots.js');
    expect(keepSettingBytes('-1')).toBeNull();
    expect(keepSettingBytes('64MB')).toBe(64 * 1024 ** 2);
    expect(keepSettingBytes('10GB')).toBe(10 * 1024 ** 3);
    expect(keepSettingBytes('512')).toBe(512 * 1024 ** 2);
    expect(keepSettingBytes('2TB')).toBe(2 * 1024 ** 4);
  });
});

describe('a WAL object’s end, as prune reads it: from its own name', () => {
  it('a segment ends where its name says, whatever its record claims; a partial where its name says', async () => {
    const { endByName } = await import('../../src/commands/prune-wal.js');
    const seg = { walFile: '000000010000000000000010', kind: 'segment' as const };
    expect(endByName({ ...seg, name: '000000010000000000000010.zst.age' }, 1, Number(SEG))).toBe(
      17n * SEG,
    );
    // A record planted with 1 MB segments would move that end far back; prune reads the
    // name with the largest segment size any record claims, so it never ends earlier.
    expect(
      endByName({ ...seg, name: '000000010000000000000010.zst.age' }, 1, 1024 ** 2),
    ).toBeLessThan(17n * SEG);
    // A name that is not pg-dr's for that file, or another timeline: kept (null).
    expect(
      endByName({ ...seg, name: '000000010000000000000003.zst.age' }, 1, Number(SEG)),
    ).toBeNull();
    expect(
      endByName({ ...seg, name: '000000010000000000000010.zst.age' }, 2, Number(SEG)),
    ).toBeNull();
    const partial = {
      walFile: '000000010000000000000010',
      kind: 'partial' as const,
      name: `000000010000000000000010.${(16n * SEG + 0x100n).toString(16).toUpperCase().padStart(16, '0')}.partial.zst.age`,
    };
    expect(endByName(partial, 1, Number(SEG))).toBe(16n * SEG + 0x100n);
    expect(
      endByName({ ...partial, name: '000000010000000000000010.partial.zst.age' }, 1, Number(SEG)),
    ).toBeNull();
    expect(
      endByName({ walFile: '00000002.history', kind: 'history', name: 'x' }, 2, Number(SEG)),
    ).toBeNull();
  });
});
