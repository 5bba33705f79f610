// Worker body for the "age in a worker thread" experiment: the JavaScript age
// implementation (age-encryption) runs here, off the main thread's event loop. A chunk
// is acknowledged when the encrypter pulls it, so the main thread's queue stays bounded.
import { parentPort, workerData } from 'node:worker_threads';
import { Encrypter } from 'age-encryption';

const queue = [];
let waiting = null;
parentPort.on('message', (m) => {
  queue.push(m);
  const w = waiting;
  waiting = null;
  w?.();
});
const input = new ReadableStream(
  {
    async pull(controller) {
      if (queue.length === 0) await new Promise((r) => (waiting = r));
      const m = queue.shift();
      if (m === null) controller.close();
      else {
        controller.enqueue(new Uint8Array(m));
        parentPort.postMessage({ ack: true });
      }
    },
  },
  { highWaterMark: 0 },
);
const e = new Encrypter();
for (const r of workerData.recipients) e.addRecipient(r);
const out = await e.encrypt(input);
for await (const chunk of out) parentPort.postMessage({ data: chunk }, [chunk.buffer]);
parentPort.postMessage({ end: true });
