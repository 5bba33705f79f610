/**
 * How many parts of one upload go at once, fitted to the link while it runs.
 *
 * On loopback or a short path the store's CPU sets the pace: two parts in flight are as fast
 * as eight (BENCHMARKS.md) and more only cost memory. On a long path one connection carries
 * at most a window per round trip, so each part in flight adds its own share — as many as
 * it takes to keep up with the stream. The rule: start at `initial`; while the stream waits
 * for a free slot (the uploads, not the dump, set the pace), add one part at a time, as long
 * as the speed per part holds: with L parts at once, a part must move at least
 * (L − 1 + HOLD) / L of the speed parts had at L − 1, i.e. the extra part added at least
 * HOLD of a part's worth of throughput instead of splitting what was there. When it does
 * not, go back one level and stay there. Never above `max` (the memory budget).
 */
export const HOLD = 0.5;

export class InFlightControl {
  private current: number;
  private highest: number;
  private ceiling: number;
  private waited = false;
  /** Speeds of the parts that finished, by the level they started under. */
  private readonly rates = new Map<number, number[]>();

  constructor(
    readonly initial: number,
    readonly max: number,
  ) {
    this.current = Math.max(1, initial);
    this.highest = this.current;
    this.ceiling = Math.max(this.current, max);
  }

  /** Parts allowed in flight now. */
  get limit(): number {
    return this.current;
  }

  /** The most parts that were in flight at once. */
  get peak(): number {
    return this.highest;
  }

  /** A part is ready and every slot is busy: the uploads set the pace. */
  stalled(): void {
    this.waited = true;
  }

  /**
   * A part of `bytes` finished in `ms`, having started when `level` parts were allowed.
   * Returns the new limit.
   */
  finished(bytes: number, ms: number, level: number): number {
    const rate = bytes / Math.max(1, ms);
    const at = this.rates.get(level) ?? [];
    at.push(rate);
    this.rates.set(level, at);
    // Judge a level by a part that ran under it, and only while the uploads were behind.
    if (level !== this.current || !this.waited || this.current >= this.ceiling) return this.current;
    const before = median(this.rates.get(level - 1) ?? []);
    if (this.current > this.initial && rate < (before * (level - 1 + HOLD)) / level) {
      this.current -= 1;
      this.ceiling = this.current;
      return this.current;
    }
    this.waited = false;
    this.current += 1;
    this.highest = Math.max(this.highest, this.current);
    return this.current;
  }
}

function median(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}
