/**
 * Deleting one whole backup from one destination: its manifest first (from then on the
 * backup no longer counts as complete), then everything else in its folder, for good.
 * The backup-aware part; how a store deletes is `Destination.purge`'s business.
 */
import type { DeleteReport } from '../storage/delete.js';
import type { Destination } from '../storage/destination.js';
import { BACKUP_ID, MANIFEST_NAME } from './id.js';

/** The backup folder of a manifest key, checked: deleting must never reach past one backup. */
export function backupFolderOf(manifestKey: string): string {
  const suffix = `/${MANIFEST_NAME}`;
  const folder = manifestKey.endsWith(suffix) ? manifestKey.slice(0, -MANIFEST_NAME.length) : '';
  const id = folder.slice(0, -1).split('/').at(-1) ?? '';
  if (!BACKUP_ID.test(id))
    throw new Error(`not a backup manifest key: ${JSON.stringify(manifestKey)}`);
  return folder;
}

/**
 * Deletes the backup whose manifest is `manifestKey`: the manifest, then `keys` (its other
 * objects, as a catalog scan listed them: the manifest apart), every version of each.
 * Per-object problems are in the report; only a key outside the backup's folder throws.
 */
export async function deleteBackup(
  dest: Pick<Destination, 'purge'>,
  manifestKey: string,
  keys: readonly string[],
): Promise<DeleteReport> {
  const folder = backupFolderOf(manifestKey);
  for (const k of keys)
    if (!k.startsWith(folder) || k === folder)
      throw new Error(`${k} is not an object of the backup in ${folder}`);
  return dest.purge({ folder, first: manifestKey, keys });
}
