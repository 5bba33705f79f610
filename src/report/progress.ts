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

/**
 * Reports transfer progress: a line every `intervalMs` (10 s on a runner), or a line
 * redrawn in place every second on a terminal. Returns a function that stops it.
 */
export function startProgress(
  host: Host,
  meters: readonly Meter[],
  options: { intervalMs?: number; tty?: NodeJS.WriteStream | undefined } = {},
): () => void {
  const started = Date.now();
  const tty = options.tty?.isTTY ? options.tty : undefined;
  const line = () => {
    const s = (Date.now() - started) / 1000;
    return meters
      .map((m) => `${m.label} ${formatBytes(m.bytes())} (${formatRate(m.bytes(), s)})`)
      .join(' · ');
  };
  const timer = setInterval(
    () => {
      if (tty) tty.write(`\r\x1b[K${line()}`);
      else host.info(line());
    },
    tty ? 1000 : (options.intervalMs ?? 10_000),
  );
  timer.unref();
  return () => {
    clearInterval(timer);
    if (tty) tty.write('\r\x1b[K');
  };
}
