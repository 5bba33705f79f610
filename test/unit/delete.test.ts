import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { backupFolderOf, deleteBackup } from '../../src/manifest/delete.js';
import { describeLock } from '../../src/storage/delete.js';
import { purgeObjects, type S3Sender } from '../../src/storage/s3/delete.js';

/** The backup delete prune does, over S3's purge with a fake client (and tuning). */
function deleteBackupObjects(
  client: S3Sender,
  bucket: string,
  keys: readonly string[],
  opts: { manifestKey: string; versioned?: boolean; batchSize?: number },
) {
  const { manifestKey, ...tuning } = opts;
  return deleteBackup(
    { purge: (request) => purgeObjects(client, bucket, request, tuning) },
    manifestKey,
    keys,
  );
}

/**
 * An in-memory S3 bucket that understands the commands pg-dr deletes with. s3rver
 * supports neither versioning nor object lock, hence this fake.
 */
interface Version {
  key: string;
  versionId: string;
  deleteMarker: boolean;
  retainUntil?: Date;
  legalHold?: boolean;
}

function s3Error(code: string, message: string, status: number): Error {
  return Object.assign(new Error(message), { name: code, $metadata: { httpStatusCode: status } });
}

class FakeBucket implements S3Sender {
  versions: Version[] = [];
  calls: { name: string; input: Record<string, unknown> }[] = [];
  /** Makes DeleteObjects fail as a store without it (or wanting Content-MD5) does. */
  batchError: Error | null = null;
  /** Makes ListObjectVersions fail. */
  listError: Error | null = null;
  /** Entries per ListObjectVersions page. */
  pageSize = 1000;
  private next = 1;
  constructor(
    readonly versioning: 'Enabled' | 'Suspended' | undefined,
    readonly now = new Date('2026-11-25T03:00:00Z'),
  ) {}

  put(key: string, lock: { retainUntil?: Date; legalHold?: boolean } = {}): void {
    if (!this.versioning) this.versions = this.versions.filter((v) => v.key !== key);
    const versionId = this.versioning ? `v${this.next++}` : 'null';
    this.versions.push({ key, versionId, deleteMarker: false, ...lock });
  }

  /** What ListObjectsV2 would show: keys whose newest version is not a delete marker. */
  visibleKeys(prefix = ''): string[] {
    const latest = new Map<string, Version>();
    for (const v of this.versions) latest.set(v.key, v);
    return [...latest.values()]
      .filter((v) => !v.deleteMarker && v.key.startsWith(prefix))
      .map((v) => v.key)
      .sort();
  }

  under(prefix: string): Version[] {
    return this.versions.filter((v) => v.key.startsWith(prefix));
  }

  private locked(v: Version): boolean {
    return v.legalHold === true || (v.retainUntil !== undefined && v.retainUntil > this.now);
  }

  /** Deletes one object or version; returns an S3 error code and message when refused. */
  private remove(key: string, versionId: string | undefined): [string, string] | null {
    if (versionId === undefined) {
      if (this.versioning)
        this.versions.push({ key, versionId: `v${this.next++}`, deleteMarker: true });
      else this.versions = this.versions.filter((v) => v.key !== key);
      return null;
    }
    const v = this.versions.find((x) => x.key === key && x.versionId === versionId);
    if (v && this.locked(v))
      return ['AccessDenied', 'Access Denied because object protected by object lock.'];
    this.versions = this.versions.filter((x) => x !== v);
    return null;
  }

  async send(command: object): Promise<unknown> {
    const name = command.constructor.name;
    const input = (command as { input: Record<string, unknown> }).input;
    this.calls.push({ name, input });
    switch (name) {
      case 'GetBucketVersioningCommand':
        return this.versioning ? { Status: this.versioning } : {};
      case 'ListObjectVersionsCommand': {
        if (this.listError) throw this.listError;
        const prefix = String(input.Prefix ?? '');
        const all = this.versions
          .filter((v) => v.key.startsWith(prefix))
          .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
        let start = 0;
        if (input.KeyMarker !== undefined)
          start =
            all.findIndex(
              (v) => v.key === input.KeyMarker && v.versionId === input.VersionIdMarker,
            ) + 1;
        const page = all.slice(start, start + this.pageSize);
        const last = page.at(-1);
        const truncated = start + page.length < all.length;
        return {
          Versions: page
            .filter((v) => !v.deleteMarker)
            .map((v) => ({ Key: v.key, VersionId: v.versionId })),
          DeleteMarkers: page
            .filter((v) => v.deleteMarker)
            .map((v) => ({ Key: v.key, VersionId: v.versionId })),
          IsTruncated: truncated,
          ...(truncated && last
            ? { NextKeyMarker: last.key, NextVersionIdMarker: last.versionId }
            : {}),
        };
      }
      case 'DeleteObjectCommand': {
        const refused = this.remove(
          String(input.Key),
          input.VersionId === undefined ? undefined : String(input.VersionId),
        );
        if (refused) throw s3Error(refused[0], refused[1], 403);
        return {};
      }
      case 'DeleteObjectsCommand': {
        if (this.batchError) throw this.batchError;
        const del = input.Delete as { Objects: { Key: string; VersionId?: string }[] };
        if (del.Objects.length > 1000) throw s3Error('MalformedXML', 'over 1000 keys', 400);
        const Errors: { Key: string; VersionId?: string; Code: string; Message: string }[] = [];
        for (const o of del.Objects) {
          const refused = this.remove(o.Key, o.VersionId);
          if (refused) Errors.push({ ...o, Code: refused[0], Message: refused[1] });
        }
        return Errors.length > 0 ? { Errors } : {};
      }
      case 'GetObjectRetentionCommand': {
        const v = this.versions.find((x) => x.key === input.Key && x.versionId === input.VersionId);
        if (!v?.retainUntil) throw s3Error('NoSuchObjectLockConfiguration', 'no retention', 404);
        return { Retention: { Mode: 'COMPLIANCE', RetainUntilDate: v.retainUntil } };
      }
      case 'GetObjectLegalHoldCommand': {
        const v = this.versions.find((x) => x.key === input.Key && x.versionId === input.VersionId);
        return { LegalHold: { Status: v?.legalHold ? 'ON' : 'OFF' } };
      }
      default:
        throw s3Error('NotImplemented', `${name} is not faked`, 501);
    }
  }

  deleteCalls() {
    return this.calls.filter(
      (c) => c.name === 'DeleteObjectCommand' || c.name === 'DeleteObjectsCommand',
    );
  }
}

const PREFIX = 'disaster_recovery/';
const ID = '20261120T020000Z-7f3a9c';
const OTHER = '20261121T020000Z-0b1c2d';
const FOLDER = `${PREFIX}${ID}/`;
const MANIFEST = `${FOLDER}manifest.json`;
const OBJECTS = [
  `${FOLDER}config.tar.gz.age`,
  `${FOLDER}database.dump.zst.age`,
  `${FOLDER}verifications/20261121T050000Z.json`,
  `${FOLDER}verifications/20261122T050000Z.json`,
];

/** A backup and its neighbour, as the backup command leaves them. */
function fill(bucket: FakeBucket): void {
  for (const k of OBJECTS) bucket.put(k);
  bucket.put(MANIFEST);
  bucket.put(`${PREFIX}${OTHER}/database.dump.zst.age`);
  bucket.put(`${PREFIX}${OTHER}/manifest.json`);
}

/** The keys a catalog scan gives: the manifest is not among the objects. */
const scannedKeys = (bucket: FakeBucket) =>
  bucket.visibleKeys(FOLDER).filter((k) => k !== MANIFEST);

/** Keys each delete call touched, in order. */
function deletedInOrder(bucket: FakeBucket): string[][] {
  return bucket
    .deleteCalls()
    .map((c) =>
      c.name === 'DeleteObjectCommand'
        ? [String(c.input.Key)]
        : (c.input.Delete as { Objects: { Key: string }[] }).Objects.map((o) => o.Key),
    );
}

describe('deleteBackupObjects', () => {
  it('the SDK client fits the interface', () => {
    const client: S3Sender = new S3Client({ region: 'auto' });
    expect(typeof client.send).toBe('function');
  });

  it('unversioned bucket: the manifest alone first, then the rest in one DeleteObjects', async () => {
    const bucket = new FakeBucket(undefined);
    fill(bucket);
    const report = await deleteBackupObjects(bucket, 'b', scannedKeys(bucket), {
      manifestKey: MANIFEST,
    });
    expect(deletedInOrder(bucket)).toEqual([[MANIFEST], OBJECTS]);
    expect(bucket.deleteCalls()[0]?.input.VersionId).toBeUndefined();
    expect(bucket.calls[0]?.name).toBe('GetBucketVersioningCommand');
    expect(bucket.under(FOLDER)).toEqual([]);
    expect(bucket.visibleKeys()).toEqual([
      `${PREFIX}${OTHER}/database.dump.zst.age`,
      `${PREFIX}${OTHER}/manifest.json`,
    ]);
    expect(report).toMatchObject({
      deleted: [MANIFEST, ...OBJECTS],
      locked: [],
      failed: [],
      skipped: [],
      versioned: false,
    });
  });

  it('versioned bucket (B2): every version and delete marker goes, the manifest first', async () => {
    const bucket = new FakeBucket('Enabled');
    fill(bucket);
    // older versions, a re-upload of the manifest, and a file an earlier plain delete only hid
    bucket.put(`${FOLDER}database.dump.zst.age`);
    bucket.put(MANIFEST);
    bucket.put(`${FOLDER}database.dump.gz.age`);
    await bucket.send({
      constructor: { name: 'DeleteObjectCommand' },
      input: { Key: `${FOLDER}database.dump.gz.age` },
    } as never);
    bucket.calls = [];
    expect(bucket.under(FOLDER)).toHaveLength(9);
    expect(bucket.under(FOLDER).filter((v) => v.deleteMarker)).toHaveLength(1);
    bucket.pageSize = 3; // the listing comes in pages

    const report = await deleteBackupObjects(bucket, 'b', scannedKeys(bucket), {
      manifestKey: MANIFEST,
    });

    expect(bucket.under(FOLDER)).toEqual([]); // no version, no delete marker left
    expect(bucket.under(`${PREFIX}${OTHER}/`)).toHaveLength(2);
    const order = deletedInOrder(bucket);
    expect(order.slice(0, 2)).toEqual([[MANIFEST], [MANIFEST]]); // both manifest versions, alone
    expect(order.slice(2).flat()).not.toContain(MANIFEST);
    expect(
      bucket.deleteCalls().every((c) => c.name !== 'DeleteObjectCommand' || c.input.VersionId),
    ).toBe(true);
    expect(bucket.calls.filter((c) => c.name === 'ListObjectVersionsCommand').length).toBe(3);
    expect(report.versioned).toBe(true);
    expect(report.deleted[0]).toBe(MANIFEST);
    expect([...report.deleted].sort()).toEqual(
      [MANIFEST, ...OBJECTS, `${FOLDER}database.dump.gz.age`].sort(),
    );
    expect(report.failed).toEqual([]);
  });

  it('a suspended versioning still keeps versions: treated as versioned', async () => {
    const bucket = new FakeBucket('Suspended');
    fill(bucket);
    bucket.put(`${FOLDER}config.tar.gz.age`);
    await deleteBackupObjects(bucket, 'b', scannedKeys(bucket), { manifestKey: MANIFEST });
    expect(bucket.under(FOLDER)).toEqual([]);
  });

  it.each([
    [
      'MissingContentMD5',
      s3Error('MissingContentMD5', 'Missing required header: Content-MD5', 400),
    ],
    [
      'NotImplemented',
      s3Error(
        'NotImplemented',
        'A header you provided implies functionality that is not implemented',
        501,
      ),
    ],
    [
      'InvalidRequest',
      s3Error('InvalidRequest', 'Missing required header for this request: Content-Md5', 400),
    ],
    ['HTTP 501', s3Error('UnknownError', 'UnknownError', 501)],
  ])('falls back to one DeleteObject per object on %s', async (_, error) => {
    const bucket = new FakeBucket('Enabled');
    fill(bucket);
    bucket.batchError = error;
    const report = await deleteBackupObjects(bucket, 'b', scannedKeys(bucket), {
      manifestKey: MANIFEST,
      batchSize: 2,
    });
    expect(bucket.under(FOLDER)).toEqual([]);
    const names = bucket.deleteCalls().map((c) => c.name);
    // manifest, one refused batch, then never a batch again
    expect(names).toEqual([
      'DeleteObjectCommand',
      'DeleteObjectsCommand',
      'DeleteObjectCommand',
      'DeleteObjectCommand',
      'DeleteObjectCommand',
      'DeleteObjectCommand',
    ]);
    expect(report.failed).toEqual([]);
    expect(report.notes.join('\n')).toMatch(/one object at a time/);
  });

  it('another batch error fails that batch, reported, not thrown', async () => {
    const bucket = new FakeBucket(undefined);
    fill(bucket);
    bucket.batchError = s3Error('InternalError', 'We encountered an internal error', 500);
    const report = await deleteBackupObjects(bucket, 'b', scannedKeys(bucket), {
      manifestKey: MANIFEST,
    });
    expect(report.deleted).toEqual([MANIFEST]);
    expect(report.failed.map((f) => f.key)).toEqual(OBJECTS);
    expect(report.failed[0]?.error).toMatch(/InternalError \(HTTP 500\)/);
    expect(bucket.visibleKeys(FOLDER)).toEqual(OBJECTS);
  });

  it('object lock: a refused version is reported locked with its date, the rest goes', async () => {
    const bucket = new FakeBucket('Enabled');
    const until = new Date('2027-01-01T00:00:00Z');
    bucket.put(MANIFEST);
    bucket.put(`${FOLDER}database.dump.zst.age`, { retainUntil: until });
    bucket.put(`${FOLDER}config.tar.gz.age`, { legalHold: true });
    bucket.put(`${FOLDER}verifications/20261121T050000Z.json`);
    bucket.put(`${FOLDER}verifications/20261122T050000Z.json`, {
      retainUntil: new Date('2026-11-01T00:00:00Z'), // expired: deletable
    });
    const report = await deleteBackupObjects(bucket, 'b', scannedKeys(bucket), {
      manifestKey: MANIFEST,
    });
    expect(report.failed).toEqual([]);
    expect(report.locked).toEqual([
      { key: `${FOLDER}config.tar.gz.age`, versionId: 'v3', legalHold: true },
      { key: `${FOLDER}database.dump.zst.age`, versionId: 'v2', until: '2027-01-01T00:00:00.000Z' },
    ]);
    expect(report.locked.map(describeLock)).toEqual([
      'kept: locked (legal hold)',
      'kept: locked until 2027-01-01T00:00:00.000Z',
    ]);
    expect(report.deleted).toEqual([
      MANIFEST,
      `${FOLDER}verifications/20261121T050000Z.json`,
      `${FOLDER}verifications/20261122T050000Z.json`,
    ]);
    expect(bucket.under(FOLDER).map((v) => v.key)).toEqual([
      `${FOLDER}database.dump.zst.age`,
      `${FOLDER}config.tar.gz.age`,
    ]);
  });

  it('object lock in the per-object fallback path', async () => {
    const bucket = new FakeBucket('Enabled');
    bucket.put(MANIFEST);
    bucket.put(`${FOLDER}database.dump.zst.age`, { retainUntil: new Date('2027-03-01T00:00:00Z') });
    bucket.batchError = s3Error('MissingContentMD5', 'Content-MD5 required', 400);
    const report = await deleteBackupObjects(bucket, 'b', scannedKeys(bucket), {
      manifestKey: MANIFEST,
    });
    expect(report.deleted).toEqual([MANIFEST]);
    expect(report.locked).toEqual([
      { key: `${FOLDER}database.dump.zst.age`, versionId: 'v2', until: '2027-03-01T00:00:00.000Z' },
    ]);
    expect(report.failed).toEqual([]);
  });

  it('a locked manifest keeps the whole backup: nothing else is attempted', async () => {
    const bucket = new FakeBucket('Enabled');
    for (const k of OBJECTS) bucket.put(k);
    bucket.put(MANIFEST, { retainUntil: new Date('2027-01-01T00:00:00Z') });
    const before = bucket.under(FOLDER).length;
    const report = await deleteBackupObjects(bucket, 'b', scannedKeys(bucket), {
      manifestKey: MANIFEST,
    });
    expect(report.locked).toEqual([
      { key: MANIFEST, versionId: 'v5', until: '2027-01-01T00:00:00.000Z' },
    ]);
    expect(report.deleted).toEqual([]);
    expect(report.skipped).toEqual(OBJECTS);
    expect(bucket.under(FOLDER)).toHaveLength(before);
    expect(bucket.deleteCalls()).toHaveLength(1);
  });

  it('access denied without a lock is a failure', async () => {
    const bucket = new FakeBucket(undefined);
    fill(bucket);
    const denied: S3Sender = {
      send: async (c) => {
        if (c.constructor.name === 'DeleteObjectCommand')
          throw s3Error('AccessDenied', 'Access Denied', 403);
        return bucket.send(c);
      },
    };
    const report = await deleteBackupObjects(denied, 'b', scannedKeys(bucket), {
      manifestKey: MANIFEST,
    });
    expect(report.locked).toEqual([]);
    expect(report.failed).toEqual([
      { key: MANIFEST, error: 'AccessDenied (HTTP 403): Access Denied' },
    ]);
    expect(report.skipped).toEqual(OBJECTS);
    expect(bucket.visibleKeys(FOLDER)).toEqual([...OBJECTS, MANIFEST].sort());
  });

  it('batches of at most 1000 keys', async () => {
    const bucket = new FakeBucket(undefined);
    bucket.put(MANIFEST);
    const keys: string[] = [];
    for (let i = 0; i < 2500; i++) {
      const k = `${FOLDER}verifications/${String(i).padStart(5, '0')}.json`;
      bucket.put(k);
      keys.push(k);
    }
    // asking for bigger batches still gets at most 1000 per call
    const report = await deleteBackupObjects(bucket, 'b', keys, {
      manifestKey: MANIFEST,
      batchSize: 5000,
    });
    const calls = bucket.deleteCalls();
    expect(calls.map((c) => c.name)).toEqual([
      'DeleteObjectCommand',
      'DeleteObjectsCommand',
      'DeleteObjectsCommand',
      'DeleteObjectsCommand',
    ]);
    expect(
      calls
        .slice(1)
        .map((c) => (c.input.Delete as { Objects: unknown[]; Quiet: boolean }).Objects.length),
    ).toEqual([1000, 1000, 500]);
    expect(calls[1]?.input.Delete).toMatchObject({ Quiet: true });
    expect(bucket.under(FOLDER)).toEqual([]);
    expect(report.deleted).toHaveLength(2501);
  });

  it('a versioned bucket whose versions cannot be listed: nothing is deleted', async () => {
    const bucket = new FakeBucket('Enabled');
    fill(bucket);
    bucket.listError = s3Error('AccessDenied', 'Access Denied', 403);
    const report = await deleteBackupObjects(bucket, 'b', scannedKeys(bucket), {
      manifestKey: MANIFEST,
      versioned: true,
    });
    expect(report.deleted).toEqual([]);
    expect(report.failed.map((f) => f.key)).toEqual([MANIFEST, ...OBJECTS]);
    expect(bucket.deleteCalls()).toEqual([]);
  });

  it('versioned: false skips the versioning check and deletes plainly', async () => {
    const bucket = new FakeBucket('Enabled');
    fill(bucket);
    await deleteBackupObjects(bucket, 'b', scannedKeys(bucket), {
      manifestKey: MANIFEST,
      versioned: false,
    });
    expect(bucket.calls.map((c) => c.name)).toEqual([
      'DeleteObjectCommand',
      'DeleteObjectsCommand',
    ]);
    expect(bucket.visibleKeys(FOLDER)).toEqual([]);
    // only hidden: the versions are still there (what a plain delete does on B2)
    expect(bucket.under(FOLDER).filter((v) => !v.deleteMarker)).toHaveLength(5);
  });

  it('never reaches past the backup folder', async () => {
    const bucket = new FakeBucket(undefined);
    await expect(
      deleteBackupObjects(bucket, 'b', [`${PREFIX}${OTHER}/database.dump.zst.age`], {
        manifestKey: MANIFEST,
      }),
    ).rejects.toThrow(/not an object of the backup/);
    await expect(
      deleteBackupObjects(bucket, 'b', [], { manifestKey: `${PREFIX}manifest.json` }),
    ).rejects.toThrow(/not a backup manifest key/);
    expect(backupFolderOf(MANIFEST)).toBe(FOLDER);
    expect(() => backupFolderOf(`${PREFIX}${ID}/database.dump.zst.age`)).toThrow();
    expect(bucket.calls).toEqual([]);
  });
});
