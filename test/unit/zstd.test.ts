import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { openZstdDecompressor } from '../../src/compression/index.js';
import { requireBinary } from '../harness/tools.js';

async function decompress(
  data: Buffer,
  env: NodeJS.ProcessEnv,
): Promise<{ out: Buffer; via: string }> {
  const d = await openZstdDecompressor(env);
  const chunks: Buffer[] = [];
  d.output.on('data', (c: Buffer) => chunks.push(c));
  await Promise.all([
    pipeline(Readable.from([data.subarray(0, 1000), data.subarray(1000)]), d.input),
    d.done,
  ]);
  return { out: Buffer.concat(chunks), via: d.via };
}

describe('zstd decompression without the zstd program', () => {
  // Text with some randomness: several zstd blocks, realistic ratio.
  const plain = Buffer.concat(
    Array.from({ length: 2000 }, (_, i) =>
      Buffer.from(`row ${i} ${randomBytes(24).toString('hex')} lorem ipsum dolor\n`),
    ),
  );
  const compressed = (() => {
    requireBinary('zstd');
    return execFileSync('zstd', ['-q', '-c', '-3', '-T0'], { input: plain });
  })();

  it('uses the zstd program when it is on PATH', async () => {
    const r = await decompress(compressed, process.env);
    expect(r.via).toBe('zstd');
    expect(r.out.equals(plain)).toBe(true);
  });

  it('falls back to Node or JavaScript, byte for byte, when it is not', async () => {
    const r = await decompress(compressed, { PATH: '/nonexistent' });
    expect(['node:zlib', 'fzstd']).toContain(r.via);
    expect(r.out.equals(plain)).toBe(true);
  });

  it('rejects a corrupt stream in the fallback too', async () => {
    const bad = Buffer.from(compressed);
    bad.fill(0x41, 20, 60);
    await expect(decompress(bad, { PATH: '/nonexistent' })).rejects.toThrow();
  });
});
