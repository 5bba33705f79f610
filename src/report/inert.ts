/**
 * Text pg-dr did not write — from the bucket (records, manifests), the database (names), a
 * child's stderr, a store's error — made inert before it goes into GitHub markdown (an issue
 * body, a comment, the job summary): no HTML (`<`, `>`, `&` become entities), no link or
 * image (`[`, `]`), no code span or table cell to break out of (`` ` ``, `|`), no mention
 * (`@org/team`) and no bare link (`https://`, `www.`) that fires, on one line. What a person
 * reads is the same text.
 */
export function inert(text: string, options: { bareLinks?: 'keep' } = {}): string {
  const out = text
    .replace(/\r?\n/g, ' ')
    .replace(/[&<>[\]`|]/g, (c) => `&#${c.charCodeAt(0)};`)
    .replace(/@/g, '@\u200b');
  // The job summary keeps bare links clickable (the issue links pg-dr puts there): a bare
  // link shows its whole address, unlike a markdown link.
  if (options.bareLinks === 'keep') return out;
  return out.replace(/:\/\//g, ':\u200b//').replace(/\bwww\./gi, (w) => `${w.slice(0, 3)}\u200b.`);
}

/**
 * Lines of a PostgreSQL client's stderr that quote row data — `DETAIL: Failing row
 * contains (…)`, `DETAIL: Key (…)=(…)`, `CONTEXT: COPY t, line 1: "…"` — replaced, so no
 * value of a row reaches a message, a record in the bucket, a summary or an issue.
 */
export const ROW_DATA_OMITTED = '(row data omitted)';

export function withoutRowData(stderr: string): string {
  return stderr
    .split('\n')
    .map((l) =>
      /Failing row contains|\bKey \(.*\)=\(|CONTEXT:\s+COPY\b|\bline \d+: "|\bcolumn \S+: "/.test(l)
        ? ROW_DATA_OMITTED
        : l,
    )
    .filter((l, i, all) => !(l === ROW_DATA_OMITTED && all[i - 1] === l))
    .join('\n');
}
