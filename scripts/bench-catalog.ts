/**
 * Reading the bucket: wall time and peak RSS of `list`, `monitor` and `prune --dry-run`
 * against two s3rver destinations that each hold N backup folders written as pg-dr writes
 * them (two tiny encrypted-object stand-ins, a signed manifest, a signed verification
 * record), run with trusted-signers (every manifest and record has its signature read and
 * checked). Each command runs as the CLI does, `node <cli>` as a child process under
 * GNU time, so the RSS is the whole process's.
 *
 * s3rver's continuation tokens are DES-encrypted: listing past 1,000 keys needs OpenSSL's
 * legacy provider, so this script re-runs itself with `--openssl-legacy-provider` (the
 * servers run in this process; the CLI under test runs without the flag).
 *
 *   npm run package && npm run bench:catalog          # 2,000 folders, writes BENCHMARKS.md
 *   npm run bench:catalog -- --folders 20 --no-write
 *   npm run bench:catalog -- --baseline /tmp/old-dist/cli/index.js --baseline-label "before"
 *                                          # another build measured first, on the same folders
 *   npm run bench:catalog -- --folders 2000 --hold /tmp/catalog.args
 *                                          # plants, writes the CLI's arguments (one a line) to
 *                                          # that file and keeps the servers up until Ctrl-C,
 *                                          # for profiling: . /tmp/catalog.args.env &&
 *                                          #   mapfile -t A < /tmp/catalog.args &&
 *                                          #   node --cpu-prof dist/cli/index.js list "${A[@]}"
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mapLimit } from '../src/concurrency.js';
import { parseSigningKey, type Signer } from '../src/crypto/sshsig.js';
import { READ_CONCURRENCY } from '../src/manifest/catalog.js';
import { verificationKey } from '../src/manifest/verification.js';
import { tempDir } from '../test/harness/fixtures.js';
import { plantedManifest } from '../test/harness/plant.js';
import { destinationInputs } from '../test/harness/run.js';
import { startS3 } from '../test/harness/s3.js';
import { ed25519KeyPair } from '../test/harness/ssh-keys.js';
import { writeBenchSection } from './bench/section.js';

const LEGACY = '--openssl-legacy-provider';
const HOUR = 3600 * 1000;
const PREFIX = 'bench/';

interface Measured {
  readonly command: string;
  readonly seconds: number;
  readonly rssMiB: number;
  /** User + system CPU of the CLI process. */
  readonly cpuSeconds: number;
}

/** The id of the i-th newest backup: one an hour, the newest an hour ago. */
function idOf(now: number, i: number): string {
  const at = new Date(now - (i + 1) * HOUR);
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
  return `${stamp}-${(i % 0x1000).toString(16).padStart(6, '0')}`;
}

/** One backup's objects, byte for byte the same at both destinations (as pg-dr writes them). */
function backupObjects(id: string, at: Date, signer: Signer): [string, Buffer][] {
  const data = [
    { name: 'database.dump.zst.age', kind: 'database' as const, bytes: Buffer.from(`db ${id}`) },
    { name: 'config.tar.gz.age', kind: 'config' as const, bytes: Buffer.from(`config ${id}`) },
  ];
  const iso = at.toISOString();
  const manifest = plantedManifest({
    id,
    createdAt: iso,
    version: 'bench',
    objects: data.map((o) => ({ name: o.name, kind: o.kind, data: o.bytes })),
    destinations: ['b2', 'r2'].map((name) => ({
      name,
      endpointHost: '127.0.0.1',
      bucket: name === 'b2' ? 'pgdr-primary' : 'pgdr-secondary',
      ok: true,
      error: null,
      etags: {},
      uploadSeconds: 1,
    })),
  });
  const verifiedAt = new Date(at.getTime() + 10 * 60 * 1000);
  const verification = Buffer.from(
    JSON.stringify({
      format: 'pg-dr-verification/1',
      backupId: id,
      destination: 'b2',
      level: 'checksum',
      ok: true,
      startedAt: verifiedAt.toISOString(),
      durationSeconds: 1,
      tool: { name: 'pg-dr', version: 'bench' },
      runUrl: null,
      objects: [],
      archive: null,
      drill: null,
      error: null,
    }),
  );
  const m = Buffer.from(JSON.stringify(manifest));
  const vKey = verificationKey(PREFIX, id, verifiedAt);
  return [
    ...data.map((o): [string, Buffer] => [`${PREFIX}${id}/${o.name}`, o.bytes]),
    [`${PREFIX}${id}/manifest.json.sig`, Buffer.from(signer.sign(m))],
    [`${PREFIX}${id}/manifest.json`, m],
    [`${vKey}.sig`, Buffer.from(signer.sign(verification))],
    [vKey, verification],
  ];
}

/** An s3rver in a child Node of its own, as each cloud is its own service. */
interface Served {
  readonly endpoint: string;
  readonly bucket: string;
  readonly client: S3Client;
  stop(): Promise<void>;
}

/** `--serve <bucket>`: runs one s3rver until stdin closes; prints its endpoint first. */
async function serveChild(bucket: string): Promise<void> {
  const server = await startS3({ buckets: [bucket], name: 'bench-catalog' });
  process.stdout.write(`${JSON.stringify({ endpoint: server.endpoint })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => {
    void server.stop().then(() => process.exit(0));
  });
}

async function serve(bucket: string): Promise<Served> {
  const child = spawn(
    process.execPath,
    [LEGACY, '--import', 'tsx', fileURLToPath(import.meta.url), '--serve', bucket],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const endpoint = await new Promise<string>((done, fail) => {
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) done((JSON.parse(line) as { endpoint: string }).endpoint);
    });
    child.once('exit', (code) => fail(new Error(`s3rver for ${bucket} exited (${code})`)));
  });
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    endpoint,
    bucket,
    client,
    async stop() {
      client.destroy();
      child.stdin?.end();
      await exited;
    },
  };
}

/** Every key under `prefix` (all pages: past 1,000 keys). */
async function countKeys(s: Served, prefix: string): Promise<number> {
  let n = 0;
  let token: string | undefined;
  do {
    const page = await s.client.send(
      new ListObjectsV2Command({
        Bucket: s.bucket,
        Prefix: prefix,
        ...(token === undefined ? {} : { ContinuationToken: token }),
      }),
    );
    n += page.KeyCount ?? 0;
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return n;
}

/** N backups at both servers, 16 writes in flight per server. */
async function plant(servers: readonly Served[], folders: number, now: number, signer: Signer) {
  const all = Array.from({ length: folders }, (_, i) =>
    backupObjects(idOf(now, i), new Date(now - (i + 1) * HOUR), signer),
  ).flat();
  await Promise.all(
    servers.map((s) =>
      mapLimit(all, 16, ([key, body]) =>
        s.client.send(new PutObjectCommand({ Bucket: s.bucket, Key: key, Body: body })),
      ),
    ),
  );
  for (const s of servers) {
    const listed = await countKeys(s, PREFIX);
    if (listed !== all.length)
      throw new Error(`planted ${all.length} objects, s3rver lists ${listed}`);
  }
}

/** The CLI's flags, the secrets apart: through the environment, as the CLI asks. */
function cliArguments(flags: Record<string, string>): {
  args: string[];
  secrets: Record<string, string>;
} {
  const secret = (k: string) => k.endsWith('secret-access-key');
  const args = Object.entries(flags)
    .filter(([k]) => !secret(k))
    .map(([k, v]) => `--${k}=${v}`);
  const secrets = Object.fromEntries(
    Object.entries(flags)
      .filter(([k]) => secret(k))
      .map(([k, v]) => [`PG_DR_${k.toUpperCase().replace(/-/g, '_')}`, v]),
  );
  return { args, secrets };
}

/** Runs the CLI under GNU time: wall seconds and the process's peak RSS. */
async function measure(
  cli: string,
  command: string,
  flags: Record<string, string>,
  work: string,
): Promise<Measured & { stdout: string }> {
  const timing = join(work, `${command}.time`);
  const output = join(work, `${command}.out`);
  const { args, secrets } = cliArguments(flags);
  // stdout to a file descriptor of our own: the CLI exits as soon as it has written, and a
  // pipe (execa's, even with a file target) would lose what it had not yet drained.
  const fd = openSync(output, 'w');
  const r = await new Promise<{ code: number | null; stderr: string }>((done, fail) => {
    const child = spawn(
      '/usr/bin/time',
      ['-f', '%e %M %U %S', '-o', timing, process.execPath, cli, command, ...args],
      {
        stdio: ['ignore', fd, 'pipe'],
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          GITHUB_WORKSPACE: work,
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
          ...secrets,
        },
      },
    );
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.on('error', fail);
    child.on('close', (code) => done({ code, stderr }));
  }).finally(() => closeSync(fd));
  const [seconds, kb, user, sys] = (await readFile(timing, 'utf8'))
    .trim()
    .split(/\s+/)
    .slice(-4)
    .map(Number);
  if (r.code !== 0) throw new Error(`${command} failed (${r.code}):\n${r.stderr}`);
  return {
    command,
    seconds: seconds ?? Number.NaN,
    rssMiB: (kb ?? Number.NaN) / 1024,
    cpuSeconds: (user ?? Number.NaN) + (sys ?? Number.NaN),
    stdout: await readFile(output, 'utf8'),
  };
}

function relaunchWithLegacyProvider(): boolean {
  const has =
    process.execArgv.includes(LEGACY) || (process.env.NODE_OPTIONS ?? '').includes(LEGACY);
  if (has) return false;
  const r = spawnSync(process.execPath, [LEGACY, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
  });
  process.exitCode = r.status ?? 1;
  return true;
}

async function main(): Promise<void> {
  if (relaunchWithLegacyProvider()) return;
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { values } = parseArgs({
    options: {
      folders: { type: 'string', default: '2000' },
      cli: { type: 'string', default: 'dist/cli/index.js' },
      label: { type: 'string' },
      serve: { type: 'string' },
      baseline: { type: 'string' },
      'baseline-label': { type: 'string' },
      'no-write': { type: 'boolean' },
      hold: { type: 'string' },
    },
  });
  if (values.serve) return serveChild(values.serve);
  const folders = Number(values.folders);
  if (!Number.isInteger(folders) || folders < 1)
    throw new Error(`--folders: "${values.folders}". Expected a whole number ≥ 1.`);
  const cli = resolve(values.cli);
  const servers: Served[] = [];
  const work = await tempDir('bench-catalog');
  try {
    servers.push(await serve('pgdr-primary'), await serve('pgdr-secondary'));
    const [primary, secondary] = servers as [Served, Served];
    const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
    const key = ed25519KeyPair(work, 'signing');
    const now = Date.now();
    const t0 = Date.now();
    await plant(servers, folders, now, parseSigningKey(key.privateKey));
    const plantSeconds = (Date.now() - t0) / 1000;
    const common = {
      prefix: PREFIX,
      'trusted-signers': key.publicKey,
      ...destinationInputs(
        { endpoint: primary.endpoint, ...credentials },
        { endpoint: secondary.endpoint, ...credentials },
      ),
    };
    if (values.hold) return await hold(values.hold, common);
    const builds = [
      ...(values.baseline
        ? [{ cli: resolve(values.baseline), label: values['baseline-label'] ?? 'baseline' }]
        : []),
      { cli, label: values.label ?? `${READ_CONCURRENCY} reads in flight per destination` },
    ];
    const lines = [
      `- ${folders} backup folders per destination (${folders * 6} objects each: 2 objects, a signed manifest, a signed verification record), planted in ${plantSeconds.toFixed(1)} s; trusted-signers set.`,
    ];
    const loadBefore = loadavg()[0] ?? 0;
    let last: Measured[] = [];
    for (const b of builds) {
      last = await measureBuild(b.cli, common, folders, work);
      for (const r of last)
        lines.push(
          `- ${b.label}, \`${r.command}${r.command === 'prune' ? ' --dry-run' : ''}\`: ${r.seconds.toFixed(2)} s, peak RSS ${r.rssMiB.toFixed(0)} MiB, CPU ${r.cpuSeconds.toFixed(2)} s.`,
        );
    }
    const worst = (c: string) => last.find((r) => r.command === c)?.seconds ?? Number.NaN;
    const rss = Math.max(...last.map((r) => r.rssMiB));
    const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');
    lines.push(
      `- Targets, ${builds.at(-1)?.label}: list ${worst('list').toFixed(1)} s and monitor ${worst('monitor').toFixed(1)} s ≤ 10 s: **${verdict(worst('list') <= 10 && worst('monitor') <= 10)}**; peak RSS ${rss.toFixed(0)} MiB ≤ 300 MiB: **${verdict(rss <= 300)}**.`,
      `- 1-minute load average ${loadBefore.toFixed(1)} before the runs, ${(loadavg()[0] ?? 0).toFixed(1)} after (2 cores; the s3rver servers and anything else running count).`,
    );
    process.stdout.write(`${lines.join('\n')}\n`);
    if (!values['no-write']) await writeSection(lines);
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    await rm(work, { recursive: true, force: true });
  }
}

/** list (which must find every planted backup complete), monitor and prune --dry-run. */
async function measureBuild(
  cli: string,
  common: Record<string, string>,
  folders: number,
  work: string,
): Promise<Measured[]> {
  const list = await measure(cli, 'list', { ...common, format: 'json' }, work);
  const doc = JSON.parse(list.stdout) as { report: unknown };
  const listed = (typeof doc.report === 'string' ? JSON.parse(doc.report) : doc.report) as {
    backups: { complete: boolean }[];
  };
  const complete = listed.backups.filter((b) => b.complete).length;
  if (complete !== folders)
    throw new Error(
      `list found ${complete} complete backups of ${folders} planted: ${JSON.stringify(listed.backups[0])}`,
    );
  const prune = {
    'dry-run': 'true',
    'keep-daily': '30',
    'keep-last': '24',
    'max-deletions': '100000',
  };
  return [
    list,
    await measure(cli, 'monitor', common, work),
    await measure(cli, 'prune', { ...common, ...prune }, work),
  ];
}

/**
 * Writes the CLI's arguments to `file`, one a line, and the secrets (s3rver's fixed test
 * key) as `export` lines to `file.env`; then waits for SIGINT or SIGTERM, the servers up:
 * for profiling one command by hand.
 */
async function hold(file: string, common: Record<string, string>): Promise<void> {
  const { args, secrets } = cliArguments(common);
  await writeFile(file, `${args.join('\n')}\n`);
  await writeFile(
    `${file}.env`,
    Object.entries(secrets)
      .map(([k, v]) => `export ${k}=${v}\n`)
      .join(''),
  );
  process.stdout.write(
    `bench:catalog: arguments in ${file}, secrets in ${file}.env; servers up until Ctrl-C\n`,
  );
  await new Promise<void>((done) => {
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}

async function writeSection(lines: readonly string[]): Promise<void> {
  await writeBenchSection(
    'catalog',
    'Reading the bucket (`npm run bench:catalog`)',
    `Measured ${new Date().toISOString().slice(0, 10)}, on this machine, against two local s3rver servers; each command run once as the CLI (\`node dist/cli/index.js\`), time and peak RSS by GNU time. Targets (issue 16): list and monitor ≤ 10 s, peak RSS ≤ 300 MiB.`,
    lines,
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:catalog: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
