/**
 * WAL positions and file names as PostgreSQL writes them: an LSN `16/B374D848` is a 64-bit
 * byte position; a segment file `000000010000001600000002` is its timeline (8 hex digits),
 * then the segment number split in two (the "log" and the segment within it), 8 hex each.
 */

/** A WAL position: `0/3000028` → 0x3000028n. Throws on anything else. */
export function parseLsn(text: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!m) throw new Error(`not a WAL position (LSN): "${text}"`);
  return (BigInt(`0x${m[1]}`) << 32n) + BigInt(`0x${m[2]}`);
}

/** 0x3000028n → `0/3000028`, as PostgreSQL prints it. */
export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** A timeline as the folder and file names carry it: 1 → `00000001`. */
export function timelineHex(timeline: number): string {
  return timeline.toString(16).toUpperCase().padStart(8, '0');
}

/** `16MB`, `1GB`, `16777216` (SHOW wal_segment_size) → bytes; a power of two from 1 MB to 1 GB. */
export function parseSegmentSize(text: string): number {
  const m = /^(\d+)\s*(kB|MB|GB)?$/.exec(text.trim());
  const unit = { kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[m?.[2] ?? ''] ?? 1;
  const bytes = m ? Number(m[1]) * unit : Number.NaN;
  if (
    !Number.isInteger(bytes) ||
    bytes < 1024 ** 2 ||
    bytes > 1024 ** 3 ||
    (bytes & (bytes - 1)) !== 0
  )
    throw new Error(`not a WAL segment size: "${text}"`);
  return bytes;
}

/** The start of the segment holding `lsn`. */
export function segmentStart(lsn: bigint, segmentBytes: number): bigint {
  const size = BigInt(segmentBytes);
  return (lsn / size) * size;
}

/** The segment file name holding `lsn` on `timeline`: `000000010000000000000003`. */
export function segmentName(timeline: number, lsn: bigint, segmentBytes: number): string {
  const segno = lsn / BigInt(segmentBytes);
  const perLog = 0x100000000n / BigInt(segmentBytes);
  const hex = (n: bigint) => n.toString(16).toUpperCase().padStart(8, '0');
  return `${timelineHex(timeline)}${hex(segno / perLog)}${hex(segno % perLog)}`;
}

/** A segment file name's timeline and start position; null when the name is not one. */
export function parseSegmentName(
  name: string,
  segmentBytes: number,
): { timeline: number; start: bigint } | null {
  const m = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/.exec(name);
  if (!m) return null;
  const perLog = 0x100000000n / BigInt(segmentBytes);
  const seg = BigInt(`0x${m[3]}`);
  if (seg >= perLog) return null;
  const segno = BigInt(`0x${m[2]}`) * perLog + seg;
  return { timeline: Number.parseInt(m[1] as string, 16), start: segno * BigInt(segmentBytes) };
}

/** What PostgreSQL's restore_command may ask for: a segment, or a timeline's history file. */
export type WalFileName =
  | { readonly kind: 'segment'; readonly name: string; readonly timeline: number }
  | { readonly kind: 'history'; readonly name: string; readonly timeline: number };

/** `000000010000000000000003` or `00000002.history`; null for anything else (`.backup`, `.partial`). */
export function parseWalFileName(name: string): WalFileName | null {
  if (/^[0-9A-F]{24}$/.test(name))
    return { kind: 'segment', name, timeline: Number.parseInt(name.slice(0, 8), 16) };
  const h = /^([0-9A-F]{8})\.history$/.exec(name);
  if (h) return { kind: 'history', name, timeline: Number.parseInt(h[1] as string, 16) };
  return null;
}
