import { describe, expect, it } from 'vitest';
import { newestCompleteAt } from '../../src/manifest/catalog.js';
import { MANIFEST_NAME } from '../../src/manifest/id.js';
import type { Manifest } from '../../src/manifest/schema.js';
import { memoryDestination } from '../harness/memory-destination.js';
import { plantedManifest } from '../harness/plant.js';

const NOW = new Date('2026-11-30T12:00:00Z');
/** A manifest listing one 10-byte object of zeros, as the planted backups of other tests. */
function manifest(id: string): Manifest {
  return plantedManifest({
    id,
    createdAt: '2026-11-26T02:00:00.000Z',
    version: '0.1.0',
    objects: [{ name: 'database.dump.zst.age', kind: 'database', data: Buffer.alloc(10) }],
    destinations: [
      {
        name: 'r2',
        endpointHost: 'r2.example.com',
        bucket: 'dr',
        ok: true,
        error: null,
        etags: {},
        uploadSeconds: 1,
      },
    ],
  });
}

/** A destination holding these backups: complete, or committed with its dump cut short. */
function holding(backups: readonly { id: string; complete: boolean }[]) {
  const { destination, store } = memoryDestination('r2');
  const bucket = store.buckets.get('dr') as Map<string, unknown>;
  const put = (key: string, data: Buffer) =>
    bucket.set(key, { data, contentType: 'application/octet-stream', lastModified: NOW });
  for (const b of backups) {
    put(`db/${b.id}/${MANIFEST_NAME}`, Buffer.from(JSON.stringify(manifest(b.id))));
    put(`db/${b.id}/database.dump.zst.age`, Buffer.alloc(b.complete ? 10 : 4));
  }
  // A folder in flight (no manifest) is newer than all: never read.
  put('db/20261130T110000Z-ffffff/database.dump.zst.age', Buffer.alloc(3));
  return destination;
}

const id = (day: number) => `202611${String(day).padStart(2, '0')}T020000Z-aaaaaa`;

describe('the newest complete backup, read cheaply (for the backup-failed issue)', () => {
  it('skips damaged newer backups and folders in flight', async () => {
    const d = holding([
      { id: id(27), complete: true },
      { id: id(28), complete: false },
      { id: id(29), complete: true },
      { id: id(30), complete: false },
    ]);
    expect((await newestCompleteAt(d, 'db/', NOW, null))?.id).toBe(id(29));
  });

  it('null when there is none; undefined when the reads ran out before one was found', async () => {
    expect(await newestCompleteAt(holding([]), 'db/', NOW, null)).toBeNull();
    expect(
      await newestCompleteAt(holding([{ id: id(28), complete: false }]), 'db/', NOW, null),
    ).toBeNull();
    const damaged = holding([
      { id: id(25), complete: true },
      ...[26, 27, 28, 29].map((d) => ({ id: id(d), complete: false })),
    ]);
    expect(await newestCompleteAt(damaged, 'db/', NOW, null, 3)).toBeUndefined();
    expect((await newestCompleteAt(damaged, 'db/', NOW, null, 5))?.id).toBe(id(25));
  });
});
