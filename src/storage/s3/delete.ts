/**
 * Purging a folder from one S3 bucket: `first` alone, then everything else, every version
 * of it when the bucket keeps versions (Backblaze B2 always does: a plain delete only
 * hides a file, which is still billed). Refusals by object lock are reported as `locked`,
 * not as failures.
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
import {
  checkPurgeRequest,
  type DeleteReport,
  type FailedObject,
  type LockedObject,
  type PurgeRequest,
} from '../delete.js';
import {
  describeBatchEntry,
  describeS3Error,
  isBatchUnsupported,
  isLockRefusal,
} from './errors.js';

/** What is needed of an S3 client; the SDK's `S3Client` is one, a test passes a fake. */
export interface S3Sender {
  send(command: object): Promise<unknown>;
}

export interface PurgeTuning {
  /** `auto` (default): versioned when GetBucketVersioning says Enabled or Suspended. */
  readonly versioned?: 'auto' | boolean;
  /** Objects per DeleteObjects call (S3 allows at most 1000). */
  readonly batchSize?: number;
}

interface Target {
  readonly key: string;
  readonly versionId?: string;
}

const withVersion = (key: string, versionId: string | undefined): Target =>
  versionId === undefined ? { key } : { key, versionId };

/** What one purge has done so far. */
interface Outcome {
  readonly done: Set<Target>;
  readonly locked: LockedObject[];
  readonly failed: FailedObject[];
  readonly notes: string[];
}

/**
 * Purges a folder: `first` alone (for a backup, its manifest: from then on the backup no
 * longer counts as complete), then the other objects with DeleteObjects in batches,
 * falling back to one DeleteObject per object on stores that refuse the batch call. In a
 * versioned bucket every version and delete marker under the folder goes, found with
 * ListObjectVersions (this also clears files an earlier plain delete only hid). If `first`
 * cannot be deleted nothing else is attempted. In an unversioned bucket `first` is
 * deleted whether or not it is in `keys`; deleting a missing key succeeds. Per-object
 * problems are reported, never thrown; only a key outside the folder throws (a caller's bug).
 */
export async function purgeObjects(
  client: S3Sender,
  bucket: string,
  request: PurgeRequest,
  tuning: PurgeTuning = {},
): Promise<DeleteReport> {
  checkPurgeRequest(request);
  const { folder, first, keys } = request;
  const batchSize = Math.min(1000, Math.max(1, tuning.batchSize ?? 1000));
  const out: Outcome = { done: new Set(), locked: [], failed: [], notes: [] };
  const { locked, failed, notes } = out;

  const versioned = await resolveVersioning(client, bucket, tuning.versioned ?? 'auto', notes);
  let targets: Target[];
  try {
    targets = versioned
      ? await versionTargets(client, bucket, folder, keys, notes)
      : unique([first, ...keys]).map((key) => ({ key }));
  } catch (e) {
    const error = `cannot list object versions under ${folder}: ${describeS3Error(e)}`;
    const all = unique([first, ...keys]).map((key) => ({ key, error }));
    return { deleted: [], locked, failed: all, skipped: [], versioned, notes };
  }

  const firstTargets = targets.filter((t) => t.key === first);
  const rest = targets.filter((t) => t.key !== first);
  for (const t of firstTargets) await deleteOne(client, bucket, t, out);
  if (out.done.size < firstTargets.length) {
    const skipped = unique(rest.map((t) => t.key));
    return { deleted: [], locked, failed, skipped, versioned, notes };
  }
  await deleteInBatches(client, bucket, rest, batchSize, out);

  // A key is deleted when every one of its targets is.
  const byKey = new Map<string, boolean>();
  for (const t of [...firstTargets, ...rest])
    byKey.set(t.key, (byKey.get(t.key) ?? true) && out.done.has(t));
  const deleted = [...byKey].filter(([, ok]) => ok).map(([k]) => k);
  return { deleted, locked, failed, skipped: [], versioned, notes };
}

/** Every version under `folder`, and the listed keys the version listing did not show. */
async function versionTargets(
  client: S3Sender,
  bucket: string,
  folder: string,
  keys: readonly string[],
  notes: string[],
): Promise<Target[]> {
  const listed = await listVersions(client, bucket, folder);
  const seen = new Set(listed.map((t) => t.key));
  const unseen = keys.filter((k) => !seen.has(k));
  if (unseen.length > 0)
    notes.push(
      `${unseen.length} object(s) were not in the version listing; deleted without a version id`,
    );
  return [...listed, ...unseen.map((key) => ({ key }))];
}

/** DeleteObjects batch by batch; one DeleteObject at a time once a store refuses batches. */
async function deleteInBatches(
  client: S3Sender,
  bucket: string,
  targets: readonly Target[],
  batchSize: number,
  out: Outcome,
): Promise<void> {
  let perObject = false;
  for (let i = 0; i < targets.length; i += batchSize) {
    const batch = targets.slice(i, i + batchSize);
    if (!perObject) {
      try {
        const res = (await client.send(
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
        await settleBatch(client, bucket, batch, res?.Errors ?? [], out);
        continue;
      } catch (e) {
        if (!isBatchUnsupported(e)) {
          const error = describeS3Error(e);
          for (const t of batch) out.failed.push({ ...t, error });
          continue;
        }
        perObject = true;
        out.notes.push(
          `DeleteObjects refused (${describeS3Error(e)}): deleting one object at a time`,
        );
      }
    }
    for (const t of batch) await deleteOne(client, bucket, t, out);
  }
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

async function deleteOne(client: S3Sender, bucket: string, t: Target, out: Outcome): Promise<void> {
  try {
    await client.send(
      new DeleteObjectCommand(
        t.versionId === undefined
          ? { Bucket: bucket, Key: t.key }
          : { Bucket: bucket, Key: t.key, VersionId: t.versionId },
      ),
    );
    out.done.add(t);
  } catch (e) {
    if (isLockRefusal(e)) out.locked.push(await lockInfo(client, bucket, t));
    else out.failed.push({ ...t, error: describeS3Error(e) });
  }
}

async function settleBatch(
  client: S3Sender,
  bucket: string,
  batch: readonly Target[],
  errors: NonNullable<DeleteObjectsCommandOutput['Errors']>,
  out: Outcome,
): Promise<void> {
  for (const t of batch) {
    const err =
      errors.find((x) => x.Key === t.key && x.VersionId === t.versionId) ??
      errors.find((x) => x.Key === t.key && x.VersionId === undefined);
    if (!err) {
      out.done.add(t);
      continue;
    }
    if (isLockRefusal(err)) out.locked.push(await lockInfo(client, bucket, t));
    else out.failed.push({ ...t, error: describeBatchEntry(err) });
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
