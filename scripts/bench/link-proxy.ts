// A long network path in front of local servers, in its own process so that its timers do
// not share an event loop with the S3 servers it stands in front of.
//   node --import tsx scripts/bench/link-proxy.ts <one-way ms> <MB/s per connection> <port>...
// Prints one JSON line {"endpoints": [...]} once listening; exits when stdin closes.
import { startLink } from '../../test/harness/link.js';

const [delay, rate, ...ports] = process.argv.slice(2).map(Number);
if (!Number.isFinite(delay) || !Number.isFinite(rate) || ports.length === 0)
  throw new Error('usage: link-proxy.ts <one-way ms> <MB/s per connection> <port>...');
const links = await Promise.all(
  ports.map((p) =>
    startLink(p, { delayMs: delay as number, bytesPerSecond: (rate as number) * 1e6 }),
  ),
);
process.stdout.write(`${JSON.stringify({ endpoints: links.map((l) => l.endpoint) })}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
