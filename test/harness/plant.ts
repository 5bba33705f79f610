// Backups and verification records planted in a bucket as pg-dr would write them (or as
// someone with the bucket keys could), for the retention and monitoring tests.
import { createHash, randomBytes } from 'node:crypto';
import type { Manifest } from '../../src/manifest/schema.js';
import { type S3Server, sha256 } from './s3.js';

/** `n` bytes that look random, the same for the same seed. */
function seededBytes(seed: string, n: number): Buffer {
  const blocks: Buffer[] = [];
  for (let i = 0; i * 32 < n; i++)
    blocks.push(createHash('sha256').update(`${seed}:${i}`).digest());
  return Buffer.concat(blocks).subarray(0, n);
}

/**
 * A complete backup as pg-dr writes it: two objects and a manifest that lists them; its
 * duration and database object's size as `figures` says (1 s and 3,000 bytes by default).
 * With a `seed`, the objects' bytes are the seed's, so two destinations planted with the
 * same seed hold the same backup (and the same manifest); without one they are random.
 */
export async function plantComplete(
  server: S3Server,
  bucket: string,
  prefix: string,
  id: string,
  figures: {
    readonly durationSeconds?: number;
    readonly databaseBytes?: number;
    readonly seed?: string;
    /** The manifest's destinations; by default `b2` alone, in this bucket. */
    readonly destinations?: Manifest['destinations'];
  } = {},
): Promise<void> {
  const bytes = (name: string, n: number) =>
    figures.seed !== undefined ? seededBytes(`${figures.seed}/${name}`, n) : randomBytes(n);
  const created = `${id.slice(0, 4)}-${id.slice(4, 6)}-${id.slice(6, 8)}T${id.slice(9, 11)}:${id.slice(11, 13)}:${id.slice(13, 15)}.000Z`;
  const objects = [
    {
      name: 'database.dump.zst.age',
      kind: 'database' as const,
      data: bytes('database', figures.databaseBytes ?? 3000),
    },
    { name: 'config.tar.gz.age', kind: 'config' as const, data: bytes('config', 500) },
  ];
  const manifest = plantedManifest({
    id,
    createdAt: created,
    version: 'test',
    objects,
    ...(figures.durationSeconds !== undefined ? { durationSeconds: figures.durationSeconds } : {}),
    destinations: figures.destinations ?? [
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
  /** 1 s unless set. */
  readonly durationSeconds?: number;
}): Manifest {
  return {
    format: 'pg-dr/1',
    id: o.id,
    createdAt: o.createdAt,
    finishedAt: o.createdAt,
    durationSeconds: o.durationSeconds ?? 1,
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

/** One night of a planted history: its backup's id, duration and database object size. */
export interface PlantedNight {
  readonly id: string;
  readonly durationSeconds: number;
  readonly databaseBytes: number;
}

/**
 * A month of nightly backups as a person would want to see it charted: one at 02:00 UTC on
 * each of the 29 days before `now`'s day, except the `missed` days (`YYYY-MM-DD`); about
 * 4 minutes each and growing slowly, with one night `slowDay` three times the others.
 */
export function nightlyHistory(
  now: Date,
  o: { readonly missed: readonly string[]; readonly slowDay: string },
): PlantedNight[] {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const nights: PlantedNight[] = [];
  for (let back = 29; back >= 1; back--) {
    const day = new Date(today - back * 24 * 3600 * 1000 + 2 * 3600 * 1000);
    const iso = day.toISOString().slice(0, 10);
    if (o.missed.includes(iso)) continue;
    const n = 29 - back;
    const duration = 230 + ((n * 7) % 25);
    nights.push({
      id: `${iso.replace(/-/g, '')}T020000Z-${(0xa00000 + n).toString(16)}`,
      durationSeconds: iso === o.slowDay ? duration * 3 : duration,
      databaseBytes: 20_000 + n * 400,
    });
  }
  return nights;
}

/**
 * Plants `nights` as complete backups at each of `at` (`b2`, `r2`, … in order), the same
 * bytes and the same manifest everywhere, as one backup run writes them.
 */
export async function plantNights(
  at: readonly { readonly server: S3Server; readonly bucket: string }[],
  prefix: string,
  nights: readonly PlantedNight[],
): Promise<void> {
  const names = ['b2', 'r2', 'third', 'fourth'];
  const destinations = at.map(({ bucket }, i) => ({
    name: names[i] ?? `d${i}`,
    endpointHost: 'x',
    bucket,
    ok: true,
    error: null,
    etags: {},
    uploadSeconds: 1,
  }));
  for (const { server, bucket } of at)
    for (const n of nights)
      await plantComplete(server, bucket, prefix, n.id, {
        durationSeconds: n.durationSeconds,
        databaseBytes: n.databaseBytes,
        seed: n.id,
        destinations,
      });
}
