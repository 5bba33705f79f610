import { parseLsn } from '../postgres/lsn.js';

/**
 * Which shipped WAL a prune may delete: only what no kept base backup can need. The anchor is
 * the oldest physical backup the backup plan keeps (its timeline and start LSN): recovery
 * from it reads WAL from its start on. An object (a segment, or a partial segment) of that
 * timeline or an older one that ends at or before that start is not needed by it, nor by any
 * newer backup; a run record goes with its objects once every one of them goes. History
 * files are always kept (a few bytes, and every later timeline's recovery reads them). With
 * no physical backup kept, nothing is deleted: WAL without a base to replay it on is still
 * all there is, and the monitor says so.
 */

/** One stored WAL object, as a trusted run record lists it. */
export interface WalObjectRef {
  /** Its key in the bucket. */
  readonly key: string;
  readonly kind: 'segment' | 'partial' | 'history';
  readonly timeline: number;
  /** The end of the WAL it holds; null for a history file. */
  readonly endLsn: bigint | null;
}

/** One run record and the objects it lists. */
export interface WalRunRef {
  readonly key: string;
  readonly timeline: number;
  readonly endLsn: bigint;
  readonly objects: readonly WalObjectRef[];
}

/** Where the oldest kept base backup starts. */
export interface WalAnchor {
  readonly backupId: string;
  readonly timeline: number;
  readonly startLsn: bigint;
}

export interface WalPrunePlan {
  /** The anchor used, or null: nothing is deleted. */
  readonly anchor: WalAnchor | null;
  /** Object keys to delete, each once. */
  readonly objects: readonly string[];
  /** Run record keys to delete (each after its objects). */
  readonly records: readonly string[];
  /** Object keys kept. */
  readonly kept: number;
}

/** The oldest of the kept physical backups, by start LSN within the lowest timeline. */
export function walAnchor(
  kept: readonly { id: string; timeline: number; startLsn: string }[],
): WalAnchor | null {
  let best: WalAnchor | null = null;
  for (const b of kept) {
    const a = { backupId: b.id, timeline: b.timeline, startLsn: parseLsn(b.startLsn) };
    if (
      best === null ||
      a.timeline < best.timeline ||
      (a.timeline === best.timeline && a.startLsn < best.startLsn)
    )
      best = a;
  }
  return best;
}

/** Not needed by the anchor: of its timeline or an older one, and ending at or before its start. */
function unneeded(o: WalObjectRef, anchor: WalAnchor): boolean {
  if (o.kind === 'history' || o.endLsn === null) return false;
  return o.timeline <= anchor.timeline && o.endLsn <= anchor.startLsn;
}

export function planWalPrune(runs: readonly WalRunRef[], anchor: WalAnchor | null): WalPrunePlan {
  const all = new Map<string, WalObjectRef>();
  for (const r of runs) for (const o of r.objects) all.set(o.key, o);
  if (anchor === null) return { anchor, objects: [], records: [], kept: all.size };
  // An object two records list (a re-shipped segment) goes only when it is unneeded: its
  // verdict depends on the object alone, so every record agrees.
  const objects = [...all.values()].filter((o) => unneeded(o, anchor)).map((o) => o.key);
  const gone = new Set(objects);
  const records = runs
    .filter((r) => r.timeline <= anchor.timeline && r.endLsn <= anchor.startLsn)
    .filter((r) => r.objects.every((o) => gone.has(o.key) || o.kind === 'history'))
    .map((r) => r.key);
  return {
    anchor,
    objects: objects.sort(),
    records: records.sort(),
    kept: all.size - objects.length,
  };
}
