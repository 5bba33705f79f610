import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

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

export function zstdCompressArgs(level = ZSTD_LEVEL): string[] {
  return ['-q', '-c', `-${level}`, '-T0'];
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

/** The program that turns a stored dump back into a custom-format archive, if one is needed. */
export function decompressorFor(compression: Compression): { file: 'zstd'; args: string[] } | null {
  return compression === 'zstd' ? { file: 'zstd', args: zstdDecompressArgs() } : null;
}
