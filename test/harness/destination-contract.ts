/**
 * The contract every destination kind passes (restic's internal/backend/test is the
 * model): a new kind is done when `destinationContract` is green for it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import type { Destination, StoredObject } from '../../src/storage/destination.js';

/** What one kind hands the suite: the same store seen three ways. */
export interface ContractSubject {
  /** A destination on an existing bucket; the suite writes under keys of its own. */
  readonly destination: Destination;
  /** The same store, a bucket that does not exist, role `secondary`. */
  readonly missingBucket: Destination;
  /** The same bucket with credentials the store refuses; `secret` is their secret key (12+ characters). */
  readonly refusedCredentials: { readonly destination: Destination; readonly secret: string };
  /** Whether 1,001 objects are cheap enough to list here (paging past 1,000). */
  readonly manyKeys: boolean;
  stop?(): Promise<void>;
}

const MiB = 1024 * 1024;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

async function listed(dest: Destination, prefix: string): Promise<StoredObject[]> {
  const out: StoredObject[] = [];
  for await (const o of dest.list(prefix)) out.push(o);
  return out;
}

async function keysUnder(dest: Destination, prefix: string): Promise<string[]> {
  return (await listed(dest, prefix)).map((o) => o.key);
}

/** The rejection of `p`; fails the test when it resolves. */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

/** Puts `count` small objects, a few at a time. */
async function putMany(dest: Destination, keys: readonly string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 25)
    await Promise.all(keys.slice(i, i + 25).map((k) => dest.put(k, `body of ${k}`, 'text/plain')));
}

export function destinationContract(name: string, make: () => Promise<ContractSubject>): void {
  describe(`Destination contract: ${name}`, () => {
    let subject: ContractSubject;
    let dest: Destination;
    let n = 0;
    /** A key prefix no other test uses. */
    const fresh = () => `contract/${Date.now().toString(36)}-${n++}/`;

    beforeAll(async () => {
      subject = await make();
      dest = subject.destination;
    });
    afterAll(async () => {
      await subject?.stop?.();
    });

    it('put then get gives the same bytes back', async () => {
      const key = `${fresh()}object.bin`;
      const body = randomBytes(300_000);
      const { etag } = await dest.put(key, body, 'application/octet-stream');
      expect(etag).not.toMatch(/"/);
      expect(sha256(await bytesOf(await dest.get(key)))).toBe(sha256(body));
      const text = `${fresh()}note.txt`;
      await dest.put(text, 'héllo\n', 'text/plain');
      expect((await bytesOf(await dest.get(text))).toString('utf8')).toBe('héllo\n');
    });

    it('a streamed upload of several parts stores the same bytes', async () => {
      const key = `${fresh()}stream.bin`;
      const body = randomBytes(11 * MiB + 12_345);
      const chunks = Array.from({ length: Math.ceil(body.length / 65_536) }, (_, i) =>
        body.subarray(i * 65_536, (i + 1) * 65_536),
      );
      const up = dest.upload(
        key,
        Readable.from(chunks),
        { partSize: 5 * MiB, queueSize: 2, maxInFlight: 2 },
        'application/octet-stream',
      );
      const { etag } = await up.done;
      expect(etag).not.toBe('');
      expect(up.uploadedBytes()).toBe(body.length);
      const back = await bytesOf(await dest.get(key));
      expect(back.length).toBe(body.length);
      expect(sha256(back)).toBe(sha256(body));
      const [stored] = await listed(dest, key);
      expect(stored?.size).toBe(body.length);
    });

    it('streams of exactly one and two parts, and an empty stream, store the same bytes', async () => {
      for (const size of [0, 5 * MiB, 10 * MiB]) {
        const key = `${fresh()}exact-${size}.bin`;
        const body = randomBytes(size);
        // One chunk ends exactly at each part boundary: the end is only known on the next read.
        const chunks = size === 0 ? [] : [body.subarray(0, 5 * MiB), body.subarray(5 * MiB)];
        const up = dest.upload(
          key,
          Readable.from(chunks.filter((c) => c.length > 0)),
          { partSize: 5 * MiB, queueSize: 2, maxInFlight: 2 },
          'application/octet-stream',
        );
        await up.done;
        const back = await bytesOf(await dest.get(key));
        expect(back.length, `size ${size}`).toBe(size);
        expect(sha256(back)).toBe(sha256(body));
      }
    });

    it('a stream that fails half-way stores nothing', async () => {
      const key = `${fresh()}failed.bin`;
      const body = new PassThrough();
      const up = dest.upload(
        key,
        body,
        { partSize: 5 * MiB, queueSize: 2, maxInFlight: 2 },
        'text/plain',
      );
      const settled = up.done.then(
        () => 'stored',
        (e: Error) => e.message,
      );
      body.write(randomBytes(11 * MiB));
      await sleep(100);
      body.destroy(new Error('the dump died'));
      expect(await settled).toMatch(/the dump died|premature|aborted/i);
      await up.abort();
      await sleep(100);
      expect(await keysUnder(dest, key)).toEqual([]);
    });

    it('lists exactly the keys under a prefix, in order, with their sizes', async () => {
      const base = fresh();
      const keys = [`${base}a/1`, `${base}a/2`, `${base}a/sub/3`, `${base}ab`, `${base}b/1`];
      await putMany(dest, keys);
      const under = await listed(dest, `${base}a/`);
      expect(under.map((o) => o.key)).toEqual([`${base}a/1`, `${base}a/2`, `${base}a/sub/3`]);
      expect(under.map((o) => o.size)).toEqual(keys.slice(0, 3).map((k) => `body of ${k}`.length));
      expect(await keysUnder(dest, base)).toEqual(keys);
      expect(await keysUnder(dest, `${base}nothing/`)).toEqual([]);
    });

    it('lists past 1,000 keys (every page)', async (ctx) => {
      if (!subject.manyKeys) ctx.skip();
      const base = fresh();
      const keys = Array.from({ length: 1001 }, (_, i) => `${base}${String(i).padStart(4, '0')}`);
      await putMany(dest, keys);
      expect(await keysUnder(dest, base)).toEqual(keys);
    });

    it('a missing key: isNotFound, and describeError says so', async () => {
      const key = `${fresh()}missing.bin`;
      const e = await rejection(dest.get(key).then(bytesOf));
      expect(dest.isNotFound(e)).toBe(true);
      expect(dest.describeError(e)).toMatch(/NoSuchKey|not exist|not found/i);
      expect(dest.isNotFound(new Error('connect ECONNREFUSED 127.0.0.1:9'))).toBe(false);
    });

    it('remove deletes, and removing a missing key is no error', async () => {
      const base = fresh();
      await putMany(dest, [`${base}keep`, `${base}gone`]);
      await dest.remove(`${base}gone`);
      expect(dest.isNotFound(await rejection(dest.get(`${base}gone`).then(bytesOf)))).toBe(true);
      expect(await keysUnder(dest, base)).toEqual([`${base}keep`]);
      await dest.remove(`${base}gone`);
      await dest.remove(`${base}never-was`);
      expect(await keysUnder(dest, base)).toEqual([`${base}keep`]);
    });

    it('purge deletes the first key, then the others, and nothing outside the folder', async () => {
      const base = fresh();
      const folder = `${base}20261126T020000Z-7f3a9c/`;
      const inside = [`${folder}database.dump.zst.age`, `${folder}verifications/1.json`];
      await putMany(dest, [`${folder}manifest.json`, ...inside, `${base}other/manifest.json`]);
      const report = await dest.purge({ folder, first: `${folder}manifest.json`, keys: inside });
      expect(report.deleted[0]).toBe(`${folder}manifest.json`);
      expect([...report.deleted].sort()).toEqual([`${folder}manifest.json`, ...inside].sort());
      expect(report.failed).toEqual([]);
      expect(await keysUnder(dest, base)).toEqual([`${base}other/manifest.json`]);
      await expect(
        dest.purge({
          folder,
          first: `${folder}manifest.json`,
          keys: [`${base}other/manifest.json`],
        }),
      ).rejects.toThrow(/not an object under/);
      expect(await keysUnder(dest, base)).toEqual([`${base}other/manifest.json`]);
    });

    it('describeError never holds the secret key', async () => {
      const { destination: wrong, secret } = subject.refusedCredentials;
      expect(secret.length).toBeGreaterThanOrEqual(12);
      const refused = await rejection(listed(wrong, 'contract/'));
      expect(wrong.describeError(refused)).not.toBe('');
      expect(wrong.describeError(refused)).not.toContain(secret);
      const checked = await rejection(wrong.check());
      expect((checked as Error).message).not.toContain(secret);
      // Even when the store's message echoes it.
      const echoed = new Error(`signature mismatch for ${secret} at the store`);
      expect(wrong.describeError(echoed)).not.toContain(secret);
      const own = dest.settings.secretAccessKey;
      expect(dest.describeError(new Error(`echo ${own}`))).not.toContain(own);
    });

    it("check() passes on the bucket, and names '<role>-bucket' when it does not exist", async () => {
      await dest.check();
      const missing = subject.missingBucket;
      const e = await rejection(missing.check());
      expect(e).toBeInstanceOf(InputError);
      expect((e as InputError).input).toBe(`${missing.settings.role}-bucket`);
      expect((e as Error).message).toContain(`"${missing.settings.bucket}" does not exist`);
    });

    it('an aborted upload leaves no object', async () => {
      const key = `${fresh()}aborted.bin`;
      const body = new PassThrough();
      const up = dest.upload(
        key,
        body,
        { partSize: 5 * MiB, queueSize: 2, maxInFlight: 2 },
        'text/plain',
      );
      const settled = up.done.then(
        () => 'stored',
        () => 'rejected',
      );
      body.write(randomBytes(6 * MiB));
      await sleep(200);
      await up.abort();
      body.end(randomBytes(1000));
      expect(await settled).toBe('rejected');
      await sleep(200);
      expect(await keysUnder(dest, key)).toEqual([]);
      expect(dest.isNotFound(await rejection(dest.get(key).then(bytesOf)))).toBe(true);
    });
  });
}
