import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type EncryptionSettings, encryptStream } from '../crypto/age.js';
import { DigestStream } from '../crypto/digest.js';
import { BackupFailed } from '../errors.js';
import type { ObjectEntry } from '../manifest/schema.js';
import type { Host } from '../report/host.js';
import {
  formatBytes,
  formatRate,
  progressTty,
  startProgress,
  type Total,
} from '../report/progress.js';
import type { Destination } from '../storage/destination.js';
import { chooseUploadShape } from '../storage/part-size.js';
import { type ReplicaResult, replicate } from '../storage/replicate.js';

/** What a stored object is: one of a backup's objects, or a WAL file (the `wal` command). */
export type StoredKind = ObjectEntry['kind'] | 'wal';

/** One object to store: where its bytes come from, and where they go. */
export interface StoreOptions<K extends StoredKind = ObjectEntry['kind']> {
  /** The plaintext. */
  readonly input: Readable;
  /** Settles when whatever writes `input` has finished; rejects when it failed. */
  readonly producers: Promise<void>;
  /** The object's key; its last part is its name in the manifest. */
  readonly key: string;
  readonly kind: K;
  readonly encryption: EncryptionSettings;
  /** The destinations to store it at (the others are already out of this backup). */
  readonly live: readonly Destination[];
  /** About how many bytes are coming (0 when unknown): sizes the upload's parts. */
  readonly expectedBytes: number;
  /** The stored (encrypted) bytes to come, for the progress line, when they can be told. */
  readonly total?: () => Total | null;
  readonly host: Host;
  /** Aborted on cancellation or a dropped tunnel: the uploads stop and nothing is stored. */
  readonly signal: AbortSignal;
  /** Stops the producers (the dump) when the uploads stop first. */
  readonly kill?: () => void;
}

/** An object stored at one destination at least: its manifest entry, and each destination's result. */
export interface Stored<K extends StoredKind = ObjectEntry['kind']> {
  readonly entry: Omit<ObjectEntry, 'kind'> & { readonly kind: K };
  readonly results: readonly ReplicaResult[];
}

/**
 * Encrypts the input and streams it to every live destination, hashing both sides on the
 * way. Throws BackupFailed when it is stored nowhere, the producers failed, or the run was
 * cancelled.
 */
export async function storeObject<K extends StoredKind>(o: StoreOptions<K>): Promise<Stored<K>> {
  const { host, signal, key, kind } = o;
  const kill = o.kill ?? (() => undefined);
  const name = key.slice(key.lastIndexOf('/') + 1);
  if (o.live.length === 0) throw new BackupFailed(`No destination is left to store ${name}.`, null);
  const plain = new DigestStream();
  const hashing = pipeline(o.input, plain);
  const encrypted = await encryptStream(o.encryption, plain);
  const cipher = new DigestStream();
  encrypted.pipe(cipher);
  encrypted.on('error', (e) => cipher.destroy(e));
  const gate = Promise.all([o.producers, hashing]);
  // Read by checkProducers once the uploads have settled: a producer failing before then
  // is no unhandled rejection.
  gate.catch(() => undefined);
  const rep = replicate(
    cipher,
    o.live,
    key,
    chooseUploadShape(o.expectedBytes),
    'application/octet-stream',
    gate,
  );
  const onAbort = () => {
    kill();
    rep.abort(new Error(reasonOf(signal)));
  };
  signal.addEventListener('abort', onAbort, { once: true });
  const progress = startProgress(
    host,
    {
      label: PRODUCER_LABEL[kind],
      // Acknowledged by the destination furthest on: bytes handed over but still in a part
      // being sent are not stored yet. One branch cannot run more than the parts in flight
      // ahead of the other (one stream feeds both), and a destination that fails stops
      // holding the others back, so the figure goes on.
      done: () => Math.max(0, ...o.live.map((d) => rep.uploadedBytes(d.settings.name))),
      total: o.total ?? (() => null),
      meters: [
        ...o.live.map((d) => ({
          label: d.settings.name,
          bytes: () => rep.uploadedBytes(d.settings.name),
        })),
        // What the producer has written so far: it moves before the first part is stored.
        { label: PRODUCED[kind], bytes: () => plain.bytes },
      ],
    },
    { tty: progressTty(host) },
  );
  const t0 = Date.now();
  let results: ReplicaResult[];
  try {
    results = await rep.results;
  } finally {
    progress.stop();
    signal.removeEventListener('abort', onAbort);
  }
  await checkProducers(gate, o, kill);
  const seconds = (Date.now() - t0) / 1000;
  reportResults(host, key, results, cipher.bytes);
  host.info(
    `${name}: ${formatBytes(plain.bytes)} plaintext → ${formatBytes(cipher.bytes)} encrypted in ${seconds.toFixed(1)} s`,
  );
  return {
    entry: {
      name,
      kind,
      plaintext: { bytes: plain.bytes, sha256: plain.sha256() },
      encrypted: { bytes: cipher.bytes, sha256: cipher.sha256() },
    },
    results,
  };
}

const PRODUCER_LABEL: Readonly<Record<StoredKind, string>> = {
  wal: 'WAL',
  database: 'dump',
  config: 'bundle',
  globals: 'globals',
  base: 'base backup',
};

const PRODUCED: Readonly<Record<StoredKind, string>> = {
  wal: 'received',
  database: 'dumped',
  config: 'bundled',
  globals: 'written',
  base: 'copied',
};

const PRODUCER_NAME: Readonly<Record<StoredKind, string>> = {
  wal: 'The WAL stream',
  database: 'The dump',
  config: 'The config bundle',
  globals: 'The globals',
  base: 'The base backup',
};

/** Throws when the run was cancelled or what wrote the input failed. */
async function checkProducers(
  gate: Promise<unknown>,
  o: StoreOptions<StoredKind>,
  kill: () => void,
): Promise<void> {
  const producerError = await gate.then(
    () => null,
    (e: unknown) => e as Error,
  );
  // A cancel (or a dropped tunnel) also kills the dump: name the cause, not its echo.
  if (o.signal.aborted)
    throw new BackupFailed(
      `${reasonOf(o.signal)}: uploads aborted, nothing was committed.`,
      idOf(o.key),
    );
  if (producerError) {
    kill();
    throw new BackupFailed(
      `${PRODUCER_NAME[o.kind]} failed: ${producerError.message}`,
      idOf(o.key),
    );
  }
}

/** Logs each destination's result; throws when the object is stored nowhere. */
function reportResults(
  host: Host,
  key: string,
  results: readonly ReplicaResult[],
  bytes: number,
): void {
  const name = key.slice(key.lastIndexOf('/') + 1);
  for (const r of results) {
    if (r.ok)
      host.info(
        `${r.destination}: ${name} stored, ${formatBytes(bytes)} in ${r.seconds.toFixed(1)} s (${formatRate(bytes, r.seconds)}${r.partsInFlight && r.partsInFlight > 2 ? `, up to ${r.partsInFlight} parts at once` : ''})`,
      );
    else host.warning(`${r.destination}: ${name} NOT stored: ${r.error}`);
  }
  if (results.every((r) => !r.ok)) {
    throw new BackupFailed(
      `${name} could not be stored anywhere: ${results.map((r) => `${r.destination}: ${r.error}`).join('; ')}`,
      idOf(key),
    );
  }
}

/** Why the run was stopped: a signal (SIGTERM…) or a dropped SSH tunnel. */
export function reasonOf(signal: AbortSignal): string {
  return signal.reason instanceof Error ? signal.reason.message : 'Cancelled';
}

function idOf(key: string): string | null {
  return /(\d{8}T\d{6}Z-[0-9a-f]{6})\//.exec(key)?.[1] ?? null;
}
