import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Destination } from './destination.js';
import { FanOut } from './fanout.js';
import type { UploadShape } from './part-size.js';

/** How one object fared at one destination. */
export interface ReplicaResult {
  readonly destination: string;
  readonly ok: boolean;
  readonly etag: string | null;
  readonly error: string | null;
  readonly seconds: number;
  /** The most parts that were in flight at once, when the destination fits them to the link. */
  readonly partsInFlight: number | null;
}

export interface Replication {
  /** Bytes handed to the uploads so far. */
  sentBytes(): number;
  /** Bytes acknowledged per destination so far. */
  uploadedBytes(destination: string): number;
  /** Settles when every upload has; never rejects — failures are in the results. */
  readonly results: Promise<ReplicaResult[]>;
  /** Stops everything: uploads aborted, the input destroyed. */
  abort(reason: Error): void;
}

/**
 * Streams `input` to every destination at once — the same bytes, read once — as
 * `key`. The uploads complete only if `gate` resolves (the producers succeeded); a
 * destination that fails is dropped while the others go on.
 */
export function replicate(
  input: Readable,
  destinations: readonly Destination[],
  key: string,
  shape: UploadShape,
  contentType: string,
  gate: Promise<unknown>,
): Replication {
  const fan = new FanOut(destinations.map((d) => d.settings.name));
  let sent = 0;
  input.on('data', (c: Buffer) => {
    sent += c.length;
  });
  fan.endAfter(gate);
  const flowing = pipeline(input, fan).catch((e: unknown) => e as Error);
  const uploads = destinations.map((d, i) => {
    const started = Date.now();
    const branch = fan.branches[i];
    if (!branch) throw new Error('fan-out branch missing');
    const up = d.upload(key, branch.stream, shape, contentType);
    const result = up.done.then(
      ({ etag, partsInFlight }): ReplicaResult => ({
        destination: d.settings.name,
        ok: true,
        etag,
        error: null,
        seconds: (Date.now() - started) / 1000,
        partsInFlight: partsInFlight ?? null,
      }),
      async (e: unknown): Promise<ReplicaResult> => {
        const reason = branch.failure ?? new Error(d.describeError(e));
        fan.drop(d.settings.name, reason);
        await up.abort();
        return {
          destination: d.settings.name,
          ok: false,
          etag: null,
          error: branch.failure ? branch.failure.message : d.describeError(e),
          seconds: (Date.now() - started) / 1000,
          partsInFlight: null,
        };
      },
    );
    return { up, result };
  });
  const results = (async () => {
    const flowError = await flowing;
    const rs = await Promise.all(uploads.map((u) => u.result));
    // The input failed (the producer died): nothing may count as stored.
    if (flowError instanceof Error) {
      return rs.map((r) => (r.ok ? { ...r, ok: false, error: flowError.message } : r));
    }
    return rs;
  })();
  return {
    sentBytes: () => sent,
    uploadedBytes: (name) =>
      uploads[destinations.findIndex((d) => d.settings.name === name)]?.up.uploadedBytes() ?? 0,
    results,
    abort(reason) {
      fan.destroy(reason);
      input.destroy(reason);
      // Parts already in flight are stopped too, not left to finish (GitHub's cancel grace is short).
      for (const u of uploads) void u.up.abort();
    },
  };
}
