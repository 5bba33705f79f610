/**
 * `check`'s destination rows: the bucket reachable with the keys given, then a probe object
 * written the way a backup writes (the same upload path, content type and multipart shape:
 * two parts), read back and compared byte for byte, and purged (every version: B2 keeps
 * them) — nothing is left behind. The probe lives under `<prefix>pg-dr-check/`, a folder no
 * backup id can match, so `list`, `prune`, `monitor` and `restore latest` never see it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Destination, FailureDiagnosis } from '../storage/destination.js';
import { MIN_PART_SIZE, type UploadShape } from '../storage/part-size.js';
import { type CheckRow, fail, ok, skipped, warn, within } from './row.js';

/** The folder under the prefix that holds probes (never a backup id: see manifest/id.ts). */
export const PROBE_FOLDER = 'pg-dr-check/';

/** Just over one part: CreateMultipartUpload, two UploadParts and Complete are all exercised. */
export const PROBE_BYTES = MIN_PART_SIZE + 1024;

/** Parts of the smallest size S3 takes, two in flight: a backup's shape, at the smallest size. */
const PROBE_SHAPE: UploadShape = { partSize: MIN_PART_SIZE, queueSize: 2, maxInFlight: 2 };

/** How long one destination's two rows may take in all. */
export const DESTINATION_BOUND_MS = 90_000;

type Provider = 'b2' | 'r2' | 's3';

function providerOf(endpoint: string): Provider {
  const host = new URL(endpoint).hostname;
  if (host.endsWith('.backblazeb2.com')) return 'b2';
  if (host.endsWith('.r2.cloudflarestorage.com')) return 'r2';
  return 's3';
}

/** The permission an operation needs, in the words of the store's own key settings. */
function permissionFor(operation: string | null, provider: Provider): string {
  const op = operation ?? '';
  const b2 = /^(Put|CreateMultipart|UploadPart|CompleteMultipart|AbortMultipart)/.test(op)
    ? 'writeFiles'
    : /^Get/.test(op)
      ? 'readFiles'
      : /^Delete/.test(op)
        ? 'deleteFiles'
        : 'listFiles';
  if (provider === 'b2')
    return `the application key's capability ${b2} (pg-dr needs listFiles, readFiles, writeFiles and deleteFiles on this bucket)`;
  if (provider === 'r2')
    return 'an R2 API token with "Object Read & Write" on this bucket (a read-only token cannot write or delete)';
  const s3 = {
    writeFiles: 's3:PutObject',
    readFiles: 's3:GetObject',
    deleteFiles: 's3:DeleteObject and s3:DeleteObjectVersion',
    listFiles: 's3:ListBucket (and s3:ListBucketVersions)',
  }[b2];
  return `the permission ${s3} on this bucket`;
}

/** What to change, for a failure of `d` diagnosed as `why`. */
export function fixFor(d: Destination, why: FailureDiagnosis): string {
  const { role, bucket, endpoint } = d.settings;
  const host = new URL(endpoint).host;
  const provider = providerOf(endpoint);
  const keyId =
    provider === 'b2'
      ? "the application key's keyID"
      : provider === 'r2'
        ? "the API token's Access Key ID"
        : 'the access key id';
  switch (why.kind) {
    case 'unknown-key':
      return `${host} does not know this key id: set '${role}-access-key-id' to ${keyId} (and '${role}-secret-access-key' to its secret).`;
    case 'bad-signature':
      return `The secret does not match the key id: check '${role}-secret-access-key' (the secret shown once when the key was made) and '${role}-region' (${provider === 'b2' ? 'B2: the region in the endpoint, e.g. us-west-004' : provider === 'r2' ? 'R2: auto' : "the bucket's region"}).`;
    case 'no-bucket':
      return `Create the bucket "${bucket}" at ${host}, or set '${role}-bucket' to an existing bucket (and '${role}-endpoint' to the region it lives in).`;
    case 'denied':
      return `The key may not ${why.operation ?? 'do this'} on "${bucket}": give it ${permissionFor(why.operation, provider)}, or use a key restricted to this bucket that has it.`;
    case 'wrong-endpoint':
      return `The bucket lives at another endpoint or region: set '${role}-endpoint' (and '${role}-region') to the bucket's own${provider === 'b2' ? ', e.g. https://s3.us-west-004.backblazeb2.com' : ''}.`;
    case 'unreachable':
      return `Check '${role}-endpoint' (${host}): ${provider === 'r2' ? 'R2: https://<account id>.r2.cloudflarestorage.com' : 'B2: https://s3.<region>.backblazeb2.com; R2: https://<account id>.r2.cloudflarestorage.com'} — and that the runner can reach it.`;
    default:
      return `See the store's answer above; check the '${role}-*' inputs.`;
  }
}

/** `ListObjectsV2 failed: AccessDenied (HTTP 403)` — never a secret (describeError). */
function failedDetail(d: Destination, e: unknown): { detail: string; why: FailureDiagnosis } {
  const why = d.diagnose(e);
  return { detail: `${why.operation ?? 'request'} failed: ${d.describeError(e)}`, why };
}

/** The two rows of one destination. */
export async function checkDestination(d: Destination, prefix: string): Promise<CheckRow[]> {
  const { name, bucket, endpoint } = d.settings;
  const reach = `${name}: bucket "${bucket}" at ${new URL(endpoint).host}`;
  const probe = `${name}: write, read and delete a ${PROBE_BYTES.toLocaleString('en-US')}-byte probe (2 parts)`;
  const root = `${prefix}${PROBE_FOLDER}`;
  let reached: CheckRow | null = null;
  try {
    return await within(DESTINATION_BOUND_MS, async (stop) => {
      let leftovers = 0;
      const t0 = Date.now();
      try {
        for await (const _ of d.list(root)) leftovers++;
      } catch (e) {
        const { detail, why } = failedDetail(d, e);
        return [
          fail(reach, detail, fixFor(d, why)),
          skipped(probe, 'not tried: the bucket cannot be listed'),
        ];
      }
      reached = ok(
        reach,
        `reachable, credentials accepted, bucket listed in ${Date.now() - t0} ms${leftovers ? `; ${leftovers} probe object(s) left by an interrupted check (ignored by list, prune and monitor)` : ''}`,
      );
      return [reached, await probeRoundTrip(d, root, probe, stop)];
    });
  } catch (e) {
    // The time bound: a store that stopped answering.
    const fix = fixFor(d, { kind: 'unreachable', operation: null });
    const why = (e as Error).message;
    return reached
      ? [reached, fail(probe, why, fix)]
      : [fail(reach, why, fix), skipped(probe, 'not tried: the bucket cannot be listed')];
  }
}

/** Write (multipart), read back and compare, purge, confirm gone: one row. */
async function probeRoundTrip(
  d: Destination,
  root: string,
  check: string,
  stop: AbortSignal,
): Promise<CheckRow> {
  const stamp = new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const folder = `${root}${stamp}-${randomBytes(3).toString('hex')}/`;
  const key = `${folder}probe.bin`;
  const data = randomBytes(PROBE_BYTES);
  const sent = createHash('sha256').update(data).digest('hex');
  const t0 = Date.now();
  const upload = d.upload(key, Readable.from([data]), PROBE_SHAPE, 'application/octet-stream');
  const onStop = () => void upload.abort();
  stop.addEventListener('abort', onStop, { once: true });
  try {
    await upload.done;
  } catch (e) {
    const { detail, why } = failedDetail(d, e);
    return fail(check, `write: ${detail}`, fixFor(d, why));
  } finally {
    stop.removeEventListener('abort', onStop);
  }
  const wrote = Date.now() - t0;
  const read = await readBack(d, key, sent);
  const removed = await purge(d, folder, key);
  const times = `written in ${wrote} ms, read back and compared (SHA-256)`;
  if (read) return fail(check, read.detail, read.fix);
  if (removed?.state === 'fail') return fail(check, `${times}; ${removed.detail}`, removed.fix);
  if (removed) return warn(check, `${times}; ${removed.detail}`, removed.fix);
  return ok(check, `${times}, deleted (every version) and gone`);
}

/** What went wrong in one step of the probe. */
interface Problem {
  readonly state: 'fail' | 'warn';
  readonly detail: string;
  readonly fix: string;
}

const problem = (state: Problem['state'], detail: string, fix: string): Problem => ({
  state,
  detail,
  fix,
});

/** null when the bytes read are the bytes written; else what differs. */
async function readBack(d: Destination, key: string, sent: string): Promise<Problem | null> {
  try {
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of await d.get(key)) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    const got = hash.digest('hex');
    if (got === sent && size === PROBE_BYTES) return null;
    return problem(
      'fail',
      `read back ${size} bytes with SHA-256 ${got.slice(0, 12)}…, written ${PROBE_BYTES} bytes with ${sent.slice(0, 12)}…`,
      'The store returned other bytes than were written: check the endpoint is the store itself (no proxy rewriting bodies).',
    );
  } catch (e) {
    const { detail, why } = failedDetail(d, e);
    return problem('fail', `read: ${detail}`, fixFor(d, why));
  }
}

/** Purges the probe's folder the way a backup's delete does, then confirms it is gone (null). */
async function purge(d: Destination, folder: string, key: string): Promise<Problem | null> {
  try {
    const report = await d.purge({ folder, first: key, keys: [key] });
    const [lock] = report.locked;
    if (lock)
      return problem(
        'warn',
        `the probe is kept by object lock${lock.until ? ` until ${lock.until}` : ''} (${folder}; ignored by list, prune and monitor)`,
        'Nothing to fix for backups; prune cannot delete locked backups before their retention ends either.',
      );
    const [failed] = report.failed;
    if (failed)
      return problem(
        'fail',
        `delete failed: ${failed.error}`,
        fixFor(d, { kind: 'denied', operation: 'DeleteObject' }),
      );
  } catch (e) {
    const { detail, why } = failedDetail(d, e);
    return problem('fail', `delete: ${detail}`, fixFor(d, why));
  }
  try {
    for await (const o of d.list(folder))
      return problem(
        'fail',
        `${o.key} is still listed after the delete`,
        'Check the bucket for a lifecycle or replication rule that restores deleted files.',
      );
    await d.get(key).then((s) => s.destroy());
    return problem(
      'fail',
      'the probe can still be read after the delete',
      'Check the bucket for a lifecycle or versioning rule that keeps deleted files readable.',
    );
  } catch (e) {
    if (d.isNotFound(e)) return null;
    const { detail, why } = failedDetail(d, e);
    return problem('fail', `confirming the delete: ${detail}`, fixFor(d, why));
  }
}
