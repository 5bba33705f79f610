import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execa, type ResultPromise } from 'execa';
import { childEnv } from '../child-env.js';
import type { Compression } from '../compression/index.js';
import { zstdCompressArgs } from '../compression/index.js';
import { UserError } from '../errors.js';
import { causeOf } from './stderr.js';
import type { DatabaseTarget } from './url.js';
import { libpqEnv } from './url.js';

export interface DumpOptions {
  readonly pgDump: string;
  readonly target: DatabaseTarget;
  /** An exported snapshot id, so the dump matches the row counts. */
  readonly snapshot: string | null;
  readonly compression: Compression;
  /** Path of the zstd binary, required for `zstd`. */
  readonly zstd: string | null;
}

/** A running dump: its (compressed) output, and a promise that settles when every process has. */
export interface RunningDump {
  readonly stream: NodeJS.ReadableStream & import('node:stream').Readable;
  /** Bytes of the custom-format archive before external compression (null for gzip: it is inside). */
  rawBytes(): number | null;
  /** Resolves when pg_dump (and zstd) exited 0; rejects with the failing process's message. */
  readonly done: Promise<void>;
  /** Stops every process of the dump (on a failed upload or a cancel). */
  kill(): void;
}

export class DumpError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'DumpError';
  }
}

function tail(text: unknown): string {
  const s = causeOf(text);
  return s === 'no message' ? '' : `: ${s}`;
}

function describeExit(tool: string, e: unknown): DumpError {
  const err = e as { exitCode?: number; signal?: string; stderr?: unknown; isTerminated?: boolean };
  const how = err.signal
    ? `was killed by ${err.signal}`
    : `exited with code ${err.exitCode ?? '?'}`;
  return new DumpError(`${tool} ${how}${tail(err.stderr)}`);
}

export function startDump(opts: DumpOptions): RunningDump {
  const args = ['--format=custom', '--no-password'];
  if (opts.snapshot) args.push(`--snapshot=${opts.snapshot}`);
  args.push(opts.compression === 'gzip' ? '--compress=6' : '--compress=0');
  const pgDump: ResultPromise = execa(opts.pgDump, args, {
    env: libpqEnv(opts.target),
    extendEnv: false,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: { stdout: false, stderr: true },
  });
  return streamOutput(pgDump, 'pg_dump', opts);
}

/**
 * A producer's stdout, counted (and shown to `tap`, chunk by chunk) on its way, through zstd
 * when `compression` is `zstd` (for `gzip` the producer compresses itself).
 */
export function streamOutput(
  producer: ResultPromise,
  tool: string,
  opts: Pick<DumpOptions, 'compression' | 'zstd'>,
  tap: (chunk: Buffer) => void = () => undefined,
): RunningDump {
  const producerDone = producer.then(
    () => undefined,
    (e: unknown) => {
      throw describeExit(tool, e);
    },
  );
  let raw = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _e, cb) {
      raw += chunk.length;
      tap(chunk);
      cb(null, chunk);
    },
  });

  if (opts.compression !== 'zstd') {
    const piped = pipeline(producer.stdout as NodeJS.ReadableStream, counter).catch(() => {
      /* reported by the consumer or the exit code */
    });
    return {
      stream: counter,
      rawBytes: () => (opts.compression === 'none' ? raw : null),
      done: settleAll([producerDone, piped]),
      kill: () => producer.kill('SIGTERM'),
    };
  }

  if (!opts.zstd) throw new DumpError('compression zstd needs a zstd binary on PATH');
  const zstd: ResultPromise = execa(opts.zstd, zstdCompressArgs(), {
    env: childEnv(),
    extendEnv: false,
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: { stdout: false, stderr: true },
  });
  const feed = pipeline(
    producer.stdout as NodeJS.ReadableStream,
    counter,
    zstd.stdin as NodeJS.WritableStream,
  );
  const zstdDone = zstd.then(
    () => undefined,
    (e: unknown) => {
      throw describeExit('zstd', e);
    },
  );
  const done = settleAll([producerDone, zstdDone, feed.catch(() => undefined)]);
  return {
    stream: zstd.stdout as RunningDump['stream'],
    rawBytes: () => raw,
    done,
    kill() {
      producer.kill('SIGTERM');
      zstd.kill('SIGTERM');
    },
  };
}

/**
 * Waits for every process; when several failed (zstd killed → pg_dump's broken pipe),
 * the error names them all so the root cause is not hidden behind its echo.
 */
async function settleAll(parts: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(parts);
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) throw new DumpError(failures.map((f) => f.message).join('; '));
}
