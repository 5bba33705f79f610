import * as core from '@actions/core';

/** A table a person reads at a glance: the job summary (action) or stderr (CLI). */
export interface SummaryTable {
  title: string;
  header: readonly string[];
  rows: readonly (readonly string[])[];
  notes?: readonly string[];
}

/** Everything a command does to the world outside its data: logs, masks, outputs, summary. */
export interface Host {
  readonly kind: 'action' | 'cli';
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
  /** Runs `fn` inside a collapsible log group. */
  group<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /** Hides `secret` (and nothing else) from every later log line. */
  mask(secret: string): void;
  setOutput(name: string, value: string): void;
  summary(tables: readonly SummaryTable[]): Promise<void>;
  /** Marks the run failed; the only exit path for errors. */
  fail(message: string): void;
}

function escapeCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function tableToMarkdown(t: SummaryTable): string {
  const lines = [`### ${t.title}`, '', `| ${t.header.map(escapeCell).join(' | ')} |`];
  lines.push(`|${t.header.map(() => '---').join('|')}|`);
  for (const r of t.rows) lines.push(`| ${r.map(escapeCell).join(' | ')} |`);
  for (const n of t.notes ?? []) lines.push('', n);
  return `${lines.join('\n')}\n`;
}

export function tableToText(t: SummaryTable): string {
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

/** The GitHub Actions runner: workflow commands on stdout, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY. */
export function createActionHost(): Host {
  return {
    kind: 'action',
    info: (m) => core.info(m),
    warning: (m) => core.warning(m),
    error: (m) => core.error(m),
    group: (name, fn) => core.group(name, fn),
    mask: (s) => {
      if (s !== '') core.setSecret(s);
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

/**
 * A terminal or a script: logs and progress on stderr (secrets redacted), the result on
 * stdout, printed by the caller from the collected outputs.
 */
export function createCliHost(stderr: NodeJS.WritableStream = process.stderr): Host & {
  readonly outputs: Map<string, string>;
  readonly tables: SummaryTable[];
  failed: string | undefined;
} {
  const secrets = new Set<string>();
  const redact = (m: string) => {
    let out = m;
    for (const s of secrets) out = out.split(s).join('***');
    return out;
  };
  const write = (prefix: string, m: string) => stderr.write(`${prefix}${redact(m)}\n`);
  const host = {
    kind: 'cli' as const,
    outputs: new Map<string, string>(),
    tables: [] as SummaryTable[],
    failed: undefined as string | undefined,
    info: (m: string) => write('', m),
    warning: (m: string) => write('warning: ', m),
    error: (m: string) => write('error: ', m),
    async group<T>(name: string, fn: () => Promise<T>): Promise<T> {
      write('▶ ', name);
      return fn();
    },
    mask(s: string) {
      // Longest first, so a secret containing another is redacted whole.
      if (s === '') return;
      const all = [...secrets, s].sort((a, b) => b.length - a.length);
      secrets.clear();
      for (const x of all) secrets.add(x);
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
