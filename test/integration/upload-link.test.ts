import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDestination, type Destination } from '../../src/storage/destination.js';
import { chooseUploadShape } from '../../src/storage/part-size.js';
import { type Link, startLink } from '../harness/link.js';
import { type S3Server, sha256, startS3 } from '../harness/s3.js';

const MiB = 1024 * 1024;

/**
 * Uploads over a long path: a real s3rver behind a proxy that delays every byte and caps
 * each TCP connection (test/harness/link.ts), as a cloud region far from the runner does.
 * No time is asserted: what is checked is that the parts in flight grew with the link, that
 * the bytes are the same, and that on loopback the same defaults store the same bytes.
 */
describe('uploads over a long path', () => {
  let server: S3Server;
  let link: Link;

  beforeAll(async () => {
    server = await startS3({ buckets: ['far'], name: 'link' });
    link = await startLink(server.port, { delayMs: 20, bytesPerSecond: 3e6 });
  });
  afterAll(async () => {
    await link?.close();
    await server?.stop();
  });

  const destination = (endpoint: string): Destination =>
    createDestination({
      name: 'far',
      role: 'primary',
      endpoint,
      region: server.region,
      bucket: 'far',
      accessKeyId: server.accessKeyId,
      secretAccessKey: server.secretAccessKey,
      forcePathStyle: true,
    });

  async function store(dest: Destination, key: string, body: Buffer) {
    const chunks = Array.from({ length: Math.ceil(body.length / 65_536) }, (_, i) =>
      body.subarray(i * 65_536, (i + 1) * 65_536),
    );
    // The default shape of a small database: 8 MiB parts, two at first, up to five.
    const shape = chooseUploadShape(body.length);
    const up = dest.upload(key, Readable.from(chunks), shape, 'application/octet-stream');
    const out = await up.done;
    expect(await server.getObject('far', key).then(sha256)).toBe(sha256(body));
    expect(up.uploadedBytes()).toBe(body.length);
    return out;
  }

  it('grows the parts in flight past two when each connection is capped, and stores the same bytes', async () => {
    const body = randomBytes(64 * MiB + 4321);
    const out = await store(destination(link.endpoint), 'far/db.bin', body);
    expect(out.partsInFlight).toBeGreaterThan(2);
    expect(out.partsInFlight).toBeLessThanOrEqual(chooseUploadShape(body.length).maxInFlight);
    // One connection per part in flight at most, reused: not one per part.
    expect(link.connections()).toBeLessThanOrEqual(out.partsInFlight ?? 0);
  });

  it('stores the same bytes on loopback with the same defaults', async () => {
    const body = randomBytes(40 * MiB + 17);
    const out = await store(destination(server.endpoint), 'near/db.bin', body);
    expect(out.partsInFlight).toBeLessThanOrEqual(chooseUploadShape(body.length).maxInFlight);
  });
});
