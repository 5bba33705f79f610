import type { Host } from './host.js';

export interface Meter {
  readonly label: string;
  bytes(): number;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function formatRate(bytes: number, seconds: number): string {
  return seconds > 0 ? `${(bytes / 1e6 / seconds).toFixed(1)} MB/s` : '—';
}

/** `0:07`, `12:05`, `1:02:03`: a duration as a clock reads it. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** How many bytes the work comes to. */
export interface Total {
  readonly bytes: number;
  /** An estimate (a backup's stored size, before the end), not a size read from a manifest. */
  readonly estimate: boolean;
  /** How the estimate was made, said once in the log (and again when it changes). */
  readonly basis?: string;
}

/** One piece of work whose progress is shown: bytes done of a total, if one is known. */
export interface Task {
  readonly label: string;
  done(): number;
  total(): Total | null;
  /** Further counters shown after the main figures (each destination's bytes). */
  readonly meters?: readonly Meter[];
  /** Said once `done` has reached an exact total but the work goes on (pg_restore -j). */
  readonly finishing?: string;
}

/** What one progress line is made of, read at one instant. */
export interface Figures {
  readonly done: number;
  readonly total: Total | null;
  readonly elapsedMs: number;
}

/**
 * The share done, in whole percent; never 100 (nor more) while the work runs: the end is
 * said by the work's own log line, and an estimate can be passed.
 */
export function percentDone(f: Figures): number | null {
  if (!f.total || f.total.bytes <= 0) return null;
  return Math.max(0, Math.min(99, Math.floor((f.done * 100) / f.total.bytes)));
}

/**
 * Seconds left at the average rate so far; null when unknown (no total, nothing done yet,
 * or an estimate already passed). 0 when an exact total is reached.
 */
export function etaSeconds(f: Figures): number | null {
  if (!f.total || f.done <= 0 || f.elapsedMs <= 0) return null;
  const left = f.total.bytes - f.done;
  if (left <= 0) return f.total.estimate ? null : 0;
  return left / (f.done / (f.elapsedMs / 1000));
}

/**
 * `dump 412.3 MiB / ≈1.2 GiB (estimate) · 34% · ETA ≈0:19 · 41.2 MB/s · elapsed 0:10 · b2 400.0 MiB`:
 * the same words on a terminal and in a CI log; what matters most first, as a narrow
 * terminal cuts the end.
 */
export function progressLine(
  label: string,
  f: Figures,
  meters: readonly (readonly [string, number])[] = [],
  finishing?: string,
): string {
  const seconds = f.elapsedMs / 1000;
  const parts = [`${label} ${formatBytes(f.done)}`];
  const pct = percentDone(f);
  if (f.total && pct !== null) {
    const approx = f.total.estimate ? '≈' : '';
    const passed = f.total.estimate && f.done > f.total.bytes;
    const note = f.total.estimate ? (passed ? ' (estimate, passed)' : ' (estimate)') : '';
    parts[0] += ` / ${approx}${formatBytes(f.total.bytes)}${note}`;
    const eta = etaSeconds(f);
    parts.push(`${pct}%`, `ETA ${eta === null ? '—' : `${approx}${formatDuration(eta)}`}`);
    if (finishing && eta === 0) parts.push(finishing);
  }
  parts.push(formatRate(f.done, seconds), `elapsed ${formatDuration(seconds)}`);
  for (const [name, bytes] of meters) parts.push(`${name} ${formatBytes(bytes)}`);
  return parts.join(' · ');
}

/** A CI log line every 10% or every 30 s, whichever comes first. */
export const LOG_EVERY_PERCENT = 10;
export const LOG_EVERY_MS = 30_000;

/**
 * When a CI log gets its next line: on passing the next 10% mark, or 30 s after the last
 * line (or the start) when no mark was passed. Pure: the caller says what time it is.
 */
export class LogPacer {
  private lastAt: number;
  private mark = 0;

  constructor(startedAt: number) {
    this.lastAt = startedAt;
  }

  due(now: number, pct: number | null): boolean {
    const mark = pct === null ? 0 : Math.floor(pct / LOG_EVERY_PERCENT);
    if (mark > this.mark || now - this.lastAt >= LOG_EVERY_MS) {
      this.mark = Math.max(this.mark, mark);
      this.lastAt = now;
      return true;
    }
    return false;
  }
}

/** Where the live line goes: stderr when the CLI runs on a terminal; nowhere in an action. */
export function progressTty(host: Host): NodeJS.WriteStream | undefined {
  return host.kind === 'cli' ? process.stderr : undefined;
}

export interface ProgressOptions {
  /** A terminal: one line redrawn in place (only when it is a TTY). */
  readonly tty?: NodeJS.WriteStream | undefined;
  /** The clock, in ms (tests hand in their own). */
  readonly now?: () => number;
  /** How often the figures are read (1 s): the only cost, whatever the bytes' rate. */
  readonly tickMs?: number;
}

/** A running progress report. */
export interface Progress {
  /** Stops it and clears the live line. */
  stop(): void;
  /** `host`, except that on a terminal its lines first clear the live line (redrawn next tick). */
  readonly host: Host;
}

/**
 * Reports `task`'s progress: on a terminal, one line redrawn in place every second; in a log,
 * a line every 10% or every 30 s. The figures are read by a timer, never per chunk.
 */
export function startProgress(host: Host, task: Task, options: ProgressOptions = {}): Progress {
  const now = options.now ?? Date.now;
  const started = now();
  const tty = options.tty?.isTTY ? options.tty : undefined;
  const pacer = new LogPacer(started);
  let basis: string | undefined;
  let drawn = false;
  const clear = () => {
    if (tty && drawn) tty.write('\r\x1b[K');
    drawn = false;
  };
  const say = (line: string) => {
    clear();
    if (tty) tty.write(`${line}\n`);
    else host.info(line);
  };
  const tick = () => {
    const at = now();
    const total = task.total();
    const f = { done: task.done(), total, elapsedMs: at - started };
    if (total?.basis && total.basis !== basis) {
      basis = total.basis;
      say(basis);
    }
    const meters = (task.meters ?? []).map((m) => [m.label, m.bytes()] as const);
    const line = progressLine(task.label, f, meters, task.finishing);
    if (tty) {
      tty.write(`\r\x1b[K${fitWidth(line, tty.columns)}`);
      drawn = true;
    } else if (pacer.due(at, percentDone(f))) host.info(line);
  };
  const timer = setInterval(tick, options.tickMs ?? 1000);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      clear();
    },
    host: tty ? clearingHost(host, clear) : host,
  };
}

/** The line cut to the terminal's width: a wrapped line cannot be redrawn in place. */
function fitWidth(line: string, columns: number | undefined): string {
  // A pseudo-terminal can say 0 columns (no size set): take the usual 80 then.
  const width = (columns !== undefined && columns >= 20 ? columns : 80) - 1;
  return line.length > width ? `${line.slice(0, Math.max(0, width - 1))}…` : line;
}

function clearingHost(host: Host, clear: () => void): Host {
  return {
    kind: host.kind,
    info: (m) => {
      clear();
      host.info(m);
    },
    warning: (m) => {
      clear();
      host.warning(m);
    },
    error: (m) => {
      clear();
      host.error(m);
    },
    detail: (m) => {
      clear();
      host.detail(m);
    },
    group: (name, fn) => host.group(name, fn),
    mask: (s) => host.mask(s),
    setOutput: (n, v) => host.setOutput(n, v),
    summary: (t) => host.summary(t),
    fail: (m) => host.fail(m),
  };
}
