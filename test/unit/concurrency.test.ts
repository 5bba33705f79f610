import { describe, expect, it } from 'vitest';
import { mapLimit } from '../../src/concurrency.js';

/** A call that resolves after `ms` of real time, recording how many calls overlap. */
function tracker() {
  let inFlight = 0;
  let peak = 0;
  const started: number[] = [];
  return {
    get peak() {
      return peak;
    },
    started,
    async call(i: number, ms: number): Promise<number> {
      started.push(i);
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, ms));
      inFlight--;
      return i * 10;
    },
  };
}

describe('mapLimit', () => {
  it('keeps the input order whatever order the calls finish in, and never exceeds the limit', async () => {
    const t = tracker();
    const items = Array.from({ length: 40 }, (_, i) => i);
    // Later items finish first: the results must still be in the items' order.
    const out = await mapLimit(items, 7, (i) => t.call(i, 40 - i));
    expect(out).toEqual(items.map((i) => i * 10));
    expect(t.peak).toBe(7);
    expect(t.started).toEqual(items);
  });

  it('runs one at a time with limit 1, and handles fewer items than the limit and none', async () => {
    const t = tracker();
    expect(await mapLimit([1, 2, 3], 1, (i) => t.call(i, 1))).toEqual([10, 20, 30]);
    expect(t.peak).toBe(1);
    const u = tracker();
    expect(await mapLimit([1, 2], 16, (i) => u.call(i, 1))).toEqual([10, 20]);
    expect(u.peak).toBe(2);
    expect(await mapLimit([], 4, async () => 1)).toEqual([]);
  });

  it('after a failure starts nothing new, waits for the calls in flight, then throws the first error', async () => {
    const t = tracker();
    let settled = 0;
    const run = mapLimit(
      Array.from({ length: 20 }, (_, i) => i),
      3,
      async (i) => {
        if (i === 4) throw new Error('item 4 failed');
        if (i === 5) {
          await new Promise((r) => setTimeout(r, 5));
          throw new Error('item 5 failed too');
        }
        await t.call(i, 20);
        settled++;
        return i;
      },
    );
    await expect(run).rejects.toThrow('item 4 failed');
    // 0–3 and 6 were started before or alongside the failures; every started call settled.
    expect(t.started.length).toBe(settled);
    expect(Math.max(...t.started)).toBeLessThan(8);
  });

  it('refuses a limit that is not a whole number ≥ 1, naming it', async () => {
    await expect(mapLimit([1], 0, async (i) => i)).rejects.toThrow(
      'mapLimit: limit 0. Expected a whole number ≥ 1.',
    );
    await expect(mapLimit([1], 1.5, async (i) => i)).rejects.toThrow(/limit 1.5/);
  });
});
