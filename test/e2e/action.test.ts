// Runs the built action (dist/index.js, as committed) the way the GitHub runner does:
// INPUT_* variables (action.yml defaults included), GITHUB_OUTPUT and GITHUB_STEP_SUMMARY
// files, the GITHUB_* context, the workspace as working directory; once per Node binary
// (the tests' own Node and the Node 24 that action.yml declares).
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Decrypter } from 'age-encryption';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { type Manifest, parseManifest } from '../../src/manifest/schema.js';
import { ageKeyPair, createSeededDatabase, tempDir } from '../harness/fixtures.js';
import { leasePostgres } from '../harness/lease.js';
import {
  type NodeBinary,
  node24SkipNote,
  nodeBinaries,
  REPO_ROOT,
  requireBuilt,
} from '../harness/node.js';
import { nightlyHistory, plantNights } from '../harness/plant.js';
import type { PgCluster } from '../harness/postgres.js';
import { destinationInputs } from '../harness/run.js';
import {
  PRIMARY_BUCKET,
  type S3Pair,
  SECONDARY_BUCKET,
  sha256,
  startS3Pair,
} from '../harness/s3.js';
import { requireBinary } from '../harness/tools.js';

const BINARIES = nodeBinaries();
const NODE24_NOTE = node24SkipNote();

const COMPOSE_FILE = 'services:\n  app:\n    image: registry.example.test/app:1.4.2\n';

let pg: PgCluster;
let s3: S3Pair;
let work: string;
let identity: string;
let recipient: string;
let actionJs: string;
/** Every input action.yml declares, with its default (undefined when it has none). */
let declared: Record<string, string | undefined>;

beforeAll(async () => {
  actionJs = requireBuilt('dist/index.js');
  requireBinary('zstd');
  requireBinary('tar');
  const yml = parseYaml(await readFile(join(REPO_ROOT, 'action.yml'), 'utf8')) as {
    inputs: Record<string, { default?: unknown }>;
  };
  declared = Object.fromEntries(
    Object.entries(yml.inputs).map(([name, spec]) => [
      name,
      spec.default === undefined ? undefined : String(spec.default),
    ]),
  );
  [pg, s3] = await Promise.all([leasePostgres({ name: 'e2e-action' }), startS3Pair()]);
  await createSeededDatabase(pg, 'app');
  work = await tempDir('e2e-action');
  ({ identity, recipient } = await ageKeyPair());
});

afterAll(async () => {
  await Promise.all([pg?.stop(), s3?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

/** The GITHUB_* context of one simulated workflow run. */
interface RunnerContext {
  readonly GITHUB_REPOSITORY: string;
  readonly GITHUB_SHA: string;
  readonly GITHUB_REF: string;
  readonly GITHUB_RUN_ID: string;
  readonly GITHUB_SERVER_URL: string;
  readonly GITHUB_WORKFLOW: string;
  readonly GITHUB_RUN_ATTEMPT: string;
  readonly GITHUB_ACTOR: string;
}

interface ActionRun {
  readonly exitCode: number | undefined;
  readonly stdout: string;
  readonly stderr: string;
  /** GITHUB_OUTPUT, parsed. */
  readonly outputs: Record<string, string>;
  /** GITHUB_OUTPUT as written. */
  readonly outputsText: string;
  /** GITHUB_STEP_SUMMARY as written. */
  readonly summary: string;
  /** Values registered with `::add-mask::`, unescaped as the runner reads them. */
  readonly masks: string[];
  readonly context: RunnerContext;
}

/** The runner's name for an input's variable: spaces become `_`, dashes stay. */
function inputVariable(name: string): string {
  return `INPUT_${name.replace(/ /g, '_').toUpperCase()}`;
}

/** Undoes the escaping @actions/core applies to a workflow command's data. */
function unescapeCommandData(s: string): string {
  return s.replace(/%(25|0D|0A)/g, (_m, code: string) =>
    code === '25' ? '%' : code === '0D' ? '\r' : '\n',
  );
}

/**
 * Parses a GITHUB_OUTPUT file: `name=value` lines and `name<<DELIMITER` … `DELIMITER`
 * blocks. Anything else is a format error. A later value of a name wins, as on the runner.
 */
function parseFileCommands(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line === '') continue;
    const heredoc = /^([^=]+?)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name, delimiter] = heredoc as unknown as [string, string, string];
      const end = lines.indexOf(delimiter, i + 1);
      if (end < 0) throw new Error(`GITHUB_OUTPUT: no closing ${delimiter} for ${name}`);
      out[name] = lines.slice(i + 1, end).join('\n');
      i = end;
      continue;
    }
    const single = /^([^=]+)=(.*)$/.exec(line);
    if (!single) throw new Error(`GITHUB_OUTPUT: malformed line ${JSON.stringify(line)}`);
    out[single[1] as string] = single[2] as string;
  }
  return out;
}

/**
 * Runs `<node> dist/index.js` as the runner runs a `node24` action step: with the
 * step's inputs plus action.yml's defaults as INPUT_* variables, fresh GITHUB_OUTPUT
 * and GITHUB_STEP_SUMMARY files, and the workspace (holding a compose file) as cwd.
 */
async function runAction(node: NodeBinary, withInputs: Record<string, string>): Promise<ActionRun> {
  const dir = await mkdtemp(join(work, `${node.label}-`));
  const workspace = join(dir, 'workspace');
  const runnerTemp = join(dir, 'runner-temp');
  const fileCommands = join(runnerTemp, '_runner_file_commands');
  await mkdir(workspace, { recursive: true });
  await mkdir(fileCommands, { recursive: true });
  await writeFile(join(workspace, 'docker-compose.yml'), COMPOSE_FILE);
  await writeFile(join(workspace, 'notes.txt'), 'not a platform file\n');
  const outputFile = join(fileCommands, `set_output_${randomUUID()}`);
  const summaryFile = join(fileCommands, `step_summary_${randomUUID()}`);
  await writeFile(outputFile, '');
  await writeFile(summaryFile, '');

  const context: RunnerContext = {
    GITHUB_REPOSITORY: 'acme/platform',
    GITHUB_SHA: randomBytes(20).toString('hex'),
    GITHUB_REF: 'refs/heads/main',
    GITHUB_RUN_ID: String(10_000_000_000 + Math.floor(Math.random() * 1e9)),
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_WORKFLOW: 'Disaster recovery: backup',
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_ACTOR: 'octocat',
  };
  // What the runner sets: every input given in `with:`, and every other declared input
  // that has a default (inputs with neither are not set at all).
  const inputs: Record<string, string> = {};
  for (const [name, def] of Object.entries(declared)) if (def !== undefined) inputs[name] = def;
  Object.assign(inputs, withInputs);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? dir,
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    GITHUB_OUTPUT: outputFile,
    GITHUB_STEP_SUMMARY: summaryFile,
    GITHUB_WORKSPACE: workspace,
    GITHUB_EVENT_NAME: 'schedule',
    // No GitHub API is reachable from the tests: anything that tries fails fast, locally.
    GITHUB_API_URL: 'http://127.0.0.1:9',
    RUNNER_TEMP: runnerTemp,
    RUNNER_OS: 'Linux',
    ...context,
  };
  for (const [name, value] of Object.entries(inputs)) env[inputVariable(name)] = value;

  const r = await execa(node.path, [actionJs], {
    cwd: workspace,
    env,
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    stripFinalNewline: false,
    timeout: 110_000,
  });
  const outputsText = await readFile(outputFile, 'utf8');
  return {
    exitCode: r.exitCode,
    stdout: r.stdout,
    stderr: r.stderr,
    outputs: parseFileCommands(outputsText),
    outputsText,
    summary: await readFile(summaryFile, 'utf8'),
    masks: r.stdout
      .split('\n')
      .filter((l) => l.startsWith('::add-mask::'))
      .map((l) => unescapeCommandData(l.slice('::add-mask::'.length))),
    context,
  };
}

/** The step's inputs (`with:`): a backup to both local S3 servers, encrypted to `recipient`. */
function backupInputs(extra: Record<string, string> = {}): Record<string, string> {
  return {
    command: 'backup',
    'database-url': pg.url('app'),
    'age-recipients': recipient,
    // As a workflow would pass it; empty here because no GitHub API is reachable.
    'github-token': '',
    ...destinationInputs(s3.primary, s3.secondary),
    ...extra,
  };
}

/** The forms of the database password that must never be shown. */
function passwordForms(): string[] {
  return [pg.password, encodeURIComponent(pg.password)];
}

/** Log lines (all but `::add-mask::`) showing a secret, raw or as a workflow command escapes it. */
function linesShowingSecrets(log: string, secrets: readonly string[]): string[] {
  return log
    .split('\n')
    .filter((l) => !l.startsWith('::add-mask::'))
    .filter((l) => secrets.some((s) => l.includes(s) || unescapeCommandData(l).includes(s)));
}

async function bucketListing(): Promise<string[][]> {
  return [await s3.primary.listKeys(PRIMARY_BUCKET), await s3.secondary.listKeys(SECONDARY_BUCKET)];
}

async function decrypt(data: Buffer): Promise<Buffer> {
  const d = new Decrypter();
  d.addIdentity(identity);
  return Buffer.from(await d.decrypt(new Uint8Array(data)));
}

if (NODE24_NOTE !== undefined) {
  process.stderr.write(`\n[e2e action] SKIPPED on Node 24: ${NODE24_NOTE}\n\n`);
  describe('dist/index.js on node24', () => {
    it.skip(`skipped: ${NODE24_NOTE}`, () => {});
  });
}

describe.each(BINARIES)('dist/index.js on $label', (node) => {
  it('backs up to both destinations; outputs, summary and manifest are right and free of secrets', async () => {
    const prefix = `e2e-${node.label}/`;
    const r = await runAction(node, backupInputs({ prefix }));
    const context = `exit ${r.exitCode}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
    expect(r.exitCode, context).toBe(0);

    // Workflow commands: phases in groups, no error, outputs only through the file.
    const lines = r.stdout.split('\n');
    expect(lines.filter((l) => l.startsWith('::group::')).length).toBeGreaterThan(0);
    expect(lines.filter((l) => l.startsWith('::group::')).length).toBe(
      lines.filter((l) => l === '::endgroup::').length,
    );
    expect(lines.filter((l) => l.startsWith('::error'))).toEqual([]);
    expect(r.stdout).not.toContain('::set-output');

    // Outputs.
    const out = r.outputs;
    expect(Object.keys(out).sort()).toEqual(
      expect.arrayContaining([
        'backup-id',
        'database-sha256',
        'destinations',
        'manifest',
        'size-bytes',
        'status',
      ]),
    );
    const id = out['backup-id'] as string;
    expect(id).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{6}$/);
    expect(out.status).toBe('ok');
    const manifest: Manifest = parseManifest(out.manifest as string);
    expect(manifest.id).toBe(id);
    expect(manifest.source).toMatchObject({
      repository: r.context.GITHUB_REPOSITORY,
      commit: r.context.GITHUB_SHA,
      ref: r.context.GITHUB_REF,
      runId: r.context.GITHUB_RUN_ID,
      workflow: r.context.GITHUB_WORKFLOW,
      runUrl: `https://github.com/${r.context.GITHUB_REPOSITORY}/actions/runs/${r.context.GITHUB_RUN_ID}`,
    });
    expect(manifest.database.name).toBe('app');
    expect(manifest.database.compression).toBe('zstd');
    expect(manifest.config.files).toEqual(['docker-compose.yml']);
    expect(manifest.encryption).toEqual({
      scheme: 'age',
      mode: 'recipients',
      recipients: [recipient],
    });
    expect(JSON.parse(out.destinations as string)).toEqual([
      expect.objectContaining({ name: 'b2', bucket: PRIMARY_BUCKET, ok: true, error: null }),
      expect.objectContaining({ name: 'r2', bucket: SECONDARY_BUCKET, ok: true, error: null }),
    ]);

    // What is stored, read back from both servers.
    const folder = `${prefix}${id}/`;
    const dbEntry = manifest.objects.find((o) => o.kind === 'database');
    expect(dbEntry?.name).toBe('database.dump.zst.age');
    const expectedKeys = [...manifest.objects.map((o) => o.name), 'manifest.json']
      .map((n) => `${folder}${n}`)
      .sort();
    for (const [server, bucket] of [
      [s3.primary, PRIMARY_BUCKET],
      [s3.secondary, SECONDARY_BUCKET],
    ] as const) {
      expect(await server.listKeys(bucket, prefix)).toEqual(expectedKeys);
      const storedDb = await server.getObject(bucket, `${folder}${dbEntry?.name}`);
      expect(out['database-sha256']).toBe(sha256(storedDb));
      let stored = 0;
      for (const o of manifest.objects)
        stored += (await server.getObject(bucket, `${folder}${o.name}`)).length;
      expect(Number(out['size-bytes'])).toBe(stored);
      const storedManifest = (await server.getObject(bucket, `${folder}manifest.json`)).toString();
      expect(parseManifest(storedManifest)).toEqual(manifest);
      for (const secret of passwordForms()) expect(storedManifest).not.toContain(secret);
    }
    expect(out['size-bytes']).toMatch(/^[1-9]\d*$/);

    // The fresh key pair opens it: a custom-format dump, and the compose file.
    const dump = await decrypt(
      await s3.secondary.getObject(SECONDARY_BUCKET, `${folder}${dbEntry?.name}`),
    );
    expect(sha256(dump)).toBe(dbEntry?.plaintext.sha256);
    const archive = execFileSync('zstd', ['-d', '-c'], { input: dump, maxBuffer: 1 << 30 });
    expect(archive.subarray(0, 5).toString()).toBe('PGDMP');
    const cfgEntry = manifest.objects.find((o) => o.kind === 'config');
    const bundle = await decrypt(
      await s3.primary.getObject(PRIMARY_BUCKET, `${folder}${cfgEntry?.name}`),
    );
    const extracted = join(work, `bundle-${node.label}`);
    await mkdir(extracted);
    execFileSync('tar', ['-xzf', '-', '-C', extracted], { input: bundle });
    expect(await readFile(join(extracted, 'docker-compose.yml'), 'utf8')).toBe(COMPOSE_FILE);

    // The job summary: a Markdown table naming the backup.
    expect(r.summary).toMatch(/^\|.*\|\s*$/m);
    expect(r.summary).toMatch(/^\|\s*-{3,}\s*\|/m);
    expect(r.summary).toMatch(new RegExp(`^\\|\\s*Backup\\s*\\|\\s*${id}\\s*\\|`, 'm'));

    // Secrets: masked before use, shown nowhere.
    expect(r.masks).toEqual(expect.arrayContaining([...passwordForms(), pg.url('app')]));
    expect(linesShowingSecrets(r.stdout, passwordForms())).toEqual([]);
    expect(linesShowingSecrets(r.stderr, passwordForms())).toEqual([]);
    for (const secret of passwordForms()) {
      expect(r.summary).not.toContain(secret);
      expect(r.outputsText).not.toContain(secret);
      expect(out.manifest).not.toContain(secret);
    }
  });

  it("fails on a bad input: an ::error:: naming 'compression', status failed, nothing uploaded", async () => {
    const before = await bucketListing();
    const r = await runAction(
      node,
      backupInputs({ compression: 'lz4', prefix: `e2e-fail-${node.label}/` }),
    );
    const context = `exit ${r.exitCode}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
    // core.setFailed: exit code 1 (a timeout or a crash by signal would show otherwise).
    expect(r.exitCode, context).toBe(1);
    const errors = r.stdout.split('\n').filter((l) => l.startsWith('::error'));
    expect(errors.length, context).toBeGreaterThan(0);
    expect(
      errors.some((l) => l.includes("'compression'") && l.includes('lz4')),
      context,
    ).toBe(true);
    expect(r.outputs.status).toBe('failed');
    expect(await bucketListing()).toEqual(before);
    expect(linesShowingSecrets(r.stdout, passwordForms())).toEqual([]);
    expect(linesShowingSecrets(r.stderr, passwordForms())).toEqual([]);
    for (const secret of passwordForms()) {
      expect(r.summary).not.toContain(secret);
      expect(r.outputsText).not.toContain(secret);
    }
  });

  it('monitor: the job summary draws the last 30 nights as mermaid charts, the missed ones marked', async () => {
    // A month of nightly backups up to last night, two nights missed a week ago.
    const now = new Date();
    const day = (back: number) =>
      new Date(now.getTime() - back * 24 * 3600 * 1000).toISOString().slice(0, 10);
    const missed = [day(7), day(6)];
    const prefix = `e2e-monitor-${node.label}/`;
    await plantNights(
      [
        { server: s3.primary, bucket: PRIMARY_BUCKET },
        { server: s3.secondary, bucket: SECONDARY_BUCKET },
      ],
      prefix,
      nightlyHistory(now, { missed, slowDay: day(10) }),
    );
    const r = await runAction(node, {
      command: 'monitor',
      prefix,
      'github-token': '',
      ...destinationInputs(s3.primary, s3.secondary),
    });
    expect(r.exitCode, r.stdout).toBe(0);
    // Two charts, drawn by GitHub from the summary's markdown, above the trends table.
    expect(r.summary.match(/^```mermaid\n%%\{init: .*\}%%\nxychart-beta$/gm)?.length).toBe(2);
    const labels = missed.map((d) => `"✗${Number(d.slice(8))}"`);
    for (const l of labels) expect(r.summary).toContain(l);
    expect(r.summary).toContain(
      `Missed nights (no complete backup that UTC day): **2**: ${missed.join(', ')}.`,
    );
    expect(r.summary.indexOf('```mermaid')).toBeLessThan(r.summary.indexOf('| figure | value |'));
    // The report (machine output) keeps ISO times; the table shows them to a person.
    const report = JSON.parse(r.outputs.report as string);
    const since: (string | null)[] = report.checks.map((c: { since: string | null }) => c.since);
    expect(since.every((t) => t === null || /^\d{4}-\d\d-\d\dT[\d:.]+Z$/.test(t))).toBe(true);
  });
});
