import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { Transform } from 'node:stream';
import { finished } from 'node:stream/promises';
import zlib from 'node:zlib';
import { execa } from 'execa';
import { Decompress as FzstdDecompress } from 'fzstd';
import { childEnv } from '../child-env.js';

export type Compression = 'zstd' | 'gzip' | 'none';
export const COMPRESSIONS = ['zstd', 'gzip', 'none'] as const;

/**
 * The dump object's extension. `zst`: a zstd stream around a custom-format archive
 * (`zstd -d | pg_restore`). `gz`: a custom-format archive compressed inside by pg_dump
 * (feed it to pg_restore as is). `raw`: an uncompressed custom-format archive.
 */
export const DUMP_EXTENSION: Record<Compression, string> = { zstd: 'zst', gzip: 'gz', none: 'raw' };

/** zstd level used: fast enough to keep up with pg_dump -Z0 on two cores, ~3-4× on SQL data. */
export const ZSTD_LEVEL = 3;

/**
 * One worker per core (-T0), each compressing 2 MiB jobs (-B). zstd's default job at
 * level 3 is several times larger, and each worker holds its job's input and output: 71 MiB
 * with 2 threads and 95 MiB with 4 on a 400 MB sample, against 23 and 35 MiB with 2 MiB
 * jobs, for 0.2% more output (BENCHMARKS.md). Plain bytes: every zstd reads them.
 */
export const ZSTD_JOB_BYTES = 2 * 1024 * 1024;

export function zstdCompressArgs(level = ZSTD_LEVEL): string[] {
  return ['-q', '-c', `-${level}`, '-T0', `-B${ZSTD_JOB_BYTES}`];
}

export function zstdDecompressArgs(): string[] {
  return ['-q', '-d', '-c'];
}

/** Where the `zstd` binary is on PATH, or null. */
export async function findZstd(env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const p = join(dir, 'zstd');
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {}
  }
  return null;
}

/** A running zstd decompression: write the compressed stream in, read the archive out. */
export interface Decompressor {
  readonly input: Writable;
  readonly output: Readable;
  /** Settles when decompression has finished; rejects on corrupt input. */
  readonly done: Promise<void>;
  kill(): void;
  /** Which implementation runs: the zstd program, Node's zlib, or the JavaScript fallback. */
  readonly via: 'zstd' | 'node:zlib' | 'fzstd';
}

/**
 * zstd decompression wherever a restore runs: the multi-threaded `zstd` program when it is
 * on PATH, else Node's own zlib (Node ≥ 22.15), else fzstd (pure JavaScript) — so a
 * restore from a laptop needs nothing but Node, pg_restore and the credentials.
 */
export async function openZstdDecompressor(
  env: NodeJS.ProcessEnv = process.env,
): Promise<Decompressor> {
  const bin = await findZstd(env);
  if (bin) {
    const child = execa(bin, zstdDecompressArgs(), {
      env: childEnv(env),
      extendEnv: false,
      stdin: 'pipe',
      stdout: 'pipe',
      stderr: 'pipe',
      buffer: { stdout: false, stderr: true },
    });
    const done = child.then(
      () => undefined,
      (e: { stderr?: unknown; message?: string }) => {
        throw new Error(
          String(e.stderr || e.message)
            .trim()
            .split('\n')
            .at(-1),
        );
      },
    );
    done.catch(() => undefined);
    return {
      input: child.stdin as Writable,
      output: child.stdout as Readable,
      done,
      kill: () => child.kill('SIGKILL'),
      via: 'zstd',
    };
  }
  const native = (zlib as unknown as { createZstdDecompress?: () => Transform })
    .createZstdDecompress;
  const stream: Transform = native ? native() : fzstdTransform();
  const done = finished(stream).then(() => undefined);
  done.catch(() => undefined);
  return {
    input: stream,
    output: stream,
    done,
    kill: () => stream.destroy(new Error('stopped')),
    via: native ? 'node:zlib' : 'fzstd',
  };
}

function fzstdTransform(): Transform {
  let pending: Uint8Array[] = [];
  const d = new FzstdDecompress((chunk) => {
    pending.push(chunk);
  });
  const flush = (t: Transform) => {
    for (const c of pending) t.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
    pending = [];
  };
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      try {
        d.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        flush(this);
        cb();
      } catch (e) {
        cb(e as Error);
      }
    },
    flush(cb) {
      try {
        d.push(new Uint8Array(0), true);
        flush(this);
        cb();
      } catch (e) {
        cb(e as Error);
      }
    },
  });
}
