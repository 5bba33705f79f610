/**
 * A GitHub API outage: wall time of `monitor` (the CLI, `node <cli>` as a child process,
 * default retries and back-off) against two local s3rver destinations and a local GitHub
 * API that answers 500 to every request; and how many requests reached that API.
 * Target (issue 17): the whole alert phase within 30 s.
 *
 *   npm run package && npm run bench:outage
 *   npm run bench:outage -- --baseline /tmp/old-dist/cli/index.js --baseline-label "before"
 *   npm run bench:outage -- --no-write
 *   npm run bench:outage -- --hang --no-write    # every request hangs instead
 */
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { tempDir } from '../test/harness/fixtures.js';
import { startGitHubApi } from '../test/harness/github-api.js';
import { destinationInputs } from '../test/harness/run.js';
import { startS3Pair } from '../test/harness/s3.js';
import { writeBenchSection } from './bench/section.js';

const TOKEN = `ghs_${'b'.repeat(36)}`;
const TARGET_S = 30;
/** A run still going after this long is stopped and reported as "more than". */
const CAP_S = 400;

interface Measured {
  readonly label: string;
  readonly seconds: number;
  readonly capped: boolean;
  readonly requests: number;
  readonly warnings: number;
  readonly status: string;
}

async function measure(
  label: string,
  cli: string,
  flags: Record<string, string>,
  env: Record<string, string>,
  requestsSoFar: () => number,
): Promise<Measured> {
  const args = Object.entries(flags).map(([k, v]) => `--${k}=${v}`);
  const before = requestsSoFar();
  const started = process.hrtime.bigint();
  const r = await new Promise<{ out: string; capped: boolean; code: number | null }>(
    (done, fail) => {
      const child = spawn(process.execPath, [cli, 'monitor', ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      });
      let out = '';
      let capped = false;
      const cap = setTimeout(() => {
        capped = true;
        child.kill('SIGKILL');
      }, CAP_S * 1000);
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
      });
      child.stderr.on('data', (c: Buffer) => {
        out += c.toString();
      });
      child.on('error', fail);
      child.on('close', (code) => {
        clearTimeout(cap);
        done({ out, capped, code });
      });
    },
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.out.includes(TOKEN)) throw new Error(`${label}: the token appeared in the output`);
  return {
    label,
    seconds,
    capped: r.capped,
    requests: requestsSoFar() - before,
    warnings: r.out.split('\n').filter((l) => /warning/i.test(l) && /GitHub|alert/i.test(l)).length,
    status: `${/"status":\s*"(\w+)"/.exec(r.out)?.[1] ?? (r.capped ? 'stopped' : '?')}, exit ${r.capped ? '–' : r.code}`,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      cli: { type: 'string', default: 'dist/cli/index.js' },
      baseline: { type: 'string' },
      'baseline-label': { type: 'string', default: 'before' },
      'no-write': { type: 'boolean', default: false },
      /** Every request hangs (no answer for 10 min) instead of answering 500. */
      hang: { type: 'boolean', default: false },
    },
  });
  const s3 = await startS3Pair();
  const gh = await startGitHubApi({ token: TOKEN, owner: 'acme', repo: 'platform' });
  if (values.hang) gh.failNext(200, Number.POSITIVE_INFINITY, undefined, { delayMs: 600_000 });
  else gh.failNext(500, Number.POSITIVE_INFINITY);
  const work = await tempDir('bench-outage');
  const { secrets, ...flags } = splitSecrets({
    ...destinationInputs(s3.primary, s3.secondary),
    'backup-workflow': 'backup.yml',
    format: 'json',
  });
  const env = {
    ...secrets,
    PG_DR_GITHUB_TOKEN: TOKEN,
    GITHUB_REPOSITORY: 'acme/platform',
    GITHUB_API_URL: gh.url,
    GITHUB_WORKSPACE: work,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  const count = () => gh.requests.length;
  const load0 = loadavg()[0] ?? 0;
  const rows: Measured[] = [];
  try {
    if (values.baseline)
      rows.push(
        await measure(values['baseline-label'], resolve(values.baseline), flags, env, count),
      );
    rows.push(await measure('this build', resolve(values.cli), flags, env, count));
  } finally {
    await Promise.all([s3.stop(), gh.stop()]);
  }
  const load1 = loadavg()[0] ?? 0;
  const lines = [
    '| build | monitor wall time | requests to the API | GitHub warnings | status output, exit code |',
    '| --- | ---: | ---: | ---: | --- |',
    ...rows.map(
      (m) =>
        `| ${m.label} | ${m.capped ? `> ${CAP_S} s (stopped)` : `${m.seconds.toFixed(2)} s`} | ${m.requests} | ${m.warnings} | ${m.status} |`,
    ),
    '',
    `Load average (1 min) ${load0.toFixed(2)} → ${load1.toFixed(2)}. Target: the whole run within ${TARGET_S} s: ${rows
      .filter((m) => m.label === 'this build')
      .map((m) => (!m.capped && m.seconds <= TARGET_S ? '**PASS**' : '**MISS**'))
      .join('')}.`,
  ];
  console.log(lines.join('\n'));
  if (!values['no-write'])
    await writeBenchSection(
      'outage',
      'Monitor under a total GitHub API outage',
      `Measured ${new Date().toISOString().slice(0, 10)}, on this machine: \`monitor\` as the CLI (\`node <cli>\`, default retries and back-off: 3 retries after 1, 4 and 9 s) against two local s3rver destinations holding no backup (so every check has an alert to raise or clear) and a local GitHub API answering 500 to every request; \`backup-workflow\` set, so the runs are read too. Wall time of the whole process, once per build. Target (issue 17): ≤ ${TARGET_S} s.`,
      lines,
    );
}

/** Secret inputs go through PG_DR_* variables, as the CLI asks. */
function splitSecrets(flags: Record<string, string>): Record<string, string> & {
  secrets: Record<string, string>;
} {
  const secrets: Record<string, string> = {};
  const rest: Record<string, string> = {};
  for (const [k, v] of Object.entries(flags)) {
    if (k.endsWith('secret-access-key')) secrets[`PG_DR_${k.toUpperCase().replace(/-/g, '_')}`] = v;
    else rest[k] = v;
  }
  return Object.assign(rest, { secrets }) as Record<string, string> & {
    secrets: Record<string, string>;
  };
}

await main();
