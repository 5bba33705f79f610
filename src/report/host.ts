import * as core from '@actions/core';
import { paint } from './colour.js';
import { inert } from './inert.js';

/** A table a person reads at a glance: the job summary (action) or stderr (CLI). */
export interface SummaryTable {
  title: string;
  header: readonly string[];
  rows: readonly (readonly string[])[];
  /** Rows after `rows` only a reader asking for detail wants: in the job summary, and on the CLI with `--verbose`. */
  details?: readonly (readonly string[])[];
  notes?: readonly string[];
  /**
   * A picture of the table's figures, shown between the title and the table in the job
   * summary: markdown pg-dr wrote itself (a mermaid chart of numbers and dates), not
   * escaped. A terminal shows the table alone.
   */
  chart?: string;
}

/** Everything a command does to the world outside its data: logs, masks, outputs, summary. */
export interface Host {
  readonly kind: 'action' | 'cli';
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
  /** A line only a reader asking for detail wants: the action logs it, the CLI with `--verbose`. */
  detail(message: string): void;
  /** Runs `fn` inside a collapsible log group. */
  group<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /** Hides `secret` (and nothing else) from every later log line. */
  mask(secret: string): void;
  setOutput(name: string, value: string): void;
  summary(tables: readonly SummaryTable[]): Promise<void>;
  /** Marks the run failed; the only exit path for errors. */
  fail(message: string): void;
}

/** Cells are plain text: nothing in them (names, errors from outside) renders as markdown. */
function escapeCell(s: string): string {
  return inert(s, { bareLinks: 'keep' });
}

export function tableToMarkdown(t: SummaryTable): string {
  const lines = [`### ${t.title}`, ''];
  if (t.chart !== undefined) lines.push(t.chart, '');
  lines.push(`| ${t.header.map(escapeCell).join(' | ')} |`);
  lines.push(`|${t.header.map(() => '---').join('|')}|`);
  for (const r of [...t.rows, ...(t.details ?? [])])
    lines.push(`| ${r.map(escapeCell).join(' | ')} |`);
  for (const n of t.notes ?? []) lines.push('', inert(n, { bareLinks: 'keep' }));
  return `${lines.join('\n')}\n`;
}

/** The table for a quiet reader: without its detail rows; null when those were all it had. */
export function withoutDetails(t: SummaryTable): SummaryTable | null {
  if (!t.details?.length) return t;
  if (t.rows.length === 0) return null;
  const { details: _, ...rest } = t;
  return rest;
}

/** The table as text, detail rows included. */
export function tableToText(table: SummaryTable): string {
  const t = { ...table, rows: [...table.rows, ...(table.details ?? [])] };
  const widths = t.header.map((h, i) =>
    Math.max(h.length, ...t.rows.map((r) => (r[i] ?? '').length)),
  );
  const fmt = (r: readonly string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  const lines = [t.title, fmt(t.header), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of t.rows) lines.push(fmt(r));
  for (const n of t.notes ?? []) lines.push(n);
  return `${lines.join('\n')}\n`;
}

/**
 * Replaces every occurrence of every secret with `***`. Overlapping or adjacent matches
 * are merged first, as the runner's masker does, so no part of a secret is left visible.
 */
export function redactSecrets(text: string, secrets: Iterable<string>): string {
  const ranges: [number, number][] = [];
  for (const s of secrets) {
    if (s === '') continue;
    for (let i = text.indexOf(s); i >= 0; i = text.indexOf(s, i + 1))
      ranges.push([i, i + s.length]);
  }
  if (ranges.length === 0) return text;
  ranges.sort((a, b) => a[0] - b[0]);
  let out = '';
  let pos = 0;
  let cur: [number, number] | undefined;
  for (const r of ranges) {
    if (cur && r[0] <= cur[1]) cur[1] = Math.max(cur[1], r[1]);
    else {
      if (cur) {
        out += `${text.slice(pos, cur[0])}***`;
        pos = cur[1];
      }
      cur = [r[0], r[1]];
    }
  }
  if (cur) out += `${text.slice(pos, cur[0])}***`;
  return out + text.slice(cur ? cur[1] : pos);
}

/** The GitHub Actions runner: workflow commands on stdout, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY. */
export function createActionHost(): Host {
  const masked = new Set<string>();
  return {
    kind: 'action',
    info: (m) => core.info(m),
    warning: (m) => core.warning(m),
    error: (m) => core.error(m),
    detail: (m) => core.info(m),
    group: (name, fn) => core.group(name, fn),
    mask: (s) => {
      if (s === '' || masked.has(s)) return;
      masked.add(s);
      core.setSecret(s);
    },
    setOutput: (n, v) => core.setOutput(n, v),
    async summary(tables) {
      if (!process.env.GITHUB_STEP_SUMMARY) {
        for (const t of tables) core.info(tableToText(t));
        return;
      }
      for (const t of tables) core.summary.addRaw(tableToMarkdown(t), true);
      await core.summary.write();
    },
    fail: (m) => core.setFailed(m),
  };
}

/** How the CLI talks: quiet or verbose, colour, and its own words for inputs. */
export interface CliHostOptions {
  /** Also the detail lines (`--verbose`); default: quiet. */
  readonly verbose?: boolean;
  /** ANSI colour on the log lines; the caller decides (a TTY, no NO_COLOR). Default: none. */
  readonly colour?: boolean;
  /** Rewrites a message for the command line (`set force: true` → `pass --force`). */
  readonly wording?: (message: string) => string;
}

/**
 * A terminal or a script: logs and progress on stderr (secrets redacted), the result on
 * stdout, printed by the caller from the collected outputs.
 */
export function createCliHost(
  stderr: NodeJS.WritableStream = process.stderr,
  options: CliHostOptions = {},
): Host & {
  readonly outputs: Map<string, string>;
  readonly tables: SummaryTable[];
  failed: string | undefined;
  /** The masks applied to what goes to stdout too. */
  redact(text: string): string;
} {
  const secrets = new Set<string>();
  const wording = options.wording ?? ((m: string) => m);
  const redact = (m: string) => redactSecrets(wording(m), secrets);
  const write = (prefix: string, m: string) => {
    const line = `${prefix}${redact(m)}\n`;
    stderr.write(options.colour ? paint(line) : line);
  };
  const host = {
    kind: 'cli' as const,
    outputs: new Map<string, string>(),
    tables: [] as SummaryTable[],
    failed: undefined as string | undefined,
    redact,
    info: (m: string) => write('', m),
    warning: (m: string) => write('warning: ', m),
    error: (m: string) => write('error: ', m),
    detail: (m: string) => {
      if (options.verbose) write('', m);
    },
    async group<T>(name: string, fn: () => Promise<T>): Promise<T> {
      write('▶ ', name);
      return fn();
    },
    mask(s: string) {
      if (s !== '') secrets.add(s);
    },
    setOutput(n: string, v: string) {
      host.outputs.set(n, v);
    },
    async summary(tables: readonly SummaryTable[]) {
      host.tables.push(...tables);
    },
    fail(m: string) {
      host.failed = redact(m);
      write('error: ', m);
    },
  };
  return host;
}
