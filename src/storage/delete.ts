/**
 * Removing a folder's objects for good (`Destination.purge`): what is asked and what is
 * reported. How it is done is each destination's business (`s3/delete.ts` for S3).
 */

export interface PurgeRequest {
  /** Ends with `/`; nothing outside it is ever deleted. */
  readonly folder: string;
  /** Deleted alone, before anything else; when it cannot be, nothing else is attempted. */
  readonly first: string;
  /** The other objects (the listing as the caller saw it); `first` may be among them. */
  readonly keys: readonly string[];
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
  /** Keys gone entirely (every version, when versioned), `first` first. */
  readonly deleted: string[];
  /** Versions object lock kept: report as "kept: locked until …", not as a failure. */
  readonly locked: LockedObject[];
  readonly failed: FailedObject[];
  /** Keys not attempted because `first` could not be deleted. */
  readonly skipped: string[];
  /** Whether versions were deleted one by one (versioned bucket). */
  readonly versioned: boolean;
  /** Things worth a log line: fallbacks taken, listing quirks. */
  readonly notes: string[];
}

/** Throws when a purge would reach outside its folder (a caller's bug, never a store's answer). */
export function checkPurgeRequest(r: PurgeRequest): void {
  if (r.folder === '' || !r.folder.endsWith('/'))
    throw new Error(`not a folder: ${JSON.stringify(r.folder)}`);
  for (const k of [r.first, ...r.keys])
    if (!k.startsWith(r.folder) || k === r.folder)
      throw new Error(`${k} is not an object under ${r.folder}`);
}

/** `kept: locked until 2027-01-01T00:00:00.000Z`, for reports. */
export function describeLock(l: LockedObject): string {
  if (l.until) return `kept: locked until ${l.until}`;
  if (l.legalHold) return 'kept: locked (legal hold)';
  return 'kept: locked (object lock)';
}
