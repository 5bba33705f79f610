// Backups and verification records planted in a bucket as pg-dr would write them (or as
// someone with the bucket keys could), for the retention and monitoring tests.
import { randomBytes } from 'node:crypto';
import type { Manifest } from '../../src/manifest/schema.js';
import { type S3Server, sha256 } from './s3.js';

/** A complete backup as pg-dr writes it: two objects and a manifest that lists them. */
export async function plantComplete(
  server: S3Server,
  bucket: string,
  prefix: string,
  id: string,
): Promise<void> {
  const created = `${id.slice(0, 4)}-${id.slice(4, 6)}-${id.slice(6, 8)}T${id.slice(9, 11)}:${id.slice(11, 13)}:${id.slice(13, 15)}.000Z`;
  const objects = [
    { name: 'database.dump.zst.age', kind: 'database' as const, data: randomBytes(3000) },
    { name: 'config.tar.gz.age', kind: 'config' as const, data: randomBytes(500) },
  ];
  const manifest = plantedManifest({
    id,
    createdAt: created,
    version: 'test',
    objects,
    destinations: [
      { name: 'b2', endpointHost: 'x', bucket, ok: true, error: null, etags: {}, uploadSeconds: 1 },
    ],
  });
  for (const o of objects) await server.putObject(bucket, `${prefix}${id}/${o.name}`, o.data);
  await server.putObject(
    bucket,
    `${prefix}${id}/manifest.json`,
    Buffer.from(JSON.stringify(manifest)),
  );
}

export async function plantIncomplete(
  server: S3Server,
  bucket: string,
  prefix: string,
  id: string,
): Promise<void> {
  await server.putObject(bucket, `${prefix}${id}/config.tar.gz.age`, randomBytes(100));
}

export async function plantVerification(
  server: S3Server,
  bucket: string,
  prefix: string,
  id: string,
  at: string,
  ok: boolean,
): Promise<void> {
  const v = {
    format: 'pg-dr-verification/1',
    backupId: id,
    destination: 'b2',
    level: 'checksum',
    ok,
    startedAt: at,
    durationSeconds: 1,
    tool: { name: 'pg-dr', version: 'test' },
    runUrl: null,
    objects: [],
    archive: null,
    drill: null,
    error: ok ? null : 'planted failure',
  };
  await server.putObject(
    bucket,
    `${prefix}${id}/verifications/${at.replace(/[-:.]/g, '')}.json`,
    Buffer.from(JSON.stringify(v)),
  );
}

/** An object of a planted backup: its name in the folder, its kind and its bytes. */
export interface PlantedObject {
  readonly name: string;
  readonly kind: 'database' | 'config';
  readonly data: Uint8Array;
}

/**
 * A valid manifest for a planted backup (a tiny database, no row counts, passphrase mode)
 * that lists `objects` with their sizes and SHA-256s; the caller stores them.
 */
export function plantedManifest(o: {
  readonly id: string;
  readonly createdAt: string;
  readonly version: string;
  readonly objects: readonly PlantedObject[];
  readonly destinations: Manifest['destinations'];
}): Manifest {
  return {
    format: 'pg-dr/1',
    id: o.id,
    createdAt: o.createdAt,
    finishedAt: o.createdAt,
    durationSeconds: 1,
    tool: { name: 'pg-dr', version: o.version },
    source: {
      repository: null,
      commit: null,
      ref: null,
      workflow: null,
      runId: null,
      runAttempt: null,
      runUrl: null,
      actor: null,
    },
    database: {
      name: 'app',
      serverVersion: '15.18',
      serverVersionNum: 150018,
      pgDumpVersion: '15.18',
      sizeBytes: 1,
      compression: 'zstd',
      compressionLevel: 3,
      archiveBytes: 1,
      dumpSeconds: 1,
      rowCounts: { method: 'off', tables: [] },
    },
    config: { files: [] },
    objects: o.objects.map((x) => ({
      name: x.name,
      kind: x.kind,
      plaintext: { bytes: x.data.length, sha256: sha256(x.data) },
      encrypted: { bytes: x.data.length, sha256: sha256(x.data) },
    })),
    encryption: { scheme: 'age', mode: 'passphrase' },
    destinations: o.destinations,
  };
}
