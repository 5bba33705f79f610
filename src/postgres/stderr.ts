import { ROW_DATA_OMITTED, withoutRowData } from '../report/inert.js';

/** Longest DETAIL line kept: a short one explains, a long one is usually a quoted object. */
const DETAIL_MAX = 160;
/** Longest message returned. */
const MESSAGE_MAX = 600;

/**
 * What a PostgreSQL client's stderr says went wrong, on one line: each `ERROR:`, `FATAL:`
 * or `PANIC:` line (or the tool's own `error:` line when the server said nothing) with the
 * `HINT:` that follows it, and its `DETAIL:` when short. Never the SQL that failed
 * (`Query was:`, `Command was:` and the statement's body), nor row data (`withoutRowData`:
 * `(row data omitted)` stands where a detail quoted a row).
 * When no such line is there, the last lines, as before.
 *
 * `pg_dump: error: query failed: ERROR:  out of shared memory` + `HINT:  You might need to
 * increase max_locks_per_transaction.` + `pg_dump: detail: Query was: LOCK TABLE …` gives
 * `pg_dump: error: query failed: ERROR: out of shared memory | HINT: You might need to
 * increase max_locks_per_transaction.`
 */
export function causeOf(stderr: unknown, fallbackLines = 3): string {
  const text = typeof stderr === 'string' ? withoutRowData(stderr).trim() : '';
  if (text === '') return 'no message';
  const raw = text.split('\n');
  const lines = raw.map((l) => l.trim().replace(/\s{2,}/g, ' '));
  const picked: string[] = [];
  let previous = false;
  for (const [i, line] of lines.entries()) {
    const keep: boolean =
      /\b(ERROR|FATAL|PANIC):/.test(line) ||
      /^[\w.-]+: error:/.test(line) ||
      // libpq's own words for a lost connection, which pg_dump reports as a detail.
      /^[\w.-]+: detail: Error message from server:/.test(line) ||
      (picked.length > 0 && /^(\S+: )?hint:/i.test(line)) ||
      (picked.length > 0 && /^DETAIL:/.test(line) && line.length <= DETAIL_MAX) ||
      // Where withoutRowData took a row's values out: says a detail was there.
      (picked.length > 0 && line === ROW_DATA_OMITTED) ||
      // The indented continuation of a line kept (never of `Command was:`, not kept).
      (previous && /^\s/.test(raw[i] ?? '') && line !== '');
    if (keep) picked.push(line);
    previous = keep;
  }
  const chosen = picked.length > 0 ? dedupe(picked) : lines.filter(Boolean).slice(-fallbackLines);
  const joined = chosen.join(' | ');
  return joined.length > MESSAGE_MAX ? `${joined.slice(0, MESSAGE_MAX)}…` : joined;
}

function dedupe(lines: string[]): string[] {
  return lines.filter((l, i) => lines.indexOf(l) === i);
}
