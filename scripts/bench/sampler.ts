// Peak memory, CPU and disk writes of a process tree, sampled from /proc every 100 ms.
//
// A tree is a root pid and every descendant (found through the ppid in /proc/<pid>/stat,
// as this kernel may lack /proc/<pid>/task/*/children). Per sample: the sum of VmRSS over
// the tree (the tree's resident memory at that instant); per process: VmHWM (the kernel's
// own peak, exact), utime+stime and /proc/<pid>/io write_bytes (bytes this process caused
// to be written to storage — 0 for a pure pipeline). Values of a process are kept as last
// seen, so up to one interval before its exit can be missed (for the largest process the
// kernel's peak from /usr/bin/time is recorded too).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const TICK = 100; // USER_HZ on Linux

interface ProcInfo {
  readonly comm: string;
  hwm: number;
  cpuTicks: number;
  cpuTicksAtStart: number;
  writeBytes: number;
  writeBytesAtStart: number;
}

export interface TreeStats {
  /** Highest sum of VmRSS over the tree seen in one sample. */
  readonly peakTreeRss: number;
  /** Largest VmHWM of a single process, and which. */
  readonly peakProcess: { readonly comm: string; readonly hwm: number };
  /** CPU seconds per command name (user+sys), over the run. */
  readonly cpuByComm: Readonly<Record<string, number>>;
  /**
   * Bytes written to storage by the tree (sum of write_bytes deltas), without /usr/bin/time's
   * own (it writes its report file).
   */
  readonly writeBytes: number;
  /** The same, per command name (time included). */
  readonly writeByComm: Readonly<Record<string, number>>;
  /** Largest total size of the files under the watched temp dir, and at the end. */
  readonly tmpPeakBytes: number;
  readonly tmpEndBytes: number;
  readonly samples: number;
}

function readText(p: string): string | null {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return null;
  }
}

function parseStat(text: string): { ppid: number; comm: string; ticks: number } | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < 0) return null;
  const rest = text.slice(close + 2).split(' ');
  // rest[0] = state, rest[1] = ppid, utime = field 14 → rest[11], stime → rest[12]
  return {
    ppid: Number(rest[1]),
    comm: text.slice(open + 1, close),
    ticks: Number(rest[11]) + Number(rest[12]),
  };
}

function kb(status: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

function dirBytes(dir: string): number {
  let total = 0;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(dir, e);
    try {
      const s = statSync(p);
      total += s.isDirectory() ? dirBytes(p) : Math.max(s.blocks * 512, s.size);
    } catch {
      // removed meanwhile
    }
  }
  return total;
}

/** Every pid under `roots` (roots included), from one scan of /proc. */
function treeOf(roots: readonly number[]): Map<number, { comm: string; ticks: number }> {
  const children = new Map<number, number[]>();
  const info = new Map<number, { comm: string; ticks: number }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const text = readText(`/proc/${name}/stat`);
    const st = text ? parseStat(text) : null;
    if (!st) continue;
    const pid = Number(name);
    info.set(pid, { comm: st.comm, ticks: st.ticks });
    const list = children.get(st.ppid) ?? [];
    list.push(pid);
    children.set(st.ppid, list);
  }
  const out = new Map<number, { comm: string; ticks: number }>();
  const queue = [...roots];
  while (queue.length > 0) {
    const pid = queue.pop() as number;
    const i = info.get(pid);
    if (!i || out.has(pid)) continue;
    out.set(pid, i);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

export interface Watch {
  stop(): TreeStats;
}

/**
 * Samples the tree under `root` (memory, CPU, writes) and, for CPU only, the trees under
 * `alsoCpu` (the PostgreSQL server's backends, which do the COPY work but are not pg-dr's).
 * `tmpDir`, when given, is measured on every sample.
 */
export function watchTree(
  root: number,
  opts: { intervalMs?: number; tmpDir?: string; alsoCpu?: readonly number[] } = {},
): Watch {
  const procs = new Map<number, ProcInfo>();
  const others = new Map<number, ProcInfo>();
  let peakTreeRss = 0;
  let tmpPeak = 0;
  let samples = 0;
  const track = (
    into: Map<number, ProcInfo>,
    pid: number,
    comm: string,
    ticks: number,
    baseline: boolean,
  ) => {
    let p = into.get(pid);
    const io = readText(`/proc/${pid}/io`);
    const wb = io ? Number(/^write_bytes: (\d+)/m.exec(io)?.[1] ?? 0) : 0;
    if (!p) {
      p = {
        comm,
        hwm: 0,
        cpuTicks: ticks,
        cpuTicksAtStart: baseline ? ticks : 0,
        writeBytes: wb,
        writeBytesAtStart: baseline ? wb : 0,
      };
      into.set(pid, p);
    }
    p.cpuTicks = ticks;
    if (wb > 0) p.writeBytes = wb;
    return p;
  };
  // Whatever already runs under alsoCpu is a baseline, not work of this run.
  for (const [pid, i] of treeOf(opts.alsoCpu ?? [])) track(others, pid, i.comm, i.ticks, true);
  const sample = () => {
    samples++;
    let sum = 0;
    for (const [pid, i] of treeOf([root])) {
      const p = track(procs, pid, i.comm, i.ticks, false);
      const status = readText(`/proc/${pid}/status`);
      if (!status) continue;
      sum += kb(status, 'VmRSS');
      p.hwm = Math.max(p.hwm, kb(status, 'VmHWM'));
    }
    peakTreeRss = Math.max(peakTreeRss, sum);
    if (opts.alsoCpu)
      for (const [pid, i] of treeOf(opts.alsoCpu)) track(others, pid, i.comm, i.ticks, false);
    if (opts.tmpDir) tmpPeak = Math.max(tmpPeak, dirBytes(opts.tmpDir));
  };
  sample();
  const timer = setInterval(sample, opts.intervalMs ?? 100);
  return {
    stop(): TreeStats {
      clearInterval(timer);
      sample();
      const cpuByComm: Record<string, number> = {};
      let writeBytes = 0;
      const writeByComm: Record<string, number> = {};
      let peak = { comm: '', hwm: 0 };
      for (const p of procs.values()) {
        cpuByComm[p.comm] = (cpuByComm[p.comm] ?? 0) + (p.cpuTicks - p.cpuTicksAtStart) / TICK;
        const w = p.writeBytes - p.writeBytesAtStart;
        if (w > 0) writeByComm[p.comm] = (writeByComm[p.comm] ?? 0) + w;
        if (p.comm !== 'time') writeBytes += w;
        if (p.hwm > peak.hwm) peak = { comm: p.comm, hwm: p.hwm };
      }
      for (const p of others.values()) {
        const key = `server:${p.comm}`;
        cpuByComm[key] = (cpuByComm[key] ?? 0) + (p.cpuTicks - p.cpuTicksAtStart) / TICK;
      }
      for (const k of Object.keys(cpuByComm)) if ((cpuByComm[k] ?? 0) <= 0) delete cpuByComm[k];
      const tmpEnd = opts.tmpDir ? dirBytes(opts.tmpDir) : 0;
      return {
        peakTreeRss,
        peakProcess: peak,
        cpuByComm,
        writeBytes,
        writeByComm,
        tmpPeakBytes: Math.max(tmpPeak, tmpEnd),
        tmpEndBytes: tmpEnd,
        samples,
      };
    },
  };
}

/** SIGTERM to `root` and every descendant (deepest first). */
export function killTree(root: number): void {
  const pids = [...treeOf([root]).keys()].reverse();
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}
