// The "age in a worker thread" experiment: a Transform whose encryption runs in a worker
// (scripts/bench/age-worker.mjs) with at most `inFlight` chunks queued to it.
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';

export function workerAgeEncrypt(recipients: readonly string[], inFlight = 8): Transform {
  const worker = new Worker(new URL('./age-worker.mjs', import.meta.url), {
    workerData: { recipients: [...recipients] },
  });
  let queued = 0;
  let resume: (() => void) | null = null;
  let finish: (() => void) | null = null;
  let failed: Error | null = null;
  const t: Transform = new Transform({
    highWaterMark: 1024 * 1024,
    transform(chunk: Buffer, _e, cb: TransformCallback) {
      if (failed) return cb(failed);
      const copy = new Uint8Array(chunk.length);
      copy.set(chunk);
      queued++;
      worker.postMessage(copy.buffer, [copy.buffer]);
      if (queued < inFlight) cb();
      else resume = () => cb();
    },
    flush(cb: TransformCallback) {
      finish = () => cb(failed);
      worker.postMessage(null);
    },
  });
  worker.on('message', (m: { ack?: true; data?: Uint8Array; end?: true }) => {
    if (m.ack) {
      queued--;
      const r = resume;
      resume = null;
      r?.();
    } else if (m.data) t.push(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
    else if (m.end) {
      void worker.terminate();
      finish?.();
    }
  });
  worker.on('error', (e) => {
    failed = e;
    t.destroy(e);
  });
  return t;
}
