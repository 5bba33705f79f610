import { withoutRowData } from '../report/inert.js';

/** Longest DETAIL line kept: a short one explains, a long one is usually a quoted object. */
const DETAIL_MAX = 160;
/** Longest message returned. */
const MESSAGE_MAX = 600;

/**
 * What a PostgreSQL client's stderr says went wrong, on one line: each `ERROR:`, `FATAL:`
 * or `PANIC:` line (or the tool's own `error:` line when the server said nothing) with the
 * `HINT:` that follows it, and its `DETAIL:` when short. Never the SQL that failed
 * (`Query was:`, `Command was:` and the statement's body), nor row data (`withoutRowData`).
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
  const lines = text.split('\n').map((l) => l.trim().replace(/\s{2,}/g, ' '));
  const picked: string[] = [];
  for (const line of lines) {
    if (/\b(ERROR|FATAL|PANIC):/.test(line) || /^[\w.-]+: error:/.test(line)) picked.push(line);
    else if (picked.length > 0 && /^(\S+: )?hint:/i.test(line)) picked.push(line);
    else if (picked.length > 0 && /^DETAIL:/.test(line) && line.length <= DETAIL_MAX)
      picked.push(line);
  }
  const chosen = picked.length > 0 ? dedupe(picked) : lines.filter(Boolean).slice(-fallbackLines);
  const joined = chosen.join(' | ');
  return joined.length > MESSAGE_MAX ? `${joined.slice(0, MESSAGE_MAX)}…` : joined;
}

function dedupe(lines: string[]): string[] {
  return lines.filter((l, i) => lines.indexOf(l) === i);
}
