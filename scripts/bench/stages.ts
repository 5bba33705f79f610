// One stage run of the benchmark's stage breakdown, in its own process (the S3 servers
// live in the parent, whose event loop must stay free for them). Builds the backup
// pipeline from pg-dr's own modules — startDump, encryptStream, DigestStream, replicate —
// up to a given stage, runs it once and prints one JSON line: seconds, bytes, CPU.
//
//   tsx scripts/bench/stages.ts '<json config>'
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { PassThrough, Readable, type Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { Encrypter } from 'age-encryption';
import { execa } from 'execa';
import { zstdCompressArgs } from '../../src/compression/index.js';
import { encryptStream } from '../../src/crypto/age.js';
import { DigestStream } from '../../src/crypto/digest.js';
import { startDump } from '../../src/postgres/dump.js';
import { libpqEnv, parseDatabaseUrl } from '../../src/postgres/url.js';
import { chooseUploadShape, type UploadShape } from '../../src/storage/part-size.js';
import { replicate } from '../../src/storage/replicate.js';
import { createS3Client } from '../../src/storage/s3/client.js';
import { createS3Destination } from '../../src/storage/s3/destination.js';

export interface StageConfig {
  readonly stage: string;
  readonly databaseUrl: string;
  readonly pgDump: string;
  readonly zstd: string;
  readonly recipient: string;
  readonly dbSizeBytes: number;
  readonly destinations: readonly { name: string; endpoint: string; bucket: string }[];
  readonly key: string;
  /** Bytes for the in-memory (isolated) stages. */
  readonly isolatedBytes: number;
  /** Size of the -Z0 archive, for stages where node never sees it (an OS pipe). */
  readonly archiveBytes: number;
}

export interface StageResult {
  readonly stage: string;
  readonly seconds: number;
  /** Bytes out of pg_dump (archive), or fed to an isolated stage. */
  readonly inBytes: number;
  /** Bytes at the end of the pipeline (what would be stored). */
  readonly outBytes: number;
  /** CPU seconds of this process (all threads), user+system. */
  readonly nodeCpuSeconds: number;
}

/** What a pipeline stage list looks like. */
interface Plan {
  readonly compression: 'zstd' | 'none';
  readonly zstdArgs?: readonly string[];
  /** pg_dump's stdout handed to zstd as its stdin (a kernel pipe, as in a shell). */
  readonly osPipe?: boolean;
  /** pg-dr's encryptStream (payload by node:crypto), or age-encryption's own JS cipher. */
  readonly age: 'pg-dr' | 'js' | null;
  readonly sha: boolean;
  readonly upload: UploadShape | 'default' | null;
}

const MiB = 1024 * 1024;
const FULL = { compression: 'zstd', age: 'pg-dr', sha: true, upload: 'default' } as const;

/** The stage breakdown (cumulative) and the tuning experiments, by name. */
export const PLANS: Readonly<Record<string, Plan>> = {
  'pg_dump → node': { compression: 'none', age: null, sha: false, upload: null },
  '+ zstd -3 -T0 -B2MiB': { compression: 'zstd', age: null, sha: false, upload: null },
  '+ age': { compression: 'zstd', age: 'pg-dr', sha: false, upload: null },
  '+ sha256 ×2': { compression: 'zstd', age: 'pg-dr', sha: true, upload: null },
  '+ uploads ×2 (= pg-dr pipeline)': FULL,
  'x: age JS cipher (age-encryption, before)': { ...FULL, age: 'js' },
  'x: zstd -3 -T0, default job size (before)': { ...FULL, zstdArgs: ['-q', '-c', '-3', '-T0'] },
  'x: zstd -1 -T0 -B2MiB': { ...FULL, zstdArgs: ['-q', '-c', '-1', '-T0', '-B2097152'] },
  'x: zstd -3 --single-thread': { ...FULL, zstdArgs: ['-q', '-c', '-3', '--single-thread'] },
  'x: pg_dump → zstd OS pipe': { ...FULL, osPipe: true },
  'x: parts 8 MiB × 4 (before)': {
    ...FULL,
    upload: { partSize: 8 * MiB, queueSize: 4, maxInFlight: 4 },
  },
  'x: parts 8 MiB × 8': { ...FULL, upload: { partSize: 8 * MiB, queueSize: 8, maxInFlight: 8 } },
  'x: parts 16 MiB × 4': { ...FULL, upload: { partSize: 16 * MiB, queueSize: 4, maxInFlight: 4 } },
  'x: none': { ...FULL, compression: 'none' },
  'x: none, age JS cipher (before)': { ...FULL, compression: 'none', age: 'js' },
};

export const CORE_STAGES = [
  'pg_dump → node',
  '+ zstd -3 -T0 -B2MiB',
  '+ age',
  '+ sha256 ×2',
  '+ uploads ×2 (= pg-dr pipeline)',
] as const;

export const ISOLATED = [
  'iso: age, pg-dr (memory)',
  'iso: age JS cipher (memory)',
  'iso: sha256 (memory)',
  'iso: uploads ×2 only',
] as const;

/** The benchmark's two s3rver destinations, as pg-dr builds them. */
/** The stage's destinations; `close()` destroys their S3 clients. */
function destinationsOf(cfg: StageConfig) {
  const clients: ReturnType<typeof createS3Client>[] = [];
  const dests = cfg.destinations.map((d, i) => {
    const settings = {
      name: d.name,
      role: i === 0 ? ('primary' as const) : ('secondary' as const),
      endpoint: d.endpoint,
      region: 'us-east-1',
      bucket: d.bucket,
      accessKeyId: 'S3RVER',
      secretAccessKey: 'S3RVER',
      forcePathStyle: true,
    };
    const client = createS3Client(settings);
    clients.push(client);
    return createS3Destination(settings, client);
  });
  return Object.assign(dests, {
    close: () => {
      for (const c of clients) c.destroy();
    },
  });
}

function sink(): Writable {
  return new Writable({
    highWaterMark: MiB,
    write(_c, _e, cb) {
      cb();
    },
  });
}

function counter(): { stream: Transform; bytes: () => number } {
  let n = 0;
  const p = new PassThrough({ highWaterMark: MiB });
  p.on('data', (c: Buffer) => {
    n += c.length;
  });
  return { stream: p, bytes: () => n };
}

async function encrypt(kind: 'pg-dr' | 'js', recipient: string, input: Readable) {
  if (kind === 'pg-dr')
    return encryptStream({ mode: 'recipients', recipients: [recipient] }, input);
  // age-encryption on its own: header and payload in JavaScript (what pg-dr did before).
  const e = new Encrypter();
  e.addRecipient(recipient);
  const web = Readable.toWeb(input) as unknown as ReadableStream<Uint8Array>;
  return Readable.fromWeb((await e.encrypt(web)) as unknown as WebReadableStream<Uint8Array>);
}

async function runPlan(
  cfg: StageConfig,
  plan: Plan,
): Promise<{ inBytes: number; outBytes: number }> {
  const target = parseDatabaseUrl('database-url', cfg.databaseUrl);
  let dump: { stream: Readable; done: Promise<void>; rawBytes: () => number | null };
  if (plan.osPipe) {
    // Node never touches the archive: zstd reads pg_dump's stdout directly.
    const pd = spawn(cfg.pgDump, ['--format=custom', '--no-password', '--compress=0'], {
      env: libpqEnv(target),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const z = spawn(cfg.zstd, [...(plan.zstdArgs ?? zstdCompressArgs())], {
      stdio: [pd.stdout, 'pipe', 'inherit'],
    });
    pd.stdout?.destroy();
    const exited = (c: ReturnType<typeof spawn>, name: string) =>
      new Promise<void>((ok, fail) =>
        c.on('close', (code) => (code === 0 ? ok() : fail(new Error(`${name} exited ${code}`)))),
      );
    dump = {
      stream: z.stdout as Readable,
      done: Promise.all([exited(pd, 'pg_dump'), exited(z, 'zstd')]).then(() => undefined),
      rawBytes: () => cfg.archiveBytes,
    };
  } else if (plan.zstdArgs) {
    // A zstd variant: the same shape as startDump, other arguments.
    const pd = execa(cfg.pgDump, ['--format=custom', '--no-password', '--compress=0'], {
      env: libpqEnv(target),
      extendEnv: false,
      stdout: 'pipe',
      buffer: false,
    });
    const z = execa(cfg.zstd, [...plan.zstdArgs], { stdin: 'pipe', stdout: 'pipe', buffer: false });
    let raw = 0;
    pd.stdout?.on('data', (c: Buffer) => {
      raw += c.length;
    });
    const fed = pipeline(pd.stdout as Readable, z.stdin as Writable);
    dump = {
      stream: z.stdout as Readable,
      done: Promise.all([pd, z, fed]).then(() => undefined),
      rawBytes: () => raw,
    };
  } else {
    const d = startDump({
      pgDump: cfg.pgDump,
      target,
      snapshot: null,
      compression: plan.compression,
      zstd: plan.compression === 'zstd' ? cfg.zstd : null,
    });
    dump = { stream: d.stream, done: d.done, rawBytes: d.rawBytes };
  }
  let stream: Readable = dump.stream;
  let hashing: Promise<void> = Promise.resolve();
  if (plan.sha) {
    const plain = new DigestStream();
    hashing = pipeline(stream, plain);
    stream = plain;
  }
  if (plan.age) stream = await encrypt(plan.age, cfg.recipient, stream);
  let cipher: DigestStream | null = null;
  if (plan.sha) {
    cipher = new DigestStream();
    const from = stream;
    from.on('error', (e) => cipher?.destroy(e));
    stream = from.pipe(cipher);
  }
  let outBytes = 0;
  if (plan.upload) {
    const shape = plan.upload === 'default' ? chooseUploadShape(cfg.dbSizeBytes) : plan.upload;
    const dests = destinationsOf(cfg);
    stream.on('data', (c: Buffer) => {
      outBytes += c.length;
    });
    const gate = Promise.all([dump.done, hashing]);
    const rep = replicate(stream, dests, cfg.key, shape, 'application/octet-stream', gate);
    const results = await rep.results;
    const bad = results.filter((r) => !r.ok);
    if (bad.length > 0) throw new Error(`upload failed: ${bad.map((r) => r.error).join('; ')}`);
    dests.close();
  } else {
    const c = counter();
    await pipeline(stream, c.stream, sink());
    outBytes = c.bytes();
  }
  await Promise.all([dump.done, hashing]);
  return { inBytes: dump.rawBytes() ?? 0, outBytes };
}

async function runIsolated(cfg: StageConfig): Promise<{ inBytes: number; outBytes: number }> {
  const block = randomBytes(4 * MiB);
  const total = Math.max(block.length, Math.floor(cfg.isolatedBytes / block.length) * block.length);
  const source = () =>
    Readable.from(
      (function* () {
        // 64 KiB chunks, as a pipe delivers them.
        for (let off = 0; off < total; off += 64 * 1024) {
          const i = off % block.length;
          yield block.subarray(i, i + 64 * 1024);
        }
      })(),
      { objectMode: false, highWaterMark: MiB },
    );
  let out = 0;
  const count = new Writable({
    highWaterMark: MiB,
    write(c: Buffer, _e, cb) {
      out += c.length;
      cb();
    },
  });
  if (cfg.stage === 'iso: sha256 (memory)') {
    await pipeline(source(), new DigestStream(), count);
  } else if (cfg.stage === 'iso: uploads ×2 only') {
    const dests = destinationsOf(cfg);
    const rep = replicate(
      source(),
      dests,
      cfg.key,
      chooseUploadShape(cfg.dbSizeBytes),
      'application/octet-stream',
      Promise.resolve(),
    );
    const results = await rep.results;
    if (results.some((r) => !r.ok)) throw new Error('upload failed');
    dests.close();
    out = total;
  } else {
    const kind = cfg.stage.includes('JS') ? 'js' : 'pg-dr';
    await pipeline(await encrypt(kind, cfg.recipient, source()), count);
  }
  return { inBytes: total, outBytes: out };
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as StageConfig;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const plan = PLANS[cfg.stage];
  const r = cfg.stage.startsWith('iso:')
    ? await runIsolated(cfg)
    : plan
      ? await runPlan(cfg, plan)
      : null;
  if (!r) throw new Error(`unknown stage ${cfg.stage}`);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const result: StageResult = {
    stage: cfg.stage,
    seconds,
    inBytes: r.inBytes,
    outBytes: r.outBytes,
    nodeCpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(
        `stage failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
      );
      process.exit(1);
    },
  );
}
