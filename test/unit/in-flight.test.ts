import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { HOLD, InFlightControl } from '../../src/storage/in-flight.js';
import { partsOf, uploadStream } from '../../src/storage/s3/multipart.js';

const MiB = 1024 * 1024;

/**
 * Plays an upload against a model link: `partMs(inFlight)` is how long one 8 MiB part takes
 * when that many run at once. The stream always has the next part ready (the uploads set the
 * pace). Returns the limits the control chose, part after part.
 */
function play(control: InFlightControl, parts: number, partMs: (n: number) => number): number[] {
  const limits: number[] = [];
  const running: { level: number; end: number }[] = [];
  let now = 0;
  for (let i = 0; i < parts; i++) {
    while (running.length >= control.limit) {
      control.stalled();
      running.sort((a, b) => a.end - b.end);
      const first = running.shift() as { level: number; end: number };
      now = first.end;
      control.finished(8 * MiB, partMs(first.level), first.level);
    }
    // A part runs with as many others as its level allows (the uploads set the pace).
    running.push({ level: control.limit, end: now + partMs(control.limit) });
    limits.push(control.limit);
  }
  return limits;
}

describe('InFlightControl: parts in flight follow the link', () => {
  it('on a long path (each connection capped) grows to the memory budget', () => {
    const c = new InFlightControl(2, 5);
    // Each part takes 600 ms however many run: the path, not the store, limits a connection.
    const limits = play(c, 30, () => 600);
    expect(limits[0]).toBe(2);
    expect(c.peak).toBe(5);
    expect(c.limit).toBe(5);
    expect(Math.max(...limits)).toBe(5);
  });

  it('when the store is the bottleneck (parts share its speed) goes back to two and stays', () => {
    const c = new InFlightControl(2, 5);
    // n parts at once each take n × 100 ms: more in flight adds nothing.
    const limits = play(c, 40, (n) => n * 100);
    expect(c.peak).toBe(4);
    expect(c.limit).toBe(2);
    expect(limits.slice(-20).every((l) => l === 2)).toBe(true);
  });

  it('stops where an extra part stops adding speed', () => {
    const c = new InFlightControl(2, 8);
    // Up to 4 connections keep their speed; past that they share ~4 connections' worth.
    const limits = play(c, 60, (n) => (n <= 4 ? 500 : (500 * n) / 4));
    expect(c.limit).toBe(4);
    expect(limits.slice(-20).every((l) => l === 4)).toBe(true);
  });

  it('does not grow while the stream, not the uploads, sets the pace', () => {
    const c = new InFlightControl(2, 5);
    for (let i = 0; i < 50; i++) c.finished(8 * MiB, 600, 2);
    expect(c.limit).toBe(2);
    expect(c.peak).toBe(2);
  });

  it('judges a level only by a part that started under it, against the level before', () => {
    const c = new InFlightControl(2, 16);
    c.finished(8 * MiB, 1000, 2);
    c.stalled();
    // The first stall doubles: nothing to compare with yet.
    expect(c.finished(8 * MiB, 1000, 2)).toBe(4);
    c.stalled();
    // A part that started at level 2 says nothing about level 4.
    expect(c.finished(8 * MiB, 10_000, 2)).toBe(4);
    // Level 2's median part took 1,000 ms (of 1,000, 1,000 and 10,000). From 2 to 4 parts,
    // each added part must bring HOLD of a part: a part at 4 may take at most
    // 1,000 × 4 / (2 + 2 × HOLD) ms.
    const limit4 = Math.floor((1000 * 4) / (2 + 2 * HOLD));
    expect(c.finished(8 * MiB, limit4 - 50, 4)).toBe(8);
    c.stalled();
    // Parts at 8 sharing what 4 carried (twice as long): back to 4, and no more growth.
    expect(c.finished(8 * MiB, (limit4 - 50) * 2, 8)).toBe(4);
    c.stalled();
    expect(c.finished(8 * MiB, 500, 4)).toBe(4);
    expect(c.peak).toBe(8);
  });

  it('judges the level it reached at the memory budget too', () => {
    const c = new InFlightControl(2, 4);
    c.stalled();
    expect(c.finished(8 * MiB, 1000, 2)).toBe(4);
    c.stalled();
    expect(c.finished(8 * MiB, 2000, 4)).toBe(2);
  });

  it('never goes above max, and max below initial changes nothing', () => {
    const c = new InFlightControl(2, 2);
    expect(play(c, 20, () => 600).every((l) => l === 2)).toBe(true);
    const one = new InFlightControl(1, 1);
    expect(play(one, 10, () => 600).every((l) => l === 1)).toBe(true);
  });
});

describe('partsOf: a stream cut into parts of exactly partSize', () => {
  const partSize = 64 * 1024;

  async function cut(body: Buffer, chunkSizes: () => number) {
    const chunks: Buffer[] = [];
    for (let at = 0; at < body.length; ) {
      const n = Math.max(1, Math.min(chunkSizes(), body.length - at));
      chunks.push(body.subarray(at, at + n));
      at += n;
    }
    const parts: { data: Buffer; last: boolean }[] = [];
    // Copy each part: the generator may reuse nothing, but the test must not depend on it.
    for await (const p of partsOf(Readable.from(chunks), partSize))
      parts.push({ data: Buffer.from(p.data), last: p.last });
    return parts;
  }

  it('every part but the last is exactly partSize, only the last says so, and the bytes are the same', async () => {
    const sizes = [0, 1, partSize - 1, partSize, partSize + 1, 3 * partSize, 3 * partSize + 7];
    const chunkings: [string, () => number][] = [
      ['1 byte', () => 1_000],
      ['partSize', () => partSize],
      ['random', () => 1 + Math.floor(Math.random() * 3 * partSize)],
      ['odd', () => 4_099],
    ];
    for (const size of sizes) {
      const body = randomBytes(size);
      for (const [name, chunking] of chunkings) {
        const parts = await cut(body, chunking);
        const at = `${size} bytes, ${name} chunks`;
        expect(parts.length, at).toBe(Math.max(1, Math.ceil(size / partSize)));
        expect(
          parts.map((p) => p.last),
          at,
        ).toEqual(parts.map((_, i) => i === parts.length - 1));
        for (const p of parts.slice(0, -1)) expect(p.data.length, at).toBe(partSize);
        expect(Buffer.concat(parts.map((p) => p.data)).equals(body), at).toBe(true);
      }
    }
  });

  it('passes a failing stream’s error on', async () => {
    const body = new Readable({
      read() {
        this.destroy(new Error('the dump died'));
      },
    });
    await expect(
      (async () => {
        for await (const _ of partsOf(body, partSize));
      })(),
    ).rejects.toThrow('the dump died');
  });
});

describe('uploadStream: part buffers', () => {
  it('reuses the buffers of stored parts, and never refills one while its request runs', async () => {
    const partSize = 5 * MiB;
    const body = randomBytes(12 * partSize + 999);
    const buffers = new Set<ArrayBufferLike>();
    const stored = new Map<number, Buffer>();
    let unchanged = true;
    // A fake store: each part's request takes a few ms; its body must not change meanwhile.
    const client = {
      async send(command: { constructor: { name: string }; input: Record<string, unknown> }) {
        const name = command.constructor.name;
        if (name === 'CreateMultipartUploadCommand') return { UploadId: 'u1' };
        if (name === 'CompleteMultipartUploadCommand') return { ETag: '"all"' };
        if (name !== 'UploadPartCommand') throw new Error(`unexpected ${name}`);
        const data = command.input.Body as Buffer;
        buffers.add(data.buffer);
        const copy = Buffer.from(data);
        await new Promise((r) => setTimeout(r, 2 + Math.random() * 8));
        if (!copy.equals(data)) unchanged = false;
        stored.set(command.input.PartNumber as number, copy);
        return { ETag: `"p${command.input.PartNumber}"` };
      },
    } as unknown as S3Client;
    const chunks = Array.from({ length: Math.ceil(body.length / 65_536) }, (_, i) =>
      body.subarray(i * 65_536, (i + 1) * 65_536),
    );
    const up = uploadStream(
      client,
      { Bucket: 'b', Key: 'k', ContentType: 'application/octet-stream' },
      Readable.from(chunks),
      { partSize, queueSize: 2, maxInFlight: 5 },
    );
    await up.done;
    expect(unchanged).toBe(true);
    const parts = [...stored.keys()].sort((a, b) => a - b).map((n) => stored.get(n) as Buffer);
    expect(Buffer.concat(parts).equals(body)).toBe(true);
    // 13 parts, at most 5 in flight and one filling: never more than 6 buffers.
    expect(parts.length).toBe(13);
    expect(buffers.size).toBeLessThanOrEqual(6);
  });
});
