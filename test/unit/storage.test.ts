import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { FanOut } from '../../src/storage/fanout.js';
import {
  chooseUploadShape,
  DEFAULT_PART_SIZE,
  IN_FLIGHT_BUDGET,
  MAX_PART_SIZE,
  MAX_PARTS,
  MIN_PART_SIZE,
  maxStreamBytes,
} from '../../src/storage/part-size.js';
import { replicate } from '../../src/storage/replicate.js';
import { defaultRegion, parseEndpoint } from '../../src/storage/settings.js';
import { memoryDestination } from '../harness/memory-destination.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function randomChunks(count: number, size: number): { chunks: Buffer[]; all: Buffer } {
  const chunks = Array.from({ length: count }, () => randomBytes(size));
  return { chunks, all: Buffer.concat(chunks) };
}

/** How a consumer saw its stream: bytes, and whether it ended cleanly or errored. */
interface Outcome {
  data: Buffer;
  ended: boolean;
  error: Error | undefined;
}

/** Reads a stream like an upload would, recording how it finished; never rejects. */
function watch(stream: Readable): Promise<Outcome> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    const o: Outcome = { data: Buffer.alloc(0), ended: false, error: undefined };
    stream.on('data', (c: Buffer) => parts.push(c));
    stream.on('end', () => {
      o.ended = true;
    });
    stream.on('error', (e) => {
      o.error = e;
    });
    stream.on('close', () => {
      o.data = Buffer.concat(parts);
      resolve(o);
    });
  });
}

function branch(fan: FanOut, i: number) {
  const b = fan.branches[i];
  if (!b) throw new Error(`no branch ${i}`);
  return b;
}

describe('chooseUploadShape', () => {
  it('gives small databases 8 MiB parts, two at a time and up to five on a long path', () => {
    for (const size of [0, 1, 100 * MiB, GiB, 10 * GiB, 38 * GiB])
      expect(chooseUploadShape(size)).toEqual({
        partSize: DEFAULT_PART_SIZE,
        queueSize: 2,
        maxInFlight: 5,
      });
    expect(DEFAULT_PART_SIZE).toBe(8 * MiB);
  });

  it('gives a 1 TiB database ~212 MiB parts, one at a time', () => {
    expect(chooseUploadShape(TiB)).toEqual({ partSize: 212 * MiB, queueSize: 1, maxInFlight: 1 });
  });

  it('fits a stream twice the database size in 10,000 whole-MiB parts, for every size up to 1 TiB', () => {
    const sizes = new Set<number>([0, 1, MiB - 1, MiB, TiB - 1, TiB]);
    for (let g = 1; g <= 1024; g++) {
      sizes.add(g * GiB - 1);
      sizes.add(g * GiB);
      sizes.add(g * GiB + 12_345_678);
    }
    for (let i = 0; i < 2000; i++) sizes.add(Math.floor(Math.random() * TiB));
    // Just either side of each part-size step.
    for (let p = 8; p <= 212; p++) {
      const edge = Math.floor(((p * MiB) / 2) * (MAX_PARTS - 100));
      for (const s of [edge - 1, edge, edge + 1]) if (s <= TiB) sizes.add(s);
    }
    for (const size of sizes) {
      const { partSize, queueSize, maxInFlight } = chooseUploadShape(size);
      const stream = 2 * size;
      expect(partSize % MiB, `size ${size}`).toBe(0);
      expect(partSize).toBeGreaterThanOrEqual(MIN_PART_SIZE);
      expect(partSize).toBeLessThanOrEqual(MAX_PART_SIZE);
      expect(Math.ceil(stream / partSize), `size ${size}`).toBeLessThanOrEqual(MAX_PARTS);
      expect(maxStreamBytes(partSize)).toBeGreaterThanOrEqual(stream);
      expect([1, 2]).toContain(queueSize);
      // Part buffers per destination stay within 3 parts, and 2 parts above 128 MiB.
      expect(partSize * (queueSize + 1)).toBeLessThanOrEqual(Math.max(3 * 128 * MiB, 2 * partSize));
      // On a long path: more parts only within the budget, never fewer than to begin with.
      expect(maxInFlight).toBeGreaterThanOrEqual(queueSize);
      if (maxInFlight > queueSize)
        expect(partSize * maxInFlight).toBeLessThanOrEqual(IN_FLIGHT_BUDGET);
    }
  });

  it('uses larger parts for larger databases and fewer of them at once', () => {
    const sizes = Array.from({ length: 4097 }, (_, i) => (i * TiB) / 4096);
    let last = chooseUploadShape(0);
    for (const size of sizes) {
      const shape = chooseUploadShape(size);
      expect(shape.partSize).toBeGreaterThanOrEqual(last.partSize);
      expect(shape.queueSize).toBeLessThanOrEqual(last.queueSize);
      // Memory per destination stays bounded: partSize × (queueSize + 1).
      expect(shape.partSize * (shape.queueSize + 1)).toBeLessThanOrEqual(512 * MiB);
      last = shape;
    }
    expect(chooseUploadShape(100 * GiB)).toEqual({
      partSize: 21 * MiB,
      queueSize: 2,
      maxInFlight: 2,
    });
    expect(chooseUploadShape(60 * GiB)).toMatchObject({ partSize: 13 * MiB, maxInFlight: 3 });
    expect(chooseUploadShape(300 * GiB)).toEqual({
      partSize: 63 * MiB,
      queueSize: 2,
      maxInFlight: 2,
    });
  });

  it('caps parts at S3’s 5 GiB maximum and treats a negative estimate as zero', () => {
    expect(chooseUploadShape(1000 * TiB).partSize).toBe(MAX_PART_SIZE);
    expect(chooseUploadShape(-5)).toEqual(chooseUploadShape(0));
  });
});

describe('parseEndpoint', () => {
  it('keeps only the origin of an http(s) URL', () => {
    expect(parseEndpoint('primary-endpoint', 'https://s3.us-west-004.backblazeb2.com')).toBe(
      'https://s3.us-west-004.backblazeb2.com',
    );
    expect(parseEndpoint('primary-endpoint', 'https://ABC.r2.cloudflarestorage.com/')).toBe(
      'https://abc.r2.cloudflarestorage.com',
    );
    expect(parseEndpoint('secondary-endpoint', 'http://127.0.0.1:9000/some/path?x=1')).toBe(
      'http://127.0.0.1:9000',
    );
  });

  it('refuses another scheme or something that is not a URL, naming the input', () => {
    for (const value of ['ftp://s3.example.com', 's3.example.com', '']) {
      let err: unknown;
      try {
        parseEndpoint('secondary-endpoint', value);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InputError);
      expect((err as InputError).input).toBe('secondary-endpoint');
      expect((err as InputError).message).toBe(
        `Invalid 'secondary-endpoint': "${value}". Expected an http(s) URL such as https://s3.us-west-004.backblazeb2.com.`,
      );
    }
  });

  it('refuses credentials in the URL without echoing them', () => {
    expect(() => parseEndpoint('primary-endpoint', 'https://key:t0psecret@s3.example.com')).toThrow(
      "Invalid 'primary-endpoint': credentials in the URL. Use the access key inputs.",
    );
  });

  // The scheme is checked before the credentials, and the scheme error echoes the
  // whole value: `s3://key:secret@host` prints the secret.
  it('refuses credentials in a non-http URL without echoing them', () => {
    let message = '';
    try {
      parseEndpoint('primary-endpoint', 's3://key:t0psecret@s3.example.com');
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/^Invalid 'primary-endpoint'/);
    expect(message).not.toContain('t0psecret');
  });
});

describe('defaultRegion', () => {
  it('takes a Backblaze B2 region from the endpoint host', () => {
    expect(defaultRegion('https://s3.us-west-004.backblazeb2.com')).toBe('us-west-004');
    expect(defaultRegion('https://s3.eu-central-003.backblazeb2.com')).toBe('eu-central-003');
  });

  it('is auto for anything else', () => {
    expect(defaultRegion('https://0123abcd.r2.cloudflarestorage.com')).toBe('auto');
    expect(defaultRegion('http://127.0.0.1:9000')).toBe('auto');
    expect(defaultRegion('https://s3.us-west-004.backblazeb2.com.evil.example')).toBe('auto');
  });
});

describe('FanOut', () => {
  it('gives every branch the same bytes', async () => {
    const { chunks, all } = randomChunks(200, 10_000);
    const fan = new FanOut(['a', 'b', 'c']);
    const seen = fan.branches.map((b) => watch(b.stream));
    await pipeline(Readable.from(chunks), fan);
    for (const o of await Promise.all(seen)) {
      expect(o.ended).toBe(true);
      expect(o.error).toBeUndefined();
      expect(o.data.length).toBe(all.length);
      expect(sha256(o.data)).toBe(sha256(all));
    }
  });

  it('goes at the pace of the slowest branch', async () => {
    const CHUNK = 16 * 1024;
    const COUNT = 256; // 4 MiB
    const { chunks, all } = randomChunks(COUNT, CHUNK);
    let pulled = 0;
    const source = new Readable({
      highWaterMark: CHUNK,
      read() {
        this.push(pulled < COUNT ? chunks[pulled++] : null);
      },
    });
    const fan = new FanOut(['fast', 'slow'], 64 * 1024);
    let fastBytes = 0;
    branch(fan, 0).stream.on('data', (c: Buffer) => {
      fastBytes += c.length;
    });
    const fast = watch(branch(fan, 0).stream);
    const flowing = pipeline(source, fan);

    await sleep(150);
    // Only what fits in the buffers (a few hundred KiB) was read while `slow` read nothing.
    expect(pulled).toBeLessThan(COUNT / 8);
    expect(fastBytes).toBeLessThan(all.length / 8);

    const slow = watch(branch(fan, 1).stream);
    await flowing;
    for (const o of [await fast, await slow]) {
      expect(o.ended).toBe(true);
      expect(sha256(o.data)).toBe(sha256(all));
    }
  });

  it('drops a branch and lets the others finish', async () => {
    const { chunks, all } = randomChunks(300, 10_000);
    const fan = new FanOut(['a', 'b'], 32 * 1024);
    const a = watch(branch(fan, 0).stream);
    let bBytes = 0;
    const bStream = branch(fan, 1).stream;
    bStream.on('data', (c: Buffer) => {
      bBytes += c.length;
      if (bBytes >= 200_000) fan.drop('b', new Error('b: upload failed'));
    });
    const b = watch(bStream);
    await pipeline(Readable.from(chunks), fan);

    const ao = await a;
    expect(ao.ended).toBe(true);
    expect(sha256(ao.data)).toBe(sha256(all));
    const bo = await b;
    expect(bo.ended).toBe(false);
    expect(bo.error?.message).toBe('b: upload failed');
    expect(bo.data.length).toBeLessThan(all.length);
    expect(fan.live().map((x) => x.name)).toEqual(['a']);
    expect(branch(fan, 1).failure?.message).toBe('b: upload failed');
  });

  it('errors when every branch is dropped', async () => {
    const { chunks } = randomChunks(300, 10_000);
    const fan = new FanOut(['b2', 'r2'], 32 * 1024);
    const outcomes = fan.branches.map((x) => watch(x.stream));
    let seen = 0;
    branch(fan, 0).stream.on('data', (c: Buffer) => {
      seen += c.length;
      if (seen >= 100_000) {
        fan.drop('b2', new Error('HTTP 503'));
        fan.drop('r2', new Error('HTTP 401'));
      }
    });
    await expect(pipeline(Readable.from(chunks), fan)).rejects.toThrow(
      'every destination failed: b2: HTTP 503; r2: HTTP 401',
    );
    for (const o of await Promise.all(outcomes)) {
      expect(o.ended).toBe(false);
      expect(o.error).toBeDefined();
    }
  });

  it('passes the end on only once the gate resolves', async () => {
    const { chunks, all } = randomChunks(20, 1000);
    const fan = new FanOut(['a', 'b']);
    let open!: () => void;
    fan.endAfter(
      new Promise<void>((resolve) => {
        open = resolve;
      }),
    );
    const ends: string[] = [];
    for (const b of fan.branches) b.stream.on('end', () => ends.push(b.name));
    const outcomes = fan.branches.map((b) => watch(b.stream));
    const flowing = pipeline(Readable.from(chunks), fan);
    await sleep(50);
    expect(ends).toEqual([]);
    open();
    await flowing;
    for (const o of await Promise.all(outcomes)) {
      expect(o.ended).toBe(true);
      expect(o.data.equals(all)).toBe(true);
    }
  });

  it('destroys the branches instead of ending them when the gate rejects', async () => {
    const { chunks, all } = randomChunks(20, 1000);
    const fan = new FanOut(['a', 'b']);
    let fail!: (e: Error) => void;
    fan.endAfter(
      new Promise<void>((_, reject) => {
        fail = reject;
      }),
    );
    const outcomes = fan.branches.map((b) => watch(b.stream));
    const flowing = pipeline(Readable.from(chunks), fan);
    await sleep(50);
    fail(new Error('pg_dump exited with code 1'));
    await expect(flowing).rejects.toThrow('pg_dump exited with code 1');
    for (const o of await Promise.all(outcomes)) {
      expect(o.ended).toBe(false);
      expect(o.error?.message).toBe('pg_dump exited with code 1');
      // Every byte arrived, yet no clean end: an upload cannot complete.
      expect(o.data.equals(all)).toBe(true);
    }
  });

  it('destroys the branches when the input fails half-way', async () => {
    async function* dying() {
      yield randomBytes(50_000);
      yield randomBytes(50_000);
      throw new Error('zstd: broken pipe');
    }
    const fan = new FanOut(['a', 'b']);
    const outcomes = fan.branches.map((b) => watch(b.stream));
    await expect(pipeline(Readable.from(dying()), fan)).rejects.toThrow('zstd: broken pipe');
    for (const o of await Promise.all(outcomes)) {
      expect(o.ended).toBe(false);
      expect(o.error).toBeDefined();
    }
  });
});

describe('replicate', () => {
  const shape = { partSize: 16 * MiB, queueSize: 4, maxInFlight: 4 };
  const KEY = 'disaster_recovery/20261126T020000Z-7f3a9c/database.dump.zst.age';

  it('stores identical bytes at every destination', async () => {
    const { chunks, all } = randomChunks(100, 30_000);
    const b2 = memoryDestination('b2');
    const r2 = memoryDestination('r2');
    const rep = replicate(
      Readable.from(chunks),
      [b2.destination, r2.destination],
      KEY,
      shape,
      'application/octet-stream',
      Promise.resolve(),
    );
    const results = await rep.results;
    expect(results.map((r) => [r.destination, r.ok, r.error])).toEqual([
      ['b2', true, null],
      ['r2', true, null],
    ]);
    for (const d of [b2, r2]) {
      expect(sha256(d.stored.get(KEY) ?? Buffer.alloc(0))).toBe(sha256(all));
      expect(d.state.contentType).toBe('application/octet-stream');
    }
    expect(results[0]?.etag).toBe(sha256(all).slice(0, 32));
    expect(rep.sentBytes()).toBe(all.length);
    expect(rep.uploadedBytes('r2')).toBe(all.length);
    expect(rep.uploadedBytes('nope')).toBe(0);
  });

  it('a destination failing mid-way does not stop the other', async () => {
    const { chunks, all } = randomChunks(100, 30_000);
    const b2 = memoryDestination('b2', { failAfter: 1_000_000 });
    const r2 = memoryDestination('r2');
    const rep = replicate(
      Readable.from(chunks),
      [b2.destination, r2.destination],
      KEY,
      shape,
      'application/octet-stream',
      Promise.resolve(),
    );
    const [first, second] = await rep.results;
    expect(first).toMatchObject({ destination: 'b2', ok: false, etag: null });
    expect(first?.error).toContain('InternalError');
    expect(first?.error).toContain('HTTP 500');
    expect(b2.state.aborted).toBe(true);
    expect(b2.stored.has(KEY)).toBe(false);

    expect(second).toMatchObject({ destination: 'r2', ok: true, error: null });
    expect(sha256(r2.stored.get(KEY) ?? Buffer.alloc(0))).toBe(sha256(all));
    expect(r2.state.aborted).toBe(false);
  });

  it('stores nothing when the gate rejects (the producer failed)', async () => {
    const { chunks } = randomChunks(50, 30_000);
    const b2 = memoryDestination('b2');
    const r2 = memoryDestination('r2');
    const rep = replicate(
      Readable.from(chunks),
      [b2.destination, r2.destination],
      KEY,
      shape,
      'application/octet-stream',
      Promise.reject(new Error('pg_dump exited with code 1')),
    );
    const results = await rep.results;
    expect(results.map((r) => r.ok)).toEqual([false, false]);
    for (const r of results) expect(r.error).toContain('pg_dump exited with code 1');
    expect(b2.stored.size).toBe(0);
    expect(r2.stored.size).toBe(0);
  });

  it('stores nothing when the input fails half-way', async () => {
    async function* dying() {
      for (let i = 0; i < 10; i++) yield randomBytes(30_000);
      throw new Error('zstd exited with code 1');
    }
    const b2 = memoryDestination('b2');
    const r2 = memoryDestination('r2');
    const rep = replicate(
      Readable.from(dying()),
      [b2.destination, r2.destination],
      KEY,
      shape,
      'application/octet-stream',
      Promise.resolve(),
    );
    const results = await rep.results;
    expect(results.map((r) => r.ok)).toEqual([false, false]);
    expect(b2.stored.size + r2.stored.size).toBe(0);
  });

  it('reports every destination failed when both fail', async () => {
    const { chunks } = randomChunks(100, 30_000);
    const b2 = memoryDestination('b2', { failAfter: 500_000 });
    const r2 = memoryDestination('r2', { failAfter: 800_000 });
    const rep = replicate(
      Readable.from(chunks),
      [b2.destination, r2.destination],
      KEY,
      shape,
      'application/octet-stream',
      Promise.resolve(),
    );
    const results = await rep.results;
    expect(results.map((r) => [r.destination, r.ok])).toEqual([
      ['b2', false],
      ['r2', false],
    ]);
    expect(b2.state.aborted && r2.state.aborted).toBe(true);
  });
});
