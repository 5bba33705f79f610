// `npm run bench`: how fast pg-dr backs up and restores, against the floor (pg_dump
// alone), the best shell pipeline with native tools, and what users run today
// (pg_dump to a file, gpg, one upload after the other). See BENCHMARKS.md.
//
//   npm run bench -- [--size small,large] [--reps 3] [--out results.md] [--json results.json]
//                    [--stages auto|on|off] [--experiments on|off] [--methods a,b|none]
//                    [--stage-filter <regex>]
//                    [--run-timeout <s>] [--max-minutes 180] [--node <path>] [--aws <path>]
//
// Sizes: tiny (~12 MB, for the smoke test), small (~150 MB), large (~1.5 GB), or e.g. 400MB.
// Everything runs on this machine: a throwaway PostgreSQL cluster, two s3rver instances
// (in this process, so every command is spawned asynchronously), the built CLI
// (`node dist/cli/index.js`). Each run is bounded by --run-timeout; the whole by
// --max-minutes (what is left is skipped and said so in the report).
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { execa } from 'execa';
import { type PgCluster, startPostgres } from '../test/harness/postgres.js';
import {
  PRIMARY_BUCKET,
  type S3Pair,
  type S3Server,
  SECONDARY_BUCKET,
  startS3Pair,
} from '../test/harness/s3.js';
import { generateDatabase } from './bench/generate.js';
import { describeMachine, loadAverage } from './bench/machine.js';
import {
  BACKUP_METHODS,
  type BenchResult,
  type Method,
  RESTORE_METHODS,
  type RunRecord,
  renderReport,
  type SizeInfo,
} from './bench/report.js';
import { killTree, type TreeStats, watchTree } from './bench/sampler.js';
import {
  CORE_STAGES,
  ISOLATED,
  PLANS,
  type StageConfig,
  type StageResult,
} from './bench/stages.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const PRESETS: Record<string, number> = { tiny: 12e6, small: 150e6, large: 1500e6 };
const BUILT_CLI = resolve('dist/cli/index.js');
const RESTORE_PREFIX = 'restore-source/';
const HAVE_TIME = existsSync('/usr/bin/time');
/** Root pids of the measured commands running now. */
const running = new Set<number>();

const log = (s: string) => process.stderr.write(`${s}\n`);

interface Options {
  sizes: { label: string; bytes: number }[];
  reps: number;
  out: string | null;
  json: string | null;
  stages: 'auto' | 'on' | 'off';
  experiments: boolean;
  methods: Method[];
  stageFilter: RegExp | null;
  runTimeoutS: number | null;
  maxMinutes: number;
  node: string;
  aws: string | null;
  /** A long path in front of each S3 server: one-way delay and per-connection rate. */
  link: { delayMs: number; mbPerSecond: number } | null;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      size: { type: 'string', default: 'small,large' },
      reps: { type: 'string', default: '3' },
      out: { type: 'string' },
      json: { type: 'string' },
      stages: { type: 'string', default: 'auto' },
      experiments: { type: 'string', default: 'on' },
      methods: { type: 'string' },
      'stage-filter': { type: 'string' },
      'run-timeout': { type: 'string' },
      'max-minutes': { type: 'string', default: '180' },
      node: { type: 'string' },
      aws: { type: 'string' },
      link: { type: 'string' },
    },
  });
  const sizes = (values.size ?? '').split(',').map((s) => {
    const t = s.trim();
    const preset = PRESETS[t];
    if (preset) return { label: t, bytes: preset };
    const m = /^(\d+(?:\.\d+)?)\s*(MB|GB)$/i.exec(t);
    if (!m) throw new Error(`--size: "${t}" is not tiny, small, large or a size like 400MB`);
    return { label: t, bytes: Number(m[1]) * (m[2]?.toUpperCase() === 'GB' ? 1e9 : 1e6) };
  });
  const reps = Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1) throw new Error('--reps: expected a whole number ≥ 1');
  const all = [...BACKUP_METHODS, ...RESTORE_METHODS];
  const methods =
    values.methods === 'none'
      ? []
      : values.methods
        ? values.methods.split(',').map((m) => {
            const t = m.trim() as Method;
            if (!all.includes(t))
              throw new Error(`--methods: unknown "${t}" (known: ${all.join(', ')})`);
            return t;
          })
        : all;
  if (!['auto', 'on', 'off'].includes(values.stages ?? ''))
    throw new Error('--stages: auto, on or off');
  return {
    sizes,
    reps,
    out: values.out ?? null,
    json: values.json ?? (values.out ? values.out.replace(/(\.md)?$/, '.json') : null),
    stages: values.stages as Options['stages'],
    experiments: values.experiments !== 'off',
    methods,
    stageFilter: values['stage-filter'] ? new RegExp(values['stage-filter']) : null,
    runTimeoutS: values['run-timeout'] ? Number(values['run-timeout']) : null,
    maxMinutes: Number(values['max-minutes']),
    node: values.node ?? process.execPath,
    aws: values.aws ?? null,
    link: values.link ? parseLink(values.link) : null,
  };
}

/** `--link 40,15`: 40 ms one way, 15 MB/s per TCP connection. */
function parseLink(v: string): NonNullable<Options['link']> {
  const m = /^(\d+(?:\.\d+)?),(\d+(?:\.\d+)?)$/.exec(v.trim());
  if (!m) throw new Error(`--link: "${v}" is not <one-way ms>,<MB/s per connection> (e.g. 40,15)`);
  return { delayMs: Number(m[1]), mbPerSecond: Number(m[2]) };
}

/**
 * The endpoints the measured commands use: the servers themselves, or with --link a proxy
 * in front of each (scripts/bench/link-proxy.ts, its own process).
 */
async function startEndpoints(
  opts: Options,
  s3: S3Pair,
): Promise<{ primary: string; secondary: string; stop(): void }> {
  if (!opts.link)
    return { primary: s3.primary.endpoint, secondary: s3.secondary.endpoint, stop() {} };
  const child = execa(
    process.execPath,
    [
      '--import',
      'tsx',
      'scripts/bench/link-proxy.ts',
      String(opts.link.delayMs),
      String(opts.link.mbPerSecond),
      String(s3.primary.port),
      String(s3.secondary.port),
    ],
    { stdin: 'pipe', stdout: 'pipe', stderr: 'inherit', reject: false },
  );
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout?.on('data', (c: Buffer) => {
      buf += c.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(buf.slice(0, nl));
    });
    void child.then((r) => reject(new Error(`link proxy exited: ${r.exitCode}`)));
  });
  const [primary, secondary] = (JSON.parse(line) as { endpoints: string[] }).endpoints;
  if (!primary || !secondary) throw new Error('link proxy: no endpoints');
  return { primary, secondary, stop: () => child.kill() };
}

/** The AWS CLI to use: v2 preferred (Debian's /usr/bin/aws), else whatever `aws` is on PATH. */
async function findAws(wanted: string | null): Promise<string> {
  const candidates = wanted ? [wanted] : ['/usr/bin/aws', 'aws'];
  let fallback: string | null = null;
  for (const c of candidates) {
    const r = await execa(c, ['--version'], { reject: false, all: true });
    if (r.exitCode !== 0) continue;
    if (/aws-cli\/2/.test(r.all ?? '')) return c;
    fallback ??= c;
  }
  if (fallback) return fallback;
  throw new Error('No AWS CLI found: install awscli (apt-get install awscli) or pass --aws.');
}

async function requireTools(): Promise<void> {
  const missing: string[] = [];
  for (const t of ['zstd', 'age', 'gpg', 'gpgconf', 'bash', 'tee', 'mkfifo', 'stat']) {
    const r = await execa('bash', ['-c', `command -v ${t}`], { reject: false });
    if (r.exitCode !== 0) missing.push(t);
  }
  if (missing.length > 0)
    throw new Error(
      `Missing tools: ${missing.join(', ')} (Debian: apt-get install zstd age gnupg coreutils).`,
    );
  if (!existsSync(BUILT_CLI))
    throw new Error(`${BUILT_CLI} is missing: run \`npm run package\` first.`);
}

/** One command, measured: wall time, the process tree's memory/CPU/writes, the temp dir. */
interface Measured {
  readonly ok: boolean;
  readonly error: string | null;
  readonly seconds: number;
  readonly stats: TreeStats;
  readonly timeMaxRss: number | null;
  readonly benchCpuSeconds: number;
  readonly stdout: string;
  readonly loadBefore: string;
  readonly loadAfter: string;
}

class Bench {
  private n = 0;
  readonly deadline: number;
  constructor(
    readonly opts: Options,
    readonly work: string,
    readonly pg: PgCluster,
    readonly s3: S3Pair,
    readonly postmaster: number,
  ) {
    this.deadline = Date.now() + opts.maxMinutes * 60_000;
  }

  async measure(
    cmd: string,
    args: readonly string[],
    o: { env: Record<string, string>; tmpDir?: string; timeoutS: number; cwd?: string },
  ): Promise<Measured> {
    const timeFile = join(this.work, `time-${++this.n}.txt`);
    const loadBefore = loadAverage();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    // /usr/bin/time, when there, adds the kernel's peak RSS of the largest process.
    const [file, argv] = HAVE_TIME
      ? ['/usr/bin/time', ['-f', '%M', '-o', timeFile, cmd, ...args]]
      : [cmd, [...args]];
    const child = execa(file, argv, {
      ...(o.cwd ? { cwd: o.cwd } : {}),
      env: o.env,
      extendEnv: false,
      stdin: 'ignore',
      reject: false,
      timeout: o.timeoutS * 1000,
      forceKillAfterDelay: 5000,
      maxBuffer: 64 * 1024 * 1024,
      cleanup: true,
    });
    running.add(child.pid as number);
    const watch = watchTree(child.pid as number, {
      ...(o.tmpDir ? { tmpDir: o.tmpDir } : {}),
      alsoCpu: [this.postmaster],
    });
    const r = await child;
    const seconds = (performance.now() - t0) / 1000;
    running.delete(child.pid as number);
    const stats = watch.stop();
    const cpu = process.cpuUsage(cpu0);
    let timeMaxRss: number | null = null;
    try {
      const kb = Number(readFileSync(timeFile, 'utf8').trim().split('\n').at(-1));
      if (Number.isFinite(kb) && kb > 0) timeMaxRss = kb * 1024;
    } catch {}
    const ok = r.exitCode === 0 && !r.timedOut;
    const tail = String(r.stderr ?? '')
      .trim()
      .split('\n')
      .slice(-6)
      .join(' | ');
    return {
      ok,
      error: ok
        ? null
        : r.timedOut
          ? `timed out after ${o.timeoutS} s`
          : `exit ${r.exitCode ?? r.signal}: ${tail}`,
      seconds,
      stats,
      timeMaxRss,
      benchCpuSeconds: (cpu.user + cpu.system) / 1e6,
      stdout: String(r.stdout ?? ''),
      loadBefore,
      loadAfter: loadAverage(),
    };
  }

  /** Removes every object but the restore source, so the disk does not fill up. */
  async clean(): Promise<void> {
    for (const [server, bucket] of [
      [this.s3.primary, PRIMARY_BUCKET],
      [this.s3.secondary, SECONDARY_BUCKET],
    ] as const) {
      const c = server.client();
      for (const key of await server.listKeys(bucket))
        if (!key.startsWith(RESTORE_PREFIX))
          await c.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
      c.destroy();
    }
  }
}

async function objectSize(server: S3Server, bucket: string, key: string): Promise<number> {
  const c = server.client();
  try {
    const h = await c.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return h.ContentLength ?? 0;
  } finally {
    c.destroy();
  }
}

/**
 * Copies the code under test — the built CLI, and src/ plus scripts/bench/ for the stage
 * runs — into the work dir, so a rebuild or an edit in the checkout during a long run
 * cannot change (or break) what is measured half-way.
 */
async function snapshotCode(
  work: string,
): Promise<{ root: string; cli: string; cliSha256: string }> {
  const root = join(work, 'code');
  await cp('dist/cli', join(root, 'dist/cli'), { recursive: true });
  await cp('src', join(root, 'src'), { recursive: true });
  await cp('scripts/bench', join(root, 'scripts/bench'), { recursive: true });
  await cp('package.json', join(root, 'package.json'));
  await symlink(resolve('node_modules'), join(root, 'node_modules'));
  const cli = join(root, 'dist/cli/index.js');
  return {
    root,
    cli,
    cliSha256: createHash('sha256').update(readFileSync(cli)).digest('hex'),
  };
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  await requireTools();
  const aws = await findAws(opts.aws);
  const startedAt = new Date().toISOString();
  log(`bench: load average ${loadAverage()}; starting PostgreSQL and two s3rver`);
  const work = await mkdtemp(join(tmpdir(), 'pg-dr-bench-'));
  const code = await snapshotCode(work);
  const CLI = code.cli;
  const [pg, s3] = await Promise.all([startPostgres({ name: 'bench' }), startS3Pair()]);
  const endpoints = await startEndpoints(opts, s3);
  // Interrupted (Ctrl-C, a timeout): stop what runs, the cluster and the servers, then exit.
  const stopAll = (signal: NodeJS.Signals) => {
    log(`bench: ${signal}, stopping`);
    for (const pid of running) killTree(pid);
    endpoints.stop();
    void Promise.all([pg.stop(), s3.stop()])
      .then(() => rm(work, { recursive: true, force: true }))
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', stopAll);
  process.once('SIGTERM', stopAll);
  const notes: string[] = [];
  try {
    const postmaster = Number(
      readFileSync(join(pg.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0],
    );
    const [ver] = await pg.query<{ v: string }>(
      'postgres',
      "SELECT current_setting('server_version') AS v",
    );
    const machine = await describeMachine({
      node: opts.node,
      pgBinDir: pg.binDir,
      aws,
      serverVersion: ver?.v ?? '?',
    });
    const head = await execa('git', ['rev-parse', '--short', 'HEAD'], { reject: false });
    const dirty = await execa('git', ['status', '--porcelain', '--', 'dist', 'src'], {
      reject: false,
    });
    (machine.versions as Record<string, string>)['pg-dr'] =
      `${head.stdout.trim() || '?'}${dirty.stdout.trim() ? ' + uncommitted changes' : ''}, dist/cli/index.js sha256 ${code.cliSha256.slice(0, 12)}`;
    const result: BenchResult = {
      startedAt,
      finishedAt: startedAt,
      machine,
      reps: opts.reps,
      command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
      sizes: [],
      runs: [],
      notes,
    };
    const bench = new Bench(opts, work, pg, s3, postmaster);
    const identity = await generateX25519Identity();
    const recipient = await identityToRecipient(identity);
    const identityFile = join(work, 'identity.txt');
    await writeFile(identityFile, `${identity}\n`, { mode: 0o600 });
    const awsConfig = join(work, 'aws-config');
    await writeFile(awsConfig, '[default]\nregion = us-east-1\ns3 =\n  addressing_style = path\n');
    const gnupg = join(work, 'gnupg');
    await mkdir(gnupg, { mode: 0o700 });
    await chmod(gnupg, 0o700);
    const workspace = join(work, 'workspace');
    await mkdir(workspace);
    const baseEnv = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? work,
      LANG: 'C.UTF-8',
    };
    const pgEnv = {
      PGHOST: pg.host,
      PGPORT: String(pg.port),
      PGUSER: pg.user,
      PGPASSWORD: pg.password,
    };
    const awsEnv = {
      AWS_CONFIG_FILE: awsConfig,
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_PAGER: '',
    };
    const pgDrEnv = (db: string, extra: Record<string, string>) => ({
      ...baseEnv,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      GITHUB_WORKSPACE: workspace,
      PG_DR_DATABASE_URL: pg.url(db),
      PG_DR_AGE_RECIPIENTS: recipient,
      PG_DR_PRIMARY_NAME: 'primary',
      PG_DR_PRIMARY_ENDPOINT: endpoints.primary,
      PG_DR_PRIMARY_BUCKET: PRIMARY_BUCKET,
      PG_DR_PRIMARY_ACCESS_KEY_ID: 'S3RVER',
      PG_DR_PRIMARY_SECRET_ACCESS_KEY: 'S3RVER',
      PG_DR_SECONDARY_NAME: 'secondary',
      PG_DR_SECONDARY_ENDPOINT: endpoints.secondary,
      PG_DR_SECONDARY_BUCKET: SECONDARY_BUCKET,
      PG_DR_SECONDARY_ACCESS_KEY_ID: 'S3RVER',
      PG_DR_SECONDARY_SECRET_ACCESS_KEY: 'S3RVER',
      PG_DR_PREFIX: 'bench/',
      ...extra,
    });
    const pgDump = join(pg.binDir, 'pg_dump');
    const pgRestore = join(pg.binDir, 'pg_restore');
    const largest = Math.max(...opts.sizes.map((z) => z.bytes));

    for (const spec of opts.sizes) {
      if (Date.now() > bench.deadline) {
        notes.push(`${spec.label}: skipped, --max-minutes reached.`);
        continue;
      }
      const timeoutS = opts.runTimeoutS ?? Math.round(120 + (spec.bytes / 1e6) * 0.6);
      const loadBefore = loadAverage();
      log(
        `\n== ${spec.label}: generating ~${(spec.bytes / 1e6).toFixed(0)} MB (load ${loadBefore})`,
      );
      const db = `bench_${spec.label.replace(/\W/g, '_')}`;
      const gen = await generateDatabase(pg, db, spec.bytes, log);
      log(`   ${(gen.sizeBytes / 1e6).toFixed(1)} MB in ${gen.seconds.toFixed(0)} s`);
      const dbEnv = { ...baseEnv, ...pgEnv, PGDATABASE: db };

      // The restore source: one pg-dr backup (zstd) kept aside, and its archive as a file.
      const src = await bench.measure(opts.node, [CLI, 'backup', '--format', 'json'], {
        env: pgDrEnv(db, { PG_DR_PREFIX: RESTORE_PREFIX, PG_DR_ROW_COUNTS: 'exact' }),
        timeoutS,
      });
      if (!src.ok) throw new Error(`restore-source backup failed: ${src.error}`);
      const srcDoc = JSON.parse(src.stdout) as BackupDoc;
      const dbObj = srcDoc.manifest.objects.find((o) => o.kind === 'database');
      if (!dbObj) throw new Error('restore-source: no database object');
      const archive = join(work, `${db}.dump`);
      const got = await s3.primary.client().send(
        new GetObjectCommand({
          Bucket: PRIMARY_BUCKET,
          Key: `${RESTORE_PREFIX}${srcDoc['backup-id']}/${dbObj.name}`,
        }),
      );
      await feed(
        got.Body as Readable,
        'bash',
        ['-c', `set -o pipefail; age -d -i "$ID" | zstd -q -d -c > "$OUT"`],
        {
          env: { ...baseEnv, ID: identityFile, OUT: archive },
          extendEnv: false,
          timeout: timeoutS * 1000,
        },
      );
      const archiveBytes = Number((await execa('stat', ['-c', '%s', archive])).stdout);
      const size: SizeInfo = {
        label: spec.label,
        database: db,
        sizeBytes: gen.sizeBytes,
        byteaBytes: gen.byteaBytes,
        archiveBytes,
        rows: gen.rows,
        generateSeconds: gen.seconds,
        loadBefore,
        loadAfter: loadBefore,
      };
      result.sizes.push(size);

      const record = (
        name: string,
        kind: 'method' | 'stage',
        rep: number,
        m: Measured,
        extra: Partial<RunRecord> = {},
      ) => {
        const r: RunRecord = {
          size: spec.label,
          name,
          kind,
          rep,
          ok: m.ok,
          error: m.error,
          seconds: m.seconds,
          stats: m.stats,
          timeMaxRss: m.timeMaxRss,
          benchCpuSeconds: m.benchCpuSeconds,
          storedBytes: null,
          loadBefore: m.loadBefore,
          loadAfter: m.loadAfter,
          ...extra,
        };
        result.runs.push(r);
        log(
          `   ${name.padEnd(34)} rep ${rep}: ${m.ok ? `${m.seconds.toFixed(2)} s, tree ${(m.stats.peakTreeRss / 2 ** 20).toFixed(0)} MiB` : `FAILED ${m.error}`}  (load ${m.loadAfter})`,
        );
        return r;
      };
      let nativeChecked = false;

      const runMethod = async (method: Method, rep: number): Promise<void> => {
        const key = `${method.replace(/\W+/g, '-')}/${spec.label}-${rep}.bin`;
        const tmp = await mkdtemp(join(work, 'tmp-'));
        try {
          if (method === 'floor') {
            const m = await bench.measure(
              'bash',
              [
                '-c',
                'set -o pipefail; "$PG_DUMP" --format=custom --compress=0 --no-sync | cat > /dev/null',
              ],
              { env: { ...dbEnv, PG_DUMP: pgDump }, timeoutS },
            );
            record(method, 'method', rep, m);
          } else if (method === 'native') {
            const script = [
              'set -euo pipefail',
              'fifo="$TMPDIR/native.fifo"; mkfifo "$fifo"',
              '"$AWS" s3 cp - "s3://$B1/$KEY" --endpoint-url "$EP1" --no-progress < "$fifo" & up=$!',
              '"$PG_DUMP" --format=custom --compress=0 | zstd -q -c -3 -T0 | age -r "$RECIPIENT" | tee "$fifo" | "$AWS" s3 cp - "s3://$B2/$KEY" --endpoint-url "$EP2" --no-progress',
              'wait "$up"',
            ].join('\n');
            const m = await bench.measure('bash', ['-c', script], {
              env: {
                ...dbEnv,
                ...awsEnv,
                TMPDIR: tmp,
                AWS: aws,
                PG_DUMP: pgDump,
                RECIPIENT: recipient,
                B1: PRIMARY_BUCKET,
                B2: SECONDARY_BUCKET,
                EP1: endpoints.primary,
                EP2: endpoints.secondary,
                KEY: key,
              },
              tmpDir: tmp,
              timeoutS,
            });
            let stored: number | null = null;
            if (m.ok) {
              // The AWS CLI must really have streamed the whole thing to both.
              const [a, b] = await Promise.all([
                objectSize(s3.primary, PRIMARY_BUCKET, key),
                objectSize(s3.secondary, SECONDARY_BUCKET, key),
              ]);
              if (a !== b || a === 0) throw new Error(`native: object sizes differ (${a} vs ${b})`);
              stored = a;
              if (!nativeChecked) {
                await checkAgeObject(
                  s3.primary,
                  key,
                  identityFile,
                  pgRestore,
                  baseEnv,
                  archiveBytes,
                  timeoutS,
                );
                nativeChecked = true;
              }
            }
            record(method, 'method', rep, m, { storedBytes: stored });
          } else if (method === 'peer') {
            const script = [
              'set -euo pipefail',
              '"$PG_DUMP" --format=custom --no-sync -f "$TMPDIR/db.dump"',
              'gpg --batch --yes --quiet --pinentry-mode loopback --passphrase "$PASSPHRASE" --symmetric --cipher-algo AES256 -o "$TMPDIR/db.dump.gpg" "$TMPDIR/db.dump"',
              '"$AWS" s3 cp "$TMPDIR/db.dump.gpg" "s3://$B1/$KEY" --endpoint-url "$EP1" --no-progress >/dev/null',
              '"$AWS" s3 cp "$TMPDIR/db.dump.gpg" "s3://$B2/$KEY" --endpoint-url "$EP2" --no-progress >/dev/null',
              'stat -c %s "$TMPDIR/db.dump.gpg"',
              'rm -f "$TMPDIR/db.dump" "$TMPDIR/db.dump.gpg"',
            ].join('\n');
            const m = await bench.measure('bash', ['-c', script], {
              env: {
                ...dbEnv,
                ...awsEnv,
                TMPDIR: tmp,
                GNUPGHOME: gnupg,
                AWS: aws,
                PG_DUMP: pgDump,
                PASSPHRASE: randomBytes(24).toString('base64url'),
                B1: PRIMARY_BUCKET,
                B2: SECONDARY_BUCKET,
                EP1: endpoints.primary,
                EP2: endpoints.secondary,
                KEY: key,
              },
              tmpDir: tmp,
              timeoutS,
            });
            await execa('gpgconf', ['--kill', 'gpg-agent'], {
              env: { ...baseEnv, GNUPGHOME: gnupg },
              reject: false,
            });
            record(method, 'method', rep, m, {
              storedBytes: m.ok ? Number(m.stdout.trim().split('\n').at(-1)) : null,
            });
          } else if (method.startsWith('pg-dr ') && BACKUP_METHODS.includes(method)) {
            const compression = method.slice(6);
            const m = await bench.measure(opts.node, [CLI, 'backup', '--format', 'json'], {
              env: pgDrEnv(db, { PG_DR_COMPRESSION: compression, TMPDIR: tmp }),
              tmpDir: tmp,
              timeoutS,
            });
            let stored: number | null = null;
            let ok = m.ok;
            let error = m.error;
            if (m.ok) {
              const doc = JSON.parse(m.stdout) as BackupDoc;
              stored =
                doc.manifest.objects.find((o) => o.kind === 'database')?.encrypted.bytes ?? null;
              if (doc.status !== 'ok' || doc.manifest.database.compression !== compression) {
                ok = false;
                error = `status ${doc.status}, compression ${doc.manifest.database.compression}`;
              }
            }
            record(method, 'method', rep, { ...m, ok, error }, { storedBytes: stored });
          } else {
            await pg.query('postgres', 'DROP DATABASE IF EXISTS restore_target');
            await pg.createDatabase('restore_target');
            let m: Measured;
            const jobs = /^(?:pg_restore -j|pg-dr restore jobs) (\d+)$/.exec(method)?.[1];
            if (method.startsWith('pg_restore -j ')) {
              // -j cannot run in one transaction: into a new, empty database, as pg-dr does.
              m = await bench.measure(
                pgRestore,
                [
                  '--no-password',
                  '--no-owner',
                  '--no-privileges',
                  '--exit-on-error',
                  `--jobs=${jobs}`,
                  '--dbname=restore_target',
                  archive,
                ],
                { env: { ...baseEnv, ...pgEnv, TMPDIR: tmp }, tmpDir: tmp, timeoutS },
              );
            } else if (method === 'pg_restore') {
              m = await bench.measure(
                pgRestore,
                [
                  '--no-password',
                  '--no-owner',
                  '--no-privileges',
                  '--exit-on-error',
                  '--single-transaction',
                  '--dbname=restore_target',
                  archive,
                ],
                { env: { ...baseEnv, ...pgEnv, TMPDIR: tmp }, tmpDir: tmp, timeoutS },
              );
            } else {
              m = await bench.measure(opts.node, [CLI, 'restore', '--format', 'json'], {
                env: pgDrEnv('restore_target', {
                  PG_DR_PREFIX: RESTORE_PREFIX,
                  PG_DR_AGE_IDENTITY: identity,
                  ...(jobs ? { PG_DR_RESTORE_JOBS: jobs } : {}),
                  TMPDIR: tmp,
                }),
                tmpDir: tmp,
                timeoutS,
              });
              if (m.ok) {
                const doc = JSON.parse(m.stdout) as {
                  report?: { ok: boolean; mismatches: unknown[] };
                };
                if (!doc.report?.ok || (doc.report.mismatches ?? []).length > 0)
                  m = {
                    ...m,
                    ok: false,
                    error: `restore report: ${JSON.stringify(doc.report).slice(0, 300)}`,
                  };
              }
            }
            record(method, 'method', rep, m);
            await pg.query('postgres', 'DROP DATABASE IF EXISTS restore_target');
          }
        } finally {
          await rm(tmp, { recursive: true, force: true });
          await bench.clean();
        }
      };

      for (let rep = 1; rep <= opts.reps; rep++) {
        const order = rotate(opts.methods, rep - 1);
        for (const method of order) {
          if (Date.now() > bench.deadline) {
            notes.push(`${spec.label}: ${method} rep ${rep} skipped, --max-minutes reached.`);
            continue;
          }
          await runMethod(method, rep);
        }
      }

      const stagesHere = opts.stages === 'on' || (opts.stages === 'auto' && spec.bytes === largest);
      if (stagesHere) {
        const names = [
          ...CORE_STAGES,
          ...(opts.experiments
            ? [
                ...Object.keys(PLANS).filter(
                  (k) => !(CORE_STAGES as readonly string[]).includes(k),
                ),
                ...ISOLATED,
              ]
            : []),
        ];
        const chosen = opts.stageFilter ? names.filter((n) => opts.stageFilter?.test(n)) : names;
        const compressed = result.runs.find(
          (r) => r.size === spec.label && r.name === 'pg-dr zstd' && r.ok,
        )?.storedBytes;
        for (let rep = 1; rep <= opts.reps; rep++) {
          for (const stage of rotate(chosen, rep - 1)) {
            if (Date.now() > bench.deadline) {
              notes.push(
                `${spec.label}: stage ${stage} rep ${rep} skipped, --max-minutes reached.`,
              );
              continue;
            }
            const cfg: StageConfig = {
              stage,
              databaseUrl: pg.url(db),
              pgDump,
              zstd: 'zstd',
              recipient,
              dbSizeBytes: gen.sizeBytes,
              destinations: [
                { name: 'primary', endpoint: endpoints.primary, bucket: PRIMARY_BUCKET },
                { name: 'secondary', endpoint: endpoints.secondary, bucket: SECONDARY_BUCKET },
              ],
              key: `stages/${spec.label}-${rep}.bin`,
              archiveBytes,
              isolatedBytes: Math.min(
                256 * 2 ** 20,
                Math.max(16 * 2 ** 20, compressed ?? archiveBytes / 3),
              ),
            };
            const m = await bench.measure(
              opts.node,
              ['--import', 'tsx', 'scripts/bench/stages.ts', JSON.stringify(cfg)],
              {
                cwd: code.root,
                env: { ...baseEnv, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
                timeoutS,
              },
            );
            let stage_: StageResult | undefined;
            try {
              if (m.ok)
                stage_ = JSON.parse(m.stdout.trim().split('\n').at(-1) ?? '') as StageResult;
            } catch {}
            let checked: Measured =
              m.ok && !stage_ ? { ...m, ok: false, error: 'no result line' } : m;
            // What pg-dr's own age writer stored must be what the age CLI reads.
            if (checked.ok && (stage.startsWith('+ uploads') || stage === 'x: none') && rep === 1) {
              try {
                await checkAgeObject(
                  s3.primary,
                  cfg.key,
                  identityFile,
                  pgRestore,
                  baseEnv,
                  archiveBytes,
                  timeoutS,
                  !stage.includes('none'),
                );
              } catch (e) {
                checked = { ...checked, ok: false, error: (e as Error).message };
              }
            }
            record(stage, 'stage', rep, checked, stage_ ? { stage: stage_ } : {});
            await bench.clean();
          }
        }
      }
      size.loadAfter = loadAverage();
      await rm(archive, { force: true });
      await pg.query('postgres', `DROP DATABASE IF EXISTS ${db}`);
      await clearRestoreSource(s3);
      // A partial report after every size, so a long run is never lost.
      result.finishedAt = new Date().toISOString();
      if (opts.out) await writeOutputs(opts, result);
    }
    result.finishedAt = new Date().toISOString();
    await writeOutputs(opts, result);
    const failed = result.runs.filter((r) => !r.ok);
    if (failed.length > 0) {
      log(
        `bench: ${failed.length} run(s) failed: ${failed.map((r) => `${r.size}/${r.name}#${r.rep}: ${r.error}`).join('; ')}`,
      );
      process.exitCode = 1;
    }
  } finally {
    endpoints.stop();
    await Promise.all([pg.stop(), s3.stop()]);
    await rm(work, { recursive: true, force: true });
  }
}

interface BackupDoc {
  'backup-id': string;
  status: string;
  manifest: {
    database: { compression: string; archiveBytes: number | null };
    objects: { name: string; kind: string; encrypted: { bytes: number } }[];
  };
}

/** Runs a command with `input` streamed into its stdin. */
async function feed(input: Readable, cmd: string, args: string[], o: Options_) {
  const child = execa(cmd, args, { ...o, stdin: 'pipe' });
  const fed = pipeline(input, child.stdin as Writable).catch(() => undefined);
  const r = await child;
  await fed;
  return r;
}
type Options_ = {
  env: Record<string, string>;
  extendEnv: false;
  timeout: number;
  reject?: boolean;
};

function rotate<T>(xs: readonly T[], k: number): T[] {
  const n = xs.length === 0 ? 0 : k % xs.length;
  return [...xs.slice(n), ...xs.slice(0, n)];
}

/** An object decrypts with the `age` CLI, decompresses and is a whole archive. */
async function checkAgeObject(
  server: S3Server,
  key: string,
  identityFile: string,
  pgRestore: string,
  env: Record<string, string>,
  archiveBytes: number,
  timeoutS: number,
  zstd = true,
): Promise<void> {
  const c = server.client();
  try {
    const got = await c.send(new GetObjectCommand({ Bucket: PRIMARY_BUCKET, Key: key }));
    const r = await feed(
      got.Body as Readable,
      'bash',
      [
        '-c',
        `set -euo pipefail; age -d -i "$ID" | ${zstd ? 'zstd -q -d -c' : 'cat'} > "$FILE"; stat -c %s "$FILE"; "$PG_RESTORE" --list "$FILE" | grep -c "TABLE DATA"; rm -f "$FILE"`,
      ],
      {
        env: {
          ...env,
          ID: identityFile,
          PG_RESTORE: pgRestore,
          FILE: `${identityFile}.native.dump`,
        },
        extendEnv: false,
        timeout: timeoutS * 1000,
        reject: false,
      },
    );
    const [n, tables] = r.stdout.trim().split('\n').map(Number);
    if (r.exitCode !== 0 || !tables || tables < 4 || !n)
      throw new Error(`${key}: not a whole archive after age -d: ${r.stderr}`);
    // The archive size can differ by a few bytes (pg_dump writes its run's timestamp).
    if (Math.abs(n - archiveBytes) > archiveBytes * 0.01)
      throw new Error(`${key}: holds ${n} archive bytes, expected ~${archiveBytes}`);
    log(
      `   ${key} checked: age -d${zstd ? ' | zstd -d' : ''} | pg_restore --list → ${tables} tables, ${n} bytes`,
    );
  } finally {
    c.destroy();
  }
}

async function clearRestoreSource(s3: S3Pair): Promise<void> {
  for (const [server, bucket] of [
    [s3.primary, PRIMARY_BUCKET],
    [s3.secondary, SECONDARY_BUCKET],
  ] as const) {
    const c = server.client();
    for (const key of await server.listKeys(bucket, RESTORE_PREFIX))
      await c.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    c.destroy();
  }
}

async function writeOutputs(opts: Options, result: BenchResult): Promise<void> {
  const md = renderReport(result);
  if (opts.out) {
    await mkdir(dirname(resolve(opts.out)), { recursive: true });
    await writeFile(opts.out, `${md}\n`);
  } else {
    process.stdout.write(`${md}\n`);
  }
  if (opts.json) {
    await mkdir(dirname(resolve(opts.json)), { recursive: true });
    await writeFile(opts.json, `${JSON.stringify(result, null, 2)}\n`);
  }
}

main().catch((e: unknown) => {
  log(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exit(1);
});
