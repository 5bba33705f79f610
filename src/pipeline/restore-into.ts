import { PassThrough } from 'node:stream';
import type { DecryptionSettings } from '../crypto/age.js';
import { type Manifest, type ObjectEntry, rowCountMismatches } from '../manifest/schema.js';
import { type Globals, parseGlobalsScript } from '../postgres/globals.js';
import {
  beginRebuild,
  checkRebuild,
  type Rebuild,
  type ServerAccess,
  type ServerFacts,
} from '../postgres/rebuild.js';
import { startRestore } from '../postgres/restore.js';
import { countRows } from '../postgres/snapshot.js';
import type { Destination } from '../storage/destination.js';
import { type ReadBackResult, readBack } from './readback.js';

export interface RestoreIntoOptions {
  readonly destination: Destination;
  /** `<prefix><id>/`. */
  readonly folder: string;
  readonly manifest: Manifest;
  readonly decryption: DecryptionSettings;
  readonly server: ServerAccess;
  readonly facts: ServerFacts;
  /** The new database to create and restore into. */
  readonly name: string;
  readonly pgRestore: string;
  /** The input that names the server, for messages. */
  readonly input: string;
  readonly signal?: AbortSignal;
  readonly env?: NodeJS.ProcessEnv;
  readonly log: (line: string) => void;
  readonly onBytes?: (n: number) => void;
}

export type RestoreInto =
  | {
      readonly ok: true;
      readonly rebuild: Rebuild;
      readonly globals: Globals | null;
      readonly read: ReadBackResult;
    }
  | { readonly ok: false; readonly read: ReadBackResult };

/**
 * One attempt from one destination: reads the globals, creates the roles and a new database
 * (`name`), and streams the archive into it. On failure nothing it created is left.
 */
export async function restoreInto(o: RestoreIntoOptions): Promise<RestoreInto> {
  const entry = o.manifest.objects.find((x) => x.kind === 'globals');
  let globals: Globals | null = null;
  if (entry) {
    const g = await readObjectText(o, entry);
    if (!g.ok) return { ok: false, read: g.read };
    try {
      globals = parseGlobalsScript(g.text);
    } catch (e) {
      return {
        ok: false,
        read: {
          ok: false,
          failure: 'consumer',
          error: `${o.folder}${entry.name}: unreadable: ${(e as Error).message}`,
          encrypted: g.read.encrypted,
          plaintext: g.read.plaintext,
        },
      };
    }
  }
  checkRebuild(globals, o.facts, o.input);
  const db = o.manifest.objects.find((x) => x.kind === 'database');
  if (!db) throw new Error(`Backup ${o.manifest.id} has no database object.`);
  const rebuild = await beginRebuild({
    server: o.server,
    facts: o.facts,
    globals,
    name: o.name,
    log: o.log,
  });
  const run = startRestore(o.pgRestore, o.server.target(o.name), rebuild.flags);
  let read: ReadBackResult;
  try {
    read = await readBack({
      destination: o.destination,
      key: `${o.folder}${db.name}`,
      encrypted: db.encrypted,
      decrypt: {
        settings: o.decryption,
        plaintext: db.plaintext,
        compression: o.manifest.database.compression,
        sink: { stdin: run.stdin, done: run.done, abort: () => run.abort(), mayStopEarly: false },
      },
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.env ? { env: o.env } : {}),
      ...(o.onBytes ? { onBytes: o.onBytes } : {}),
    });
  } catch (e) {
    await run.abort();
    await rebuild.discard().catch(() => undefined);
    throw e;
  }
  if (!read.ok) {
    await rebuild.discard();
    return { ok: false, read };
  }
  return { ok: true, rebuild, globals, read };
}

/** A small object (the globals), read back, checked and decrypted into memory. */
async function readObjectText(
  o: RestoreIntoOptions,
  entry: ObjectEntry,
): Promise<{ ok: boolean; text: string; read: ReadBackResult }> {
  const into = new PassThrough();
  const chunks: Buffer[] = [];
  into.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((resolve, reject) => {
    into.on('end', resolve);
    into.on('error', reject);
  });
  ended.catch(() => undefined);
  const read = await readBack({
    destination: o.destination,
    key: `${o.folder}${entry.name}`,
    encrypted: entry.encrypted,
    decrypt: {
      settings: o.decryption,
      plaintext: entry.plaintext,
      compression: null,
      sink: {
        stdin: into,
        done: ended,
        abort: async () => {
          into.destroy(new Error('stopped'));
        },
        mayStopEarly: false,
      },
    },
    ...(o.signal ? { signal: o.signal } : {}),
  });
  return { ok: read.ok, text: read.ok ? Buffer.concat(chunks).toString('utf8') : '', read };
}

export interface RowCheck {
  readonly tables: number;
  readonly mismatches: readonly { table: string; expected: number; actual: number | null }[];
  readonly rowCounts: 'compared' | 'not compared (estimated in the manifest)' | 'not recorded';
}

/** Every table's row count in `database`, compared with the manifest's exact counts. */
export async function compareRowCounts(
  server: ServerAccess,
  database: string,
  manifest: Manifest,
): Promise<RowCheck> {
  const session = await server.open(database);
  try {
    const counts = await countRows(session, 'exact');
    const method = manifest.database.rowCounts.method;
    if (method !== 'exact')
      return {
        tables: counts.length,
        mismatches: [],
        rowCounts: method === 'off' ? 'not recorded' : 'not compared (estimated in the manifest)',
      };
    return {
      tables: counts.length,
      mismatches: rowCountMismatches(manifest, counts),
      rowCounts: 'compared',
    };
  } finally {
    await session.close();
  }
}
