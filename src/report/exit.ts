import type { Writable } from 'node:stream';

/**
 * Ends the process with `code` once what was written to stdout and stderr has reached the
 * OS. `process.exit` alone does not wait for a pipe: `pg-dr list --format json | jq` lost
 * all but the first 64–128 KiB of a large report. Exiting at once (rather than letting the
 * event loop drain) keeps stray sockets from holding a finished command alive.
 */
export function exitWhenFlushed(
  code: number,
  streams: readonly Writable[] = [process.stdout, process.stderr],
): void {
  let pending = streams.length;
  const done = () => {
    pending -= 1;
    if (pending === 0) process.exit(code);
  };
  if (pending === 0) process.exit(code);
  // A write's callback runs after every earlier write on that stream has been handed over.
  for (const s of streams) s.write('', done);
}
