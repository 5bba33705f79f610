import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { mapLimit } from '../concurrency.js';
import { type TrustedSigner, verifySignature } from '../crypto/sshsig.js';
import { UserError } from '../errors.js';
import type { Destination } from '../storage/destination.js';
import { BACKUP_ID, backupIdTime, MANIFEST_NAME, SIGNATURE_SUFFIX } from './id.js';
import { type Manifest, parseManifest } from './schema.js';
import { parseVerification, type Verification } from './verification.js';

/** One backup folder as found at one destination. */
export interface BackupAtDestination {
  readonly id: string;
  readonly destination: string;
  /** Parsed manifest; null when absent (incomplete) or unreadable (then `problem` says why). */
  readonly manifest: Manifest | null;
  /** Sizes of the objects present, by file name (the manifest excluded). */
  readonly objects: ReadonlyMap<string, number>;
  /** Verification record keys, oldest first. */
  readonly verificationKeys: readonly string[];
  /** Keys of the signatures beside verification records (`<record>.json.sig`). */
  readonly verificationSignatures: ReadonlySet<string>;
  /** Why the backup is not complete here, when it is not. */
  readonly problem: string | null;
  /** A manifest object exists (readable or not): the backup was committed once. */
  readonly hasManifest: boolean;
  /** The id is dated more than {@link FUTURE_TOLERANCE_MS} after now: not pg-dr's, ignored. */
  readonly future: boolean;
  /** With trusted-signers: the manifest's signature is missing or does not verify. */
  readonly untrusted: boolean;
  /** SHA-256 of the manifest's bytes, when it was read: the copies at two destinations must agree. */
  readonly manifestSha256: string | null;
}

/** Said once by every command that chooses or deletes backups without trusted-signers. */
export const UNAUTHENTICATED =
  "Backups are not authenticated: anyone holding a bucket key could plant one that looks complete. Set 'trusted-signers' here and 'signing-key' on the backup job (docs/keys.md).";

/**
 * Reads in flight per destination while scanning (manifests, signatures, verification
 * records). 2,000 small GETs from one s3rver took 5.0 s one at a time, 2.9 s with 4 in
 * flight, 2.5 s with 16 and 2.6 s with 32: 16 is where more stopped paying locally, and a
 * real cloud's round trips (tens of ms) gain more from it. Each read holds one manifest
 * (a few kB, or ~1 MB with 10,000 tables' row counts) until it is parsed and hashed, so 16
 * bounds that memory too. `npm run bench:catalog` measures the commands (BENCHMARKS.md).
 */
export const READ_CONCURRENCY = 16;

/** How far ahead of this machine's clock an id or a record may be dated (clock skew). */
export const FUTURE_TOLERANCE_MS = 10 * 60 * 1000;

function isFuture(time: Date, now: Date): boolean {
  return time.getTime() > now.getTime() + FUTURE_TOLERANCE_MS;
}

/**
 * The most pg-dr reads of a manifest: one with 10,000 tables' row counts is ~1 MB. The
 * bucket is not trusted: a planted object of gigabytes must make its backup unreadable,
 * not exhaust the runner's memory (READ_CONCURRENCY reads run at once).
 */
export const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;
/** The most pg-dr reads of a signature or a verification record (a few hundred bytes each). */
export const MAX_RECORD_BYTES = 1024 * 1024;

/** The stream's bytes; stops reading and fails once it passes `max`. */
export async function readBytes(stream: Readable, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of stream) {
    const chunk = Buffer.from(c as Buffer);
    size += chunk.length;
    if (size > max) {
      stream.destroy();
      throw new Error(`larger than ${max} bytes: not an object pg-dr wrote`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** The signature of `key`'s exact bytes, checked against the trusted keys. */
export async function signatureOf(
  dest: Destination,
  key: string,
  body: Buffer,
  present: boolean,
  trusted: readonly TrustedSigner[],
): Promise<string | null> {
  if (!present)
    return `no signature (${key.slice(key.lastIndexOf('/') + 1)}${SIGNATURE_SUFFIX} is missing)`;
  const check = verifySignature(
    (await readBytes(await dest.get(`${key}${SIGNATURE_SUFFIX}`), MAX_RECORD_BYTES)).toString(
      'utf8',
    ),
    body,
    trusted,
  );
  return check.ok ? null : check.why;
}

/**
 * Every backup folder under `prefix` at one destination, newest first. A backup is
 * complete when its manifest parses and every object it lists is present with its size.
 */
export async function scanDestination(
  dest: Destination,
  prefix: string,
  now: Date = new Date(),
  trusted: readonly TrustedSigner[] | null = null,
  concurrency: number = READ_CONCURRENCY,
): Promise<BackupAtDestination[]> {
  const folders = await listFolders(dest, prefix);
  // Folders sorted newest first before reading, so the order never depends on which read
  // finished first; each read keeps its manifest's bytes only until they are hashed.
  const ids = newestFirst(folders.keys());
  return mapLimit(ids, concurrency, (id) =>
    readFolder(dest, prefix, id, folders.get(id) as ListedFolder, now, trusted),
  );
}

function newestFirst(ids: Iterable<string>): string[] {
  return [...ids].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
}

/**
 * The newest complete backup at one destination, read cheaply: one listing, then the
 * manifests of the newest committed folders only, newest first, until one is complete (at
 * most `maxReads`). Null when there is no complete backup here; undefined when the newest
 * `maxReads` are all incomplete and older ones were not read. For an alert that names the
 * last good backup without reading every manifest as {@link scanDestination} does.
 */
export async function newestCompleteAt(
  dest: Destination,
  prefix: string,
  now: Date,
  trusted: readonly TrustedSigner[] | null,
  maxReads = 3,
): Promise<BackupAtDestination | null | undefined> {
  const folders = await listFolders(dest, prefix);
  const committed = newestFirst(folders.keys()).filter((id) => folders.get(id)?.manifest);
  for (const id of committed.slice(0, maxReads)) {
    const b = await readFolder(dest, prefix, id, folders.get(id) as ListedFolder, now, trusted);
    if (b.problem === null) return b;
  }
  return committed.length > maxReads ? undefined : null;
}

/** A database as its backups' manifests name it: its name and its cluster's system identifier. */
export interface DatabaseIdentity {
  readonly name: string;
  readonly systemIdentifier: string | null;
}

/** What a backup finds under its prefix, among the newest backups there. */
export interface PrefixNeighbours {
  /**
   * The newest complete backup of the same database: from the same cluster when one was
   * read, else from another cluster (a database moved to a new server); null when none.
   */
  readonly previous: Manifest | null;
  /**
   * Complete backups of another database, or of the same name from another cluster, newer
   * than `previous` (all of them read when there is none): a prefix two set-ups write to.
   */
  readonly others: readonly Manifest[];
}

const sameCluster = (m: Manifest, db: DatabaseIdentity) =>
  db.systemIdentifier === null ||
  m.database.systemIdentifier == null ||
  m.database.systemIdentifier === db.systemIdentifier;

/**
 * The previous backup of `db` and its neighbours, read cheaply: one listing, then the
 * manifests of the newest `maxReads` committed folders (except `exclude`, the backup in
 * flight), newest first.
 */
export async function prefixNeighbours(
  dest: Destination,
  prefix: string,
  db: DatabaseIdentity,
  opts: {
    readonly now: Date;
    readonly trusted: readonly TrustedSigner[] | null;
    readonly exclude?: string;
    readonly maxReads?: number;
  },
): Promise<PrefixNeighbours> {
  const folders = await listFolders(dest, prefix);
  const committed = newestFirst(folders.keys())
    .filter((id) => id !== opts.exclude && folders.get(id)?.manifest)
    .slice(0, opts.maxReads ?? 10);
  // Two at a time: this runs beside a dump, and a planted manifest may be MAX_MANIFEST_BYTES.
  const read = await mapLimit(committed, 2, (id) =>
    readFolder(dest, prefix, id, folders.get(id) as ListedFolder, opts.now, opts.trusted),
  );
  const manifests = read.flatMap((b) => (b.problem === null && b.manifest ? [b.manifest] : []));
  const named = manifests.filter((m) => m.database.name === db.name);
  const previous = named.find((m) => sameCluster(m, db)) ?? named[0] ?? null;
  const others = manifests.filter(
    (m) =>
      (previous === null || m.id > previous.id) &&
      (m.database.name !== db.name || !sameCluster(m, db)),
  );
  return { previous, others };
}

/** Every backup folder's objects under `prefix`, by id, from one listing. */
async function listFolders(dest: Destination, prefix: string): Promise<Map<string, ListedFolder>> {
  const folders = new Map<string, ListedFolder>();
  for await (const o of dest.list(prefix)) {
    const rest = o.key.slice(prefix.length);
    const slash = rest.indexOf('/');
    if (slash < 0) continue;
    const id = rest.slice(0, slash);
    if (!BACKUP_ID.test(id)) continue;
    const name = rest.slice(slash + 1);
    let f = folders.get(id);
    if (!f) {
      f = { objects: new Map(), verifications: [], signatures: new Set(), manifest: false };
      folders.set(id, f);
    }
    if (name === MANIFEST_NAME) f.manifest = true;
    else if (name.startsWith('verifications/') && name.endsWith('.json'))
      f.verifications.push(o.key);
    else {
      // Signatures and anything else: listed (a prune removes them with the backup).
      if (name.startsWith('verifications/')) f.signatures.add(o.key);
      f.objects.set(name, o.size);
    }
  }
  return folders;
}

/** One folder's listing: what `scanDestination` knows before reading anything. */
interface ListedFolder {
  objects: Map<string, number>;
  verifications: string[];
  signatures: Set<string>;
  manifest: boolean;
}

/** Reads one folder's manifest (and signature) and judges the backup at this destination. */
async function readFolder(
  dest: Destination,
  prefix: string,
  id: string,
  f: ListedFolder,
  now: Date,
  trusted: readonly TrustedSigner[] | null,
): Promise<BackupAtDestination> {
  let manifest: Manifest | null = null;
  let problem: string | null = null;
  let untrusted = false;
  let manifestSha256: string | null = null;
  const future = isFuture(backupIdTime(id), now);
  if (future)
    problem = `dated in the future (${backupIdTime(id).toISOString()}): ignored — not written by pg-dr on a correct clock`;
  else if (!f.manifest)
    problem = 'no manifest (incomplete: never committed, or a backup in flight)';
  else {
    try {
      const key = `${prefix}${id}/${MANIFEST_NAME}`;
      const raw = await readBytes(await dest.get(key), MAX_MANIFEST_BYTES);
      const why = trusted
        ? await signatureOf(
            dest,
            key,
            raw,
            f.objects.has(`${MANIFEST_NAME}${SIGNATURE_SUFFIX}`),
            trusted,
          )
        : null;
      if (why !== null) {
        untrusted = true;
        throw new Error(`untrusted: ${why}`);
      }
      manifest = parseManifest(raw.toString('utf8'));
      manifestSha256 = createHash('sha256').update(raw).digest('hex');
      if (manifest.id !== id) problem = `manifest names another backup (${manifest.id})`;
      for (const o of manifest.objects) {
        const size = f.objects.get(o.name);
        if (size === undefined) problem = `${o.name} is missing`;
        else if (size !== o.encrypted.bytes)
          problem = `${o.name} has ${size} bytes, the manifest says ${o.encrypted.bytes}`;
      }
    } catch (e) {
      const message = (e as Error).message.split('\n')[0] ?? '';
      problem = untrusted ? message : `manifest unreadable: ${message}`;
      manifest = null;
    }
  }
  return {
    id,
    destination: dest.settings.name,
    manifest,
    objects: f.objects,
    verificationKeys: f.verifications.sort(),
    verificationSignatures: f.signatures,
    problem,
    hasManifest: f.manifest,
    future,
    untrusted,
    manifestSha256,
  };
}

/**
 * {@link latestVerification} of each complete backup in `entries` (null for the others), in
 * the same order, with at most `concurrency` backups' records read at once.
 */
export function completeVerifications(
  dest: Destination,
  entries: readonly BackupAtDestination[],
  now: Date = new Date(),
  trusted: readonly TrustedSigner[] | null = null,
  concurrency: number = READ_CONCURRENCY,
): Promise<(Verification | null)[]> {
  return mapLimit(entries, concurrency, (b) =>
    b.problem === null ? latestVerification(dest, b, now, trusted) : Promise.resolve(null),
  );
}

/**
 * The newest verification record of a backup at a destination, or null. A record dated in
 * the future (by its name or its `startedAt`) is ignored: a planted one must not silence an
 * alert or hold a backup back from pruning.
 */
export async function latestVerification(
  dest: Destination,
  entry: BackupAtDestination,
  now: Date = new Date(),
  trusted: readonly TrustedSigner[] | null = null,
): Promise<Verification | null> {
  for (const key of [...entry.verificationKeys].reverse()) {
    const stamp = /(\d{8}T\d{6})\d*Z\.json$/.exec(key)?.[1];
    if (stamp && isFuture(backupIdTime(`${stamp}Z-000000`), now)) continue;
    try {
      const raw = await readBytes(await dest.get(key), MAX_RECORD_BYTES);
      if (
        trusted &&
        (await signatureOf(
          dest,
          key,
          raw,
          entry.verificationSignatures.has(`${key}${SIGNATURE_SUFFIX}`),
          trusted,
        )) !== null
      )
        continue;
      const v = parseVerification(raw.toString('utf8'));
      if (isFuture(new Date(v.startedAt), now)) continue;
      return v;
    } catch {
      // An unreadable record (overwritten?) must not hide the older ones behind it.
    }
  }
  return null;
}

/** A backup across destinations. */
export interface CatalogEntry {
  readonly id: string;
  /** The manifest, from the first destination where the backup is complete. */
  readonly manifest: Manifest | null;
  /** Per destination, in configured order. */
  readonly at: readonly BackupAtDestination[];
  /** Names of the destinations where it is complete. */
  readonly completeAt: readonly string[];
}

/** Merges the scans of several destinations, newest first. */
export function mergeScans(scans: readonly (readonly BackupAtDestination[])[]): CatalogEntry[] {
  // Grouped by id in one pass (destination order kept): 2,000 ids × 4,000 entries filtered
  // once per id cost a third of a second.
  const byId = new Map<string, BackupAtDestination[]>();
  for (const s of scans)
    for (const b of s) {
      const group = byId.get(b.id);
      if (group) group.push(b);
      else byId.set(b.id, [b]);
    }
  return [...byId.keys()]
    .sort()
    .reverse()
    .map((id) => {
      let at = byId.get(id) ?? [];
      let complete = at.filter((b) => b.problem === null && b.manifest);
      // pg-dr writes the same manifest bytes everywhere: copies that differ mean one was
      // rewritten. Neither is trusted to be the backup until a person has looked.
      const disagreement = manifestDisagreement(complete);
      if (disagreement) {
        at = at.map((b) => (complete.includes(b) ? { ...b, problem: disagreement } : b));
        complete = [];
      }
      return {
        id,
        manifest: complete[0]?.manifest ?? null,
        at,
        completeAt: complete.map((b) => b.destination),
      };
    });
}

/** Why the complete copies of one backup disagree, or null when their manifests are the same bytes. */
export function manifestDisagreement(copies: readonly BackupAtDestination[]): string | null {
  const hashes = new Set(copies.map((c) => c.manifestSha256));
  if (hashes.size <= 1) return null;
  return `the destinations hold different manifests for this backup (${copies.map((c) => `${c.destination} ${c.manifestSha256?.slice(0, 12)}`).join(', ')}): one was rewritten; compare them with the run's audit artifact`;
}

/** Scans every destination; one that cannot be listed is reported, not fatal. */
export async function scanAll(
  destinations: readonly Destination[],
  prefix: string,
  now: Date = new Date(),
  trusted: readonly TrustedSigner[] | null = null,
): Promise<{ entries: CatalogEntry[]; unreachable: Map<string, string> }> {
  const unreachable = new Map<string, string>();
  const scans = await Promise.all(
    destinations.map((d) =>
      scanDestination(d, prefix, now, trusted).catch((e: unknown) => {
        unreachable.set(d.settings.name, d.describeError(e));
        return [] as BackupAtDestination[];
      }),
    ),
  );
  return { entries: mergeScans(scans), unreachable };
}

/** Why a selector found nothing, for the error a person reads. */
export class NoSuchBackup extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'NoSuchBackup';
  }
}

/**
 * The backups a selector names: `latest` = the newest complete one; `recent` = every
 * complete one of the 7 days before `now`; an id = that one, which must be complete
 * somewhere (else the error says what is wrong with it at each destination).
 */
export function pickBackups(
  entries: readonly CatalogEntry[],
  selector: 'latest' | 'recent' | { readonly id: string },
  now: Date,
): CatalogEntry[] {
  const complete = entries.filter((e) => e.completeAt.length > 0);
  if (selector === 'latest') {
    const newest = complete[0];
    if (!newest) throw new NoSuchBackup('No complete backup was found at any destination.');
    return [newest];
  }
  if (selector === 'recent') {
    const since = now.getTime() - 7 * 24 * 3600 * 1000;
    const recent = complete.filter((e) => backupIdTime(e.id).getTime() >= since);
    if (recent.length === 0)
      throw new NoSuchBackup('No complete backup of the last 7 days was found.');
    return recent;
  }
  const entry = entries.find((e) => e.id === selector.id);
  if (!entry)
    throw new NoSuchBackup(
      `Backup ${selector.id} does not exist at any destination (check 'backup-id' and 'prefix').`,
    );
  if (entry.completeAt.length === 0)
    throw new NoSuchBackup(
      `Backup ${selector.id} is incomplete everywhere: ${entry.at.map((a) => `${a.destination}: ${a.problem}`).join('; ')}.`,
    );
  return [entry];
}

/** One database whose backups a prefix holds: its name and newest complete backup. */
export interface HeldDatabase {
  readonly name: string;
  readonly newest: string;
  readonly complete: number;
}

/** The databases the complete backups in `entries` are of, the most recently backed up first. */
export function databasesHeld(entries: readonly CatalogEntry[]): HeldDatabase[] {
  const held = new Map<string, { newest: string; complete: number }>();
  for (const e of entries) {
    if (e.completeAt.length === 0 || !e.manifest) continue;
    const name = e.manifest.database.name;
    const h = held.get(name);
    // `entries` is newest first: the first seen is the newest.
    if (h) h.complete++;
    else held.set(name, { newest: e.id, complete: 1 });
  }
  return [...held]
    .map(([name, h]) => ({ name, ...h }))
    .sort((a, b) => (a.newest < b.newest ? 1 : a.newest > b.newest ? -1 : 0));
}

/** `"app" (newest 20261130T020000Z-…, 14 complete), "billing" (…)`: for messages. */
export function describeHeld(held: readonly HeldDatabase[]): string {
  return held
    .map((h) => `${JSON.stringify(h.name)} (newest ${h.newest}, ${h.complete} complete)`)
    .join(', ');
}

/**
 * The entries of one database: its complete backups, and every incomplete one (which has
 * no database to tell). Throws when the prefix holds no complete backup of it.
 */
export function ofDatabase(entries: readonly CatalogEntry[], name: string): CatalogEntry[] {
  const held = databasesHeld(entries);
  if (held.length > 0 && !held.some((h) => h.name === name))
    throw new NoSuchBackup(
      `No complete backup of the database ${JSON.stringify(name)} was found ('source-database'). The prefix holds backups of: ${describeHeld(held)}.`,
    );
  return entries.filter(
    (e) => e.completeAt.length === 0 || !e.manifest || e.manifest.database.name === name,
  );
}
