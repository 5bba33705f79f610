/**
 * `npx tsx scripts/screenshots.ts`: the pictures in docs/images/ of what a person reads on
 * GitHub — the monitor's job summary and a `backup-stale` issue — for the history the
 * chart test plants (test/integration/monitor-chart.test.ts: a month of nightly backups,
 * two nights missed, one night three times slower, checked 31 h after the newest).
 *
 * The monitor runs for real against two local s3rver servers and the local GitHub API
 * server; its markdown is rendered to HTML with `marked`, a GitHub-like stylesheet
 * (`github-markdown-css`) and `mermaid`, and headless Chromium takes the screenshots.
 * A docs tool, not part of CI: its three npm packages are installed into a temp directory
 * when it runs (not the project's dependencies), and it needs `chromium` on PATH
 * (Debian: `apt-get install chromium`).
 *
 *   npx tsx scripts/screenshots.ts [--out docs/images]
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { withAlerts } from '../src/commands/command.js';
import { tableToMarkdown } from '../src/report/host.js';
import { startGitHubApi } from '../test/harness/github-api.js';
import { monitorAt, monitorSettings } from '../test/harness/monitor.js';
import { nightlyHistory, plantNights, plantVerification } from '../test/harness/plant.js';
import { destinationInputs } from '../test/harness/run.js';
import { startS3Pair } from '../test/harness/s3.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const TOOLS = '/tmp/pg-dr-shots';
const PACKAGES = ['marked@18', 'mermaid@11', 'github-markdown-css@5'];
const WIDTH = 1012;

/** The same history and moment as the chart test. */
const NOW = new Date('2026-12-01T09:00:00Z');
const MISSED = ['2026-11-24', '2026-11-25'];
const SLOW = '2026-11-20';
const PREFIX = 'chart/';

/** marked and mermaid, from a temp directory (installed there once; never the project's). */
function tools(): { marked: (md: string) => string; mermaidJs: string; css: string } {
  const need = (p: string) => join(TOOLS, 'node_modules', p);
  if (!['marked', 'mermaid', 'github-markdown-css'].every((p) => existsSync(need(p))))
    execFileSync('npm', ['install', '--no-save', '--prefix', TOOLS, ...PACKAGES], {
      stdio: 'inherit',
    });
  const req = createRequire(join(TOOLS, 'package.json'));
  const { marked } = req('marked') as { marked: { parse(md: string): string } };
  return {
    marked: (md) => marked.parse(md),
    mermaidJs: pathToFileURL(need('mermaid/dist/mermaid.min.js')).href,
    css: pathToFileURL(need('github-markdown-css/github-markdown-light.css')).href,
  };
}

/** The monitor's job summary and its stale issue (title, body), for the planted history. */
async function render(): Promise<{ summary: string; issue: { title: string; body: string } }> {
  const token = `ghs_${randomBytes(18).toString('hex')}`;
  const [s3, gh] = await Promise.all([
    startS3Pair(),
    startGitHubApi({ token, owner: 'acme', repo: 'platform' }),
  ]);
  try {
    const nights = nightlyHistory(NOW, { missed: MISSED, slowDay: SLOW });
    await plantNights(
      [
        { server: s3.primary, bucket: 'pgdr-primary' },
        { server: s3.secondary, bucket: 'pgdr-secondary' },
      ],
      PREFIX,
      nights,
    );
    // A passed verification of the newest backup: the picture is of stale backups alone.
    const newest = nights.at(-1)?.id as string;
    for (const [server, bucket] of [
      [s3.primary, 'pgdr-primary'],
      [s3.secondary, 'pgdr-secondary'],
    ] as const)
      await plantVerification(server, bucket, PREFIX, newest, '2026-11-30T03:10:00.000Z', true);
    const settings = monitorSettings({
      prefix: PREFIX,
      ...destinationInputs(s3.primary, s3.secondary),
    });
    const r = await monitorAt(settings, {
      at: NOW,
      apiUrl: gh.url,
      token,
      runUrl: 'https://github.com/acme/platform/actions/runs/12345',
    });
    const summary = withAlerts([r.summary, r.trends], r.report.alerts)
      .map(tableToMarkdown)
      .join('\n');
    const issue = gh.state.issues.find((i) => /no fresh backup/.test(i.title));
    if (!issue) throw new Error('the monitor opened no backup-stale issue');
    return { summary, issue: { title: issue.title, body: issue.body ?? '' } };
  } finally {
    await Promise.all([s3.stop(), gh.stop()]);
  }
}

/** An HTML page that GitHub would show for `markdown` (between two bits of frame), mermaid drawn. */
function page(t: ReturnType<typeof tools>, before: string, markdown: string): string {
  const html = t
    .marked(markdown)
    .replace(
      /<pre><code class="language-mermaid">([\s\S]*?)<\/code><\/pre>/g,
      '<pre class="mermaid">$1</pre>',
    );
  return `<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="${t.css}">
<style>
  body { margin: 0; background: #fff; }
  .frame { box-sizing: border-box; width: ${WIDTH}px; padding: 24px 32px; }
  .markdown-body pre.mermaid { background: #fff; text-align: center; }
  .issue-title { font: 400 32px/1.25 -apple-system, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif; margin: 0 0 8px; }
  .issue-title span { color: #59636e; font-weight: 300; }
  .issue-meta { font: 14px -apple-system, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif; color: #59636e; padding-bottom: 16px; margin-bottom: 16px; border-bottom: 1px solid #d1d9e0; }
  .state { display: inline-block; background: #1f883d; color: #fff; border-radius: 2em; padding: 4px 12px; margin-right: 8px; font-weight: 500; }
  .label { display: inline-block; background: #d73a4a; color: #fff; border-radius: 2em; padding: 0 7px; font-size: 12px; font-weight: 500; margin-left: 6px; }
  .box { border: 1px solid #d1d9e0; border-radius: 6px; }
  .box-head { background: #f6f8fa; border-bottom: 1px solid #d1d9e0; padding: 8px 16px; font: 14px -apple-system, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif; color: #59636e; border-radius: 6px 6px 0 0; }
  .box .markdown-body { padding: 16px; }
</style></head>
<body><div class="frame" id="frame">${before}<div class="markdown-body">${html}</div></div></div>
<script src="${t.mermaidJs}"></script>
<script>
  mermaid.initialize({ startOnLoad: false, theme: 'default' });
  mermaid.run({ querySelector: 'pre.mermaid' }).then(() => {
    document.body.setAttribute('data-height', String(document.getElementById('frame').offsetHeight));
  });
</script></body></html>`;
}

const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--hide-scrollbars',
  '--virtual-time-budget=10000',
];

/** Screenshots `html` at its full height: one run to measure it, one to take the picture. */
async function shoot(html: string, out: string, work: string): Promise<void> {
  const file = join(work, `${randomBytes(4).toString('hex')}.html`);
  await writeFile(file, html);
  const chromium = (extra: string[]) => {
    const profile = join(work, `profile-${randomBytes(4).toString('hex')}`);
    return execFileSync(
      'chromium',
      [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, ...extra, pathToFileURL(file).href],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    );
  };
  const dom = chromium([`--window-size=${WIDTH},2000`, '--dump-dom']);
  const height = Number(/data-height="(\d+)"/.exec(dom)?.[1]);
  if (!Number.isFinite(height) || !dom.includes('<svg'))
    throw new Error(`mermaid did not draw the charts in ${file}`);
  chromium([`--window-size=${WIDTH},${height}`, `--screenshot=${out}`]);
  process.stderr.write(`${out}: ${WIDTH}×${height}, ${(await stat(out)).size} bytes\n`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { out: { type: 'string', default: 'docs/images' } } });
  const out = resolve(values.out as string);
  await mkdir(out, { recursive: true });
  const t = tools();
  const { summary, issue } = await render();
  const work = await mkdtemp(join(tmpdir(), 'pg-dr-shots-'));
  try {
    const summaryHead = '<div class="box"><div class="box-head">monitor summary</div>';
    await shoot(page(t, summaryHead, summary), join(out, 'monitor-summary.png'), work);
    const title = issue.title.replace(/[&<>]/g, (c) => `&#${c.charCodeAt(0)};`);
    const issueHead = `<h1 class="issue-title">${title} <span>#1</span></h1>
<div class="issue-meta"><span class="state">Open</span> opened by github-actions <span class="label">disaster-recovery</span></div>
<div class="box"><div class="box-head"><b>github-actions</b> (bot)</div>`;
    await shoot(page(t, issueHead, issue.body), join(out, 'stale-issue.png'), work);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
