/**
 * Deleting one whole backup from one bucket: manifest first, then everything else in
 * its folder, every version of it when the bucket keeps versions (Backblaze B2 always
 * does: a plain delete only hides a file, which is still billed). Refusals by object
 * lock are reported as `locked`, not as failures.
 */
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  type DeleteObjectsCommandOutput,
  GetBucketVersioningCommand,
  type GetBucketVersioningCommandOutput,
  GetObjectLegalHoldCommand,
  type GetObjectLegalHoldCommandOutput,
  GetObjectRetentionCommand,
  type GetObjectRetentionCommandOutput,
  ListObjectVersionsCommand,
  type ListObjectVersionsCommandOutput,
} from '@aws-sdk/client-s3';
import { BACKUP_ID, MANIFEST_NAME } from '../manifest/id.js';
import { describeS3Error } from './destination.js';

/** What is needed of an S3 client; the SDK's `S3Client` is one, a test passes a fake. */
export interface S3Sender {
  send(command: object): Promise<unknown>;
}

export interface LockedObject {
  readonly key: string;
  readonly versionId?: string;
  /** ISO time the retention ends, when the store told us. */
  readonly until?: string;
  /** A legal hold (no end date) is on. */
  readonly legalHold?: boolean;
}

export interface FailedObject {
  readonly key: string;
  readonly versionId?: string;
  readonly error: string;
}

export interface DeleteReport {
  /** Keys gone entirely (every version, when versioned), the manifest first. */
  readonly deleted: string[];
  /** Versions object lock kept: report as "kept: locked until …", not as a failure. */
  readonly locked: LockedObject[];
  readonly failed: FailedObject[];
  /** Keys not attempted because the manifest could not be deleted (the backup stays whole). */
  readonly skipped: string[];
  /** Whether versions were deleted one by one (versioned bucket). */
  readonly versioned: boolean;
  /** Things worth a log line: fallbacks taken, listing quirks. */
  readonly notes: string[];
}

export interface DeleteOptions {
  /** `<prefix><backup-id>/manifest.json`; fixes the backup folder and is deleted first. */
  readonly manifestKey: string;
  /** `auto` (default): versioned when GetBucketVersioning says Enabled or Suspended. */
  readonly versioned?: 'auto' | boolean;
  /** Objects per DeleteObjects call (S3 allows at most 1000). */
  readonly batchSize?: number;
}

/** Batch errors after which DeleteObjects is given up for per-object DeleteObject. */
const BATCH_UNSUPPORTED = new Set(['MissingContentMD5', 'NotImplemented', 'InvalidRequest']);
/** Backblaze B2 refuses the SDK's flexible-checksum headers on DeleteObjects with InvalidArgument. */
const UNSUPPORTED_HEADER = /unsupported header|checksum/i;
const LOCK_WORDS = /retention|legal[ -]?hold|object[ -]?lock|\blocked\b|\bworm\b/i;

interface Target {
  readonly key: string;
  readonly versionId?: string;
}

interface ErrorShape {
  readonly code: string;
  readonly message: string;
  readonly status: number | undefined;
}

function errorShape(e: unknown): ErrorShape {
  const err = (e ?? {}) as {
    name?: string;
    Code?: string;
    code?: string;
    message?: string;
    Message?: string;
    $metadata?: { httpStatusCode?: number };
  };
  return {
    code: err.Code ?? err.code ?? err.name ?? 'Error',
    message: err.message ?? err.Message ?? '',
    status: err.$metadata?.httpStatusCode,
  };
}

function isLockRefusal(e: ErrorShape): boolean {
  if (e.code === 'ObjectLocked') return true;
  return (
    (e.code === 'AccessDenied' || e.code === 'InvalidRequest') && LOCK_WORDS.test(`${e.message}`)
  );
}

function isBatchUnsupported(e: unknown): boolean {
  const s = errorShape(e);
  return (
    BATCH_UNSUPPORTED.has(s.code) ||
    s.status === 501 ||
    (s.code === 'InvalidArgument' && UNSUPPORTED_HEADER.test(s.message))
  );
}

/** The backup folder of a manifest key, checked: deleting must never reach past one backup. */
export function backupFolderOf(manifestKey: string): string {
  const suffix = `/${MANIFEST_NAME}`;
  const folder = manifestKey.endsWith(suffix) ? manifestKey.slice(0, -MANIFEST_NAME.length) : '';
  const id = folder.slice(0, -1).split('/').at(-1) ?? '';
  if (!BACKUP_ID.test(id))
    throw new Error(`not a backup manifest key: ${JSON.stringify(manifestKey)}`);
  return folder;
}

const withVersion = (key: string, versionId: string | undefined): Target =>
  versionId === undefined ? { key } : { key, versionId };

/**
 * Deletes one backup: the manifest alone first (from then on the backup no longer counts
 * as complete), then its other objects with DeleteObjects in batches, falling back to one
 * DeleteObject per object on stores that refuse the batch call. In a versioned bucket
 * every version and delete marker under the backup's folder goes, found with
 * ListObjectVersions (this also clears files an earlier plain delete only hid). If the
 * manifest cannot be deleted nothing else is attempted. In an unversioned bucket the
 * manifest key is deleted first whether or not it is in `keys` (a catalog scan lists it
 * apart from the objects); deleting a missing key succeeds. Per-object problems are reported,
 * never thrown; only a key outside the manifest's folder throws (a caller's bug).
 */
export async function deleteBackupObjects(
  client: S3Sender,
  bucket: string,
  keys: readonly string[],
  opts: DeleteOptions,
): Promise<DeleteReport> {
  const folder = backupFolderOf(opts.manifestKey);
  for (const k of keys)
    if (!k.startsWith(folder) || k === folder)
      throw new Error(`${k} is not an object of the backup in ${folder}`);
  const batchSize = Math.min(1000, Math.max(1, opts.batchSize ?? 1000));
  const notes: string[] = [];
  const locked: LockedObject[] = [];
  const failed: FailedObject[] = [];

  const versioned = await resolveVersioning(client, bucket, opts.versioned ?? 'auto', notes);
  let targets: Target[];
  if (versioned) {
    let listed: Target[];
    try {
      listed = await listVersions(client, bucket, folder);
    } catch (e) {
      const error = `cannot list object versions under ${folder}: ${describeS3Error(e)}`;
      return {
        deleted: [],
        locked,
        failed: unique([opts.manifestKey, ...keys]).map((key) => ({ key, error })),
        skipped: [],
        versioned,
        notes,
      };
    }
    const seen = new Set(listed.map((t) => t.key));
    const unseen = keys.filter((k) => !seen.has(k));
    if (unseen.length > 0)
      notes.push(
        `${unseen.length} object(s) were not in the version listing; deleted without a version id`,
      );
    targets = [...listed, ...unseen.map((key) => ({ key }))];
  } else {
    targets = unique([opts.manifestKey, ...keys]).map((key) => ({ key }));
  }

  const manifestTargets = targets.filter((t) => t.key === opts.manifestKey);
  const rest = targets.filter((t) => t.key !== opts.manifestKey);
  const done = new Set<Target>();

  for (const t of manifestTargets) await deleteOne(client, bucket, t, done, locked, failed);
  if (done.size < manifestTargets.length) {
    return {
      deleted: [],
      locked,
      failed,
      skipped: unique(rest.map((t) => t.key)),
      versioned,
      notes,
    };
  }

  let perObject = false;
  for (let i = 0; i < rest.length; i += batchSize) {
    const batch = rest.slice(i, i + batchSize);
    if (!perObject) {
      try {
        const out = (await client.send(
          new DeleteObjectsCommand({
            Bucket: bucket,
            Delete: {
              Objects: batch.map((t) =>
                t.versionId === undefined ? { Key: t.key } : { Key: t.key, VersionId: t.versionId },
              ),
              Quiet: true,
            },
          }),
        )) as DeleteObjectsCommandOutput | undefined;
        await settleBatch(client, bucket, batch, out?.Errors ?? [], done, locked, failed);
        continue;
      } catch (e) {
        if (!isBatchUnsupported(e)) {
          const error = describeS3Error(e);
          for (const t of batch) failed.push({ ...t, error });
          continue;
        }
        perObject = true;
        notes.push(`DeleteObjects refused (${describeS3Error(e)}): deleting one object at a time`);
      }
    }
    for (const t of batch) await deleteOne(client, bucket, t, done, locked, failed);
  }

  // A key is deleted when every one of its targets is.
  const byKey = new Map<string, boolean>();
  for (const t of [...manifestTargets, ...rest])
    byKey.set(t.key, (byKey.get(t.key) ?? true) && done.has(t));
  return {
    deleted: [...byKey].filter(([, ok]) => ok).map(([k]) => k),
    locked,
    failed,
    skipped: [],
    versioned,
    notes,
  };
}

function unique(keys: readonly string[]): string[] {
  return [...new Set(keys)];
}

async function resolveVersioning(
  client: S3Sender,
  bucket: string,
  setting: 'auto' | boolean,
  notes: string[],
): Promise<boolean> {
  if (setting !== 'auto') return setting;
  try {
    const out = (await client.send(new GetBucketVersioningCommand({ Bucket: bucket }))) as
      | GetBucketVersioningCommandOutput
      | undefined;
    return out?.Status === 'Enabled' || out?.Status === 'Suspended';
  } catch (e) {
    notes.push(`GetBucketVersioning failed (${describeS3Error(e)}): treated as unversioned`);
    return false;
  }
}

/** Every version and delete marker under `folder`, the newest of each key first. */
async function listVersions(client: S3Sender, bucket: string, folder: string): Promise<Target[]> {
  const out: Target[] = [];
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  do {
    const page = (await client.send(
      new ListObjectVersionsCommand({
        Bucket: bucket,
        Prefix: folder,
        KeyMarker: keyMarker,
        VersionIdMarker: versionMarker,
      }),
    )) as ListObjectVersionsCommandOutput;
    const entries = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])];
    for (const v of entries)
      if (v.Key?.startsWith(folder)) out.push(withVersion(v.Key, v.VersionId ?? 'null'));
    if (page.IsTruncated) {
      keyMarker = page.NextKeyMarker;
      versionMarker = page.NextVersionIdMarker;
      if (keyMarker === undefined) throw new Error('truncated version listing without a marker');
    } else keyMarker = undefined;
  } while (keyMarker !== undefined);
  return out;
}

async function deleteOne(
  client: S3Sender,
  bucket: string,
  t: Target,
  done: Set<Target>,
  locked: LockedObject[],
  failed: FailedObject[],
): Promise<void> {
  try {
    await client.send(
      new DeleteObjectCommand(
        t.versionId === undefined
          ? { Bucket: bucket, Key: t.key }
          : { Bucket: bucket, Key: t.key, VersionId: t.versionId },
      ),
    );
    done.add(t);
  } catch (e) {
    const s = errorShape(e);
    if (isLockRefusal(s)) locked.push(await lockInfo(client, bucket, t));
    else failed.push({ ...t, error: describeS3Error(e) });
  }
}

async function settleBatch(
  client: S3Sender,
  bucket: string,
  batch: readonly Target[],
  errors: NonNullable<DeleteObjectsCommandOutput['Errors']>,
  done: Set<Target>,
  locked: LockedObject[],
  failed: FailedObject[],
): Promise<void> {
  for (const t of batch) {
    const err =
      errors.find((x) => x.Key === t.key && x.VersionId === t.versionId) ??
      errors.find((x) => x.Key === t.key && x.VersionId === undefined);
    if (!err) {
      done.add(t);
      continue;
    }
    const s = errorShape(err);
    if (isLockRefusal(s)) locked.push(await lockInfo(client, bucket, t));
    else
      failed.push({
        ...t,
        error: `${s.code}${s.message && s.message !== s.code ? `: ${s.message}` : ''}`,
      });
  }
}

/** Until when a version is held: its retention date, else whether a legal hold is on. */
async function lockInfo(client: S3Sender, bucket: string, t: Target): Promise<LockedObject> {
  const input =
    t.versionId === undefined
      ? { Bucket: bucket, Key: t.key }
      : { Bucket: bucket, Key: t.key, VersionId: t.versionId };
  try {
    const out = (await client.send(new GetObjectRetentionCommand(input))) as
      | GetObjectRetentionCommandOutput
      | undefined;
    const until = out?.Retention?.RetainUntilDate;
    if (until) return { ...t, until: new Date(until).toISOString() };
  } catch {
    // No retention configured, or the store cannot say: try the legal hold.
  }
  try {
    const out = (await client.send(new GetObjectLegalHoldCommand(input))) as
      | GetObjectLegalHoldCommandOutput
      | undefined;
    if (out?.LegalHold?.Status === 'ON') return { ...t, legalHold: true };
  } catch {
    // Unknown: reported as locked without a date.
  }
  return { ...t };
}

/** `kept: locked until 2027-01-01T00:00:00.000Z`, for reports. */
export function describeLock(l: LockedObject): string {
  if (l.until) return `kept: locked until ${l.until}`;
  if (l.legalHold) return 'kept: locked (legal hold)';
  return 'kept: locked (object lock)';
}
