/**
 * How many parts of one upload go at once, fitted to the link while it runs.
 *
 * On loopback or a short path the store's CPU sets the pace: two parts in flight are as fast
 * as eight (BENCHMARKS.md) and more only cost memory. On a long path one connection carries
 * at most a window per round trip, so each part in flight adds its own share — as many as
 * it takes to keep up with the stream. The rule: start at `initial`; while the stream waits
 * for a free slot (the uploads, not the dump, set the pace), double the parts in flight (a
 * backup of a few hundred MB has only a few dozen parts: one more at a time would still be
 * growing when it ends), as long as the speed per part holds: going from P to L parts at
 * once, a part must move at least (P + HOLD × (L − P)) / L of the speed parts had at P, i.e.
 * each added part brought at least HOLD of a part's worth of throughput instead of
 * splitting what was there. When it does not, go back to P and stay there. Never above
 * `max` (the memory budget).
 */
export const HOLD = 0.5;

export class InFlightControl {
  private current: number;
  private highest: number;
  private ceiling: number;
  private waited = false;
  /** The level before the last growth (0 before any). */
  private previous = 0;
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
    if (level !== this.current || !this.waited) return this.current;
    const p = this.previous;
    if (p > 0 && rate < (median(this.rates.get(p) ?? []) * (p + HOLD * (level - p))) / level) {
      this.current = p;
      this.ceiling = p;
      this.previous = 0;
      return this.current;
    }
    if (this.current >= this.ceiling) return this.current;
    this.waited = false;
    this.previous = this.current;
    this.current = Math.min(this.ceiling, this.current * 2);
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
