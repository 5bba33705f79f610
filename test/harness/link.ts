import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy that stands for a long network path in front of a local server: every byte
 * arrives `delayMs` after it was sent (one way), and each connection carries at most
 * `bytesPerSecond` in each direction — like a cloud region far from the runner, where one
 * TCP connection is limited by its round trip and the path, not by the servers.
 *
 * Each direction of a connection is a queue: a chunk is serialised at the connection's
 * rate after the chunks before it, then delivered `delayMs` later. A new connection's
 * first bytes wait one round trip more (the TCP handshake). The sender is paused while
 * more than `windowBytes` are on the way (TCP's window), so memory stays bounded.
 */
export interface LinkOptions {
  /** One-way delay in milliseconds. */
  readonly delayMs: number;
  /** Per-connection, per-direction rate cap in bytes per second (0 = none). */
  readonly bytesPerSecond: number;
  /** Bytes in flight per direction before the sender is paused; default 4 MiB. */
  readonly windowBytes?: number;
}

export interface Link {
  /** `http://127.0.0.1:<port>`: the proxied endpoint. */
  readonly endpoint: string;
  readonly port: number;
  /** Connections opened through the link so far. */
  connections(): number;
  close(): Promise<void>;
}

interface Pending {
  readonly at: number;
  readonly chunk: Buffer;
}

/** Pipes `from` into `to` through the delay and rate of `o`, starting no earlier than `start`. */
function shape(from: Socket, to: Socket, o: LinkOptions, start: number): void {
  const window = o.windowBytes ?? 4 * 1024 * 1024;
  const queue: Pending[] = [];
  let queued = 0;
  let sentAt = start;
  let timer: NodeJS.Timeout | null = null;
  let ended = false;
  const flush = () => {
    timer = null;
    const now = Date.now();
    while (queue.length > 0 && (queue[0] as Pending).at <= now) {
      const p = queue.shift() as Pending;
      queued -= p.chunk.length;
      to.write(p.chunk);
    }
    if (queued < window && from.isPaused()) from.resume();
    if (queue.length > 0) arm();
    else if (ended) to.end();
  };
  const arm = () => {
    if (timer || queue.length === 0) return;
    timer = setTimeout(flush, Math.max(0, (queue[0] as Pending).at - Date.now()));
  };
  from.on('data', (chunk: Buffer) => {
    const now = Date.now();
    const serialised = o.bytesPerSecond > 0 ? (chunk.length / o.bytesPerSecond) * 1000 : 0;
    sentAt = Math.max(sentAt, now) + serialised;
    queue.push({ at: sentAt + o.delayMs, chunk });
    queued += chunk.length;
    if (queued >= window) from.pause();
    arm();
  });
  from.on('end', () => {
    ended = true;
    if (queue.length === 0) to.end();
  });
}

/** Starts a link in front of `127.0.0.1:<upstreamPort>` on a free loopback port. */
export async function startLink(upstreamPort: number, o: LinkOptions): Promise<Link> {
  const sockets = new Set<Socket>();
  let opened = 0;
  const server: Server = createServer((client) => {
    opened++;
    const upstream = connect(upstreamPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    const handshake = Date.now() + 2 * o.delayMs;
    shape(client, upstream, o, handshake);
    shape(upstream, client, o, handshake);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('link: no port');
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    port: address.port,
    connections: () => opened,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
