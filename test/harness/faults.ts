/**
 * A fault-injecting proxy on 127.0.0.1 in front of one TCP service (PostgreSQL, an sshd)
 * or one S3-compatible HTTP server (s3rver), with the fault switched at run time.
 *
 * Two layers:
 * - TCP (both kinds): `pass`, `refuse` (accept and reset at once), `cut` (after N bytes
 *   client→server, server→client or in total, every connection is reset; later ones are
 *   refused or passed), `stall` (hold every byte, at once or after N bytes, until the fault
 *   changes) and `throttle` (a shared bytes-per-second budget). Bytes are counted across all
 *   connections from the moment the fault is set.
 * - HTTP (`startHttpFaultProxy` only), between the TCP layer and the target: answer
 *   matching requests with 500/501/503 for the next N requests or a time span, and two
 *   provider profiles — `b2` rejects any request carrying `x-amz-checksum-*`,
 *   `x-amz-sdk-checksum-algorithm` or `x-amz-checksum-mode` (as Backblaze B2 does) and `r2`
 *   rejects a CompleteMultipartUpload whose non-final parts differ in size (as Cloudflare
 *   R2 does) — plus `noBatchDelete`: `DeleteObjects` answered 501 NotImplemented.
 *   Requests are parsed by node:http (keep-alive, chunked bodies, `Expect: 100-continue`)
 *   and forwarded one by one with node:http.request, bodies piped.
 */
import {
  Agent,
  createServer as createHttpServer,
  type Server as HttpServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { createServer as createNetServer, type Server as NetServer, Socket } from 'node:net';

/** `up`: client → server; `down`: server → client; `total`: both. */
export type Direction = 'up' | 'down' | 'total';

export type Fault =
  /** Forward everything. */
  | { readonly kind: 'pass' }
  /** Accept each connection and reset it at once (a dead service behind a live port). */
  | { readonly kind: 'refuse' }
  /**
   * Forward `afterBytes` bytes (counted in `direction`, default `total`), then reset every
   * open connection; later connections are refused (`then: 'refuse'`, the default) or
   * passed (`then: 'pass'`: a blip).
   */
  | {
      readonly kind: 'cut';
      readonly afterBytes: number;
      readonly direction?: Direction;
      readonly then?: 'refuse' | 'pass';
    }
  /**
   * Hold every byte in both directions (connections stay open), at once or once
   * `afterBytes` bytes went through in `direction`. Held bytes flow again when the fault
   * is changed.
   */
  | { readonly kind: 'stall'; readonly afterBytes?: number; readonly direction?: Direction }
  /** Forward at most `bytesPerSecond` (shared by every connection) in `direction`. */
  | { readonly kind: 'throttle'; readonly bytesPerSecond: number; readonly direction?: Direction };

export interface ProxyStats {
  /** Connections accepted since start. */
  readonly connections: number;
  /** Connections open now. */
  readonly open: number;
  /** Bytes forwarded client → server since start. */
  readonly up: number;
  /** Bytes forwarded server → client since start. */
  readonly down: number;
}

export interface FaultProxy {
  readonly host: string;
  readonly port: number;
  /** The fault in force. */
  readonly fault: Fault;
  /** Switches the fault; byte counters of the `afterBytes` triggers start again from 0. */
  set(fault: Fault): void;
  /** Whether the current fault's `afterBytes` trigger has fired. */
  readonly tripped: boolean;
  /** Resolves when the current fault's trigger fires; rejects after `timeoutMs`. */
  whenTripped(timeoutMs?: number): Promise<void>;
  stats(): ProxyStats;
  /** Resets every open connection now (the fault stays as it is). */
  dropConnections(): void;
  /** Closes the listener and every connection. Idempotent. */
  stop(): Promise<void>;
}

export interface Target {
  readonly host?: string;
  readonly port: number;
}

export interface StartFaultProxyOptions {
  readonly target: Target;
  /** Initial fault; default `pass`. */
  readonly fault?: Fault;
}

const PASS: Fault = { kind: 'pass' };

function counts(dir: Direction, d: 'up' | 'down'): boolean {
  return dir === 'total' || dir === d;
}

function reset(s: Socket): void {
  if (s.destroyed) return;
  if (typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
  else s.destroy();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A TCP proxy in front of `target` whose behaviour is the fault set on it. */
export async function startFaultProxy(opts: StartFaultProxyOptions): Promise<FaultProxy> {
  const targetHost = opts.target.host ?? '127.0.0.1';
  let fault: Fault = opts.fault ?? PASS;
  /** Bytes counted towards the current fault's trigger. */
  let counted = { up: 0, down: 0 };
  let tripped = false;
  /** Set once a cut has fired: how later connections are treated. */
  let afterCut: 'refuse' | 'pass' | null = null;
  let throttleNext = 0;
  let changed = deferred();
  let trip = deferred();
  const totals = { connections: 0, up: 0, down: 0 };
  const open = new Set<Socket>();

  const notify = () => {
    const old = changed;
    changed = deferred();
    old.resolve();
  };
  const fire = () => {
    tripped = true;
    trip.resolve();
  };

  /** How much of a chunk going `d` may pass now: all, some (then the trigger fires), or none. */
  const allowance = (d: 'up' | 'down', length: number): number => {
    if (fault.kind !== 'cut' && fault.kind !== 'stall') return length;
    if (tripped) return 0;
    const after = fault.afterBytes;
    if (after === undefined) return 0;
    const dir = fault.direction ?? 'total';
    if (!counts(dir, d)) return length;
    const used = dir === 'total' ? counted.up + counted.down : counted[d];
    return Math.max(0, Math.min(length, after - used));
  };

  const cutAll = () => {
    fire();
    afterCut = fault.kind === 'cut' ? (fault.then ?? 'refuse') : null;
    for (const s of [...open]) reset(s);
  };

  /** Forwards `from` to `to`, one chunk at a time, applying the fault. */
  const pump = (from: Socket, to: Socket, d: 'up' | 'down') => {
    const write = async (chunk: Buffer) => {
      if (to.destroyed) return;
      counted[d] += chunk.length;
      totals[d] += chunk.length;
      if (!to.write(chunk))
        await new Promise<void>((resolve) => {
          const done = () => {
            to.off('drain', done);
            to.off('close', done);
            resolve();
          };
          to.on('drain', done);
          to.on('close', done);
        });
    };
    const handle = async (input: Buffer) => {
      let chunk = input;
      while (chunk.length > 0 && !from.destroyed && !to.destroyed) {
        const f = fault;
        if (f.kind === 'refuse' || (afterCut === 'refuse' && f.kind === 'cut')) {
          reset(from);
          reset(to);
          return;
        }
        if (f.kind === 'throttle') {
          if (!counts(f.direction ?? 'total', d)) {
            await write(chunk);
            return;
          }
          const piece = chunk.subarray(0, Math.max(1, Math.floor(f.bytesPerSecond / 10)));
          const now = Date.now();
          const at = Math.max(now, throttleNext);
          throttleNext = at + (piece.length / f.bytesPerSecond) * 1000;
          if (at > now) await sleep(at - now);
          await write(piece);
          chunk = chunk.subarray(piece.length);
          continue;
        }
        if (f.kind === 'pass' || (f.kind === 'cut' && afterCut === 'pass')) {
          await write(chunk);
          return;
        }
        const n = allowance(d, chunk.length);
        if (n > 0) {
          await write(chunk.subarray(0, n));
          chunk = chunk.subarray(n);
        }
        if (chunk.length === 0 && !(f.afterBytes !== undefined && allowance(d, 1) === 0)) return;
        // The trigger is reached (or a stall holds everything).
        if (f.kind === 'cut') {
          cutAll();
          return;
        }
        if (f.afterBytes !== undefined && !tripped) fire();
        if (chunk.length === 0) return;
        await changed.promise;
      }
    };
    from.on('data', (chunk: Buffer) => {
      from.pause();
      handle(chunk).then(
        () => {
          if (!from.destroyed) from.resume();
        },
        () => {
          reset(from);
          reset(to);
        },
      );
    });
    from.on('end', () => {
      if (!to.destroyed) to.end();
    });
    from.on('error', () => reset(to));
    from.on('close', (hadError: boolean) => {
      if (hadError) reset(to);
      else if (!to.destroyed && !to.writableEnded) to.end();
    });
  };

  const server: NetServer = createNetServer((client) => {
    totals.connections++;
    open.add(client);
    client.on('close', () => open.delete(client));
    client.on('error', () => undefined);
    if (fault.kind === 'refuse' || (fault.kind === 'cut' && afterCut === 'refuse')) {
      reset(client);
      return;
    }
    const upstream = new Socket();
    open.add(upstream);
    upstream.on('close', () => open.delete(upstream));
    upstream.on('error', () => reset(client));
    client.pause();
    upstream.connect(opts.target.port, targetHost, () => client.resume());
    pump(client, upstream, 'up');
    pump(upstream, client, 'down');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fault proxy: no port');

  let stopping: Promise<void> | undefined;
  return {
    host: '127.0.0.1',
    port: address.port,
    get fault() {
      return fault;
    },
    set(next) {
      fault = next;
      counted = { up: 0, down: 0 };
      tripped = false;
      afterCut = null;
      throttleNext = 0;
      trip = deferred();
      notify();
    },
    get tripped() {
      return tripped;
    },
    whenTripped(timeoutMs = 60_000) {
      const t = trip;
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`fault proxy: not tripped within ${timeoutMs} ms`)),
          timeoutMs,
        );
        t.promise.then(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
    stats: () => ({ ...totals, open: open.size }),
    dropConnections() {
      for (const s of [...open]) reset(s);
    },
    stop() {
      stopping ??= new Promise<void>((resolve) => {
        for (const s of [...open]) reset(s);
        notify();
        server.close(() => resolve());
      });
      return stopping;
    },
  };
}

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
}

function deferred(): Deferred {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

// ---------------------------------------------------------------------------------------
// HTTP (S3) faults

/** Answer matching requests with an error instead of forwarding them. */
export interface RequestFailure {
  /** 500 (InternalError), 501 (NotImplemented) or 503 (SlowDown), or any other status. */
  readonly status: number;
  /** The next `count` matching requests (default: no limit). */
  readonly count?: number;
  /**
   * For this long from the first matching request (default: no limit), so a window is not
   * used up by whatever ran before the requests it is meant for.
   */
  readonly forMs?: number;
  /** Tested against `METHOD /path?query`, e.g. `/^PUT /`, `/[?&]uploadId=/`; default all. */
  readonly match?: RegExp;
}

export type S3Profile = 'b2' | 'r2' | null;

export interface RecordedHttpRequest {
  readonly method: string;
  /** Path and query as sent. */
  readonly url: string;
  /** Header names, lower case. */
  readonly headers: readonly string[];
  /** Status answered (0 when the connection broke first). */
  status: number;
  /** Why the proxy answered itself (`b2`, `r2`, `no-batch-delete`, `failure 503`), else null. */
  injected: string | null;
  /** Request body bytes forwarded. */
  bodyBytes: number;
}

export interface HttpFaultProxy extends FaultProxy {
  /** `http://127.0.0.1:<port>`, the endpoint to give an S3 client. */
  readonly endpoint: string;
  readonly profile: S3Profile;
  setProfile(profile: S3Profile): void;
  /** DeleteObjects (`POST /<bucket>?delete`) answered 501 NotImplemented. */
  noBatchDelete: boolean;
  failRequests(rule: RequestFailure): void;
  clearFailures(): void;
  /** Every request seen, in order. */
  readonly requests: RecordedHttpRequest[];
}

export interface StartHttpFaultProxyOptions extends StartFaultProxyOptions {
  readonly profile?: S3Profile;
  readonly noBatchDelete?: boolean;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'expect',
  'te',
  'trailer',
  'upgrade',
]);

const S3_ERROR_CODES: Readonly<Record<number, string>> = {
  400: 'InvalidArgument',
  403: 'AccessDenied',
  500: 'InternalError',
  501: 'NotImplemented',
  503: 'SlowDown',
};

/** The header B2 would refuse, if any. */
function b2Refusal(headers: IncomingHttpHeaders): string | null {
  for (const [name, value] of Object.entries(headers)) {
    if (
      name.startsWith('x-amz-checksum-') ||
      name === 'x-amz-sdk-checksum-algorithm' ||
      name === 'x-amz-checksum-mode'
    )
      return name;
    if (name === 'x-amz-trailer' && /x-amz-checksum-/i.test(String(value))) return name;
  }
  return null;
}

function queryOf(url: string): URLSearchParams {
  const q = url.indexOf('?');
  return new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * An HTTP-aware fault proxy in front of an S3-compatible server: the TCP faults of
 * `startFaultProxy` on its port, and request-level faults and provider profiles behind them.
 */
export async function startHttpFaultProxy(
  opts: StartHttpFaultProxyOptions,
): Promise<HttpFaultProxy> {
  const targetHost = opts.target.host ?? '127.0.0.1';
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const requests: RecordedHttpRequest[] = [];
  let profile: S3Profile = opts.profile ?? null;
  const rules: { rule: RequestFailure; remaining: number; until: number | null }[] = [];
  /** R2: size of each stored part, per upload id. */
  const parts = new Map<string, Map<number, number>>();
  const state = { noBatchDelete: opts.noBatchDelete ?? false };

  const answer = (
    req: IncomingMessage,
    res: ServerResponse,
    rec: RecordedHttpRequest,
    status: number,
    code: string,
    message: string,
    expectContinue: boolean,
  ) => {
    rec.status = status;
    const body =
      req.method === 'HEAD'
        ? ''
        : `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message><RequestId>fault-proxy</RequestId></Error>`;
    const send = (close: boolean) => {
      if (res.destroyed) return;
      res.writeHead(status, {
        'content-type': 'application/xml',
        'content-length': Buffer.byteLength(body),
        'x-amz-request-id': 'fault-proxy',
        ...(close ? { connection: 'close' } : {}),
      });
      res.end(body);
    };
    if (expectContinue) {
      // The client waits for 100 Continue: a final answer instead means "do not send it".
      send(true);
      return;
    }
    // Read the body away first, so the connection stays usable (keep-alive).
    if (req.complete) send(false);
    else {
      req.on('end', () => send(false));
      req.on('error', () => res.destroy());
      req.resume();
    }
  };

  const matchingRule = (line: string): RequestFailure | null => {
    const now = Date.now();
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i] as (typeof rules)[number];
      if (r.remaining <= 0 || (r.until !== null && now >= r.until)) {
        rules.splice(i--, 1);
        continue;
      }
      if (r.rule.match && !r.rule.match.test(line)) continue;
      r.remaining--;
      if (r.until === null && r.rule.forMs !== undefined) r.until = now + r.rule.forMs;
      return r.rule;
    }
    return null;
  };

  const forward = (
    req: IncomingMessage,
    res: ServerResponse,
    rec: RecordedHttpRequest,
    body: Buffer | null,
    onStored?: (bytes: number) => void,
  ) => {
    const headers: IncomingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
    if (body) {
      delete headers['transfer-encoding'];
      headers['content-length'] = String(body.length);
    }
    const up = httpRequest({
      host: targetHost,
      port: opts.target.port,
      method: req.method,
      path: req.url,
      headers,
      agent,
    });
    let bytes = 0;
    up.on('response', (ur: IncomingMessage) => {
      rec.status = ur.statusCode ?? 0;
      if (ur.statusCode === 200) onStored?.(bytes);
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(ur.headers))
        if (v !== undefined && !HOP_BY_HOP.has(k) && k !== 'transfer-encoding') out[k] = v;
      res.writeHead(ur.statusCode ?? 502, ur.statusMessage, out);
      ur.pipe(res);
      ur.on('error', () => res.destroy());
    });
    up.on('error', () => {
      if (!res.headersSent) {
        rec.status = 502;
        res.writeHead(502, { connection: 'close' });
        res.end();
      } else res.destroy();
    });
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    if (body) {
      rec.bodyBytes = body.length;
      bytes = body.length;
      up.end(body);
      return;
    }
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      rec.bodyBytes = bytes;
    });
    req.on('aborted', () => up.destroy());
    req.on('error', () => up.destroy());
    req.pipe(up);
  };

  const handle = (req: IncomingMessage, res: ServerResponse, expectContinue: boolean) => {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const rec: RecordedHttpRequest = {
      method,
      url,
      headers: Object.keys(req.headers),
      status: 0,
      injected: null,
      bodyBytes: 0,
    };
    requests.push(rec);
    const fail = (why: string, status: number, code: string, message: string) => {
      rec.injected = why;
      answer(req, res, rec, status, code, message, expectContinue);
    };

    const rule = matchingRule(`${method} ${url}`);
    if (rule) {
      const code = S3_ERROR_CODES[rule.status] ?? 'InternalError';
      fail(`failure ${rule.status}`, rule.status, code, `Injected by the fault proxy (${code}).`);
      return;
    }
    if (profile === 'b2') {
      const header = b2Refusal(req.headers);
      if (header) {
        fail(
          'b2',
          400,
          'InvalidArgument',
          `Unsupported header '${header}' received for this API call.`,
        );
        return;
      }
    }
    const q = queryOf(url);
    if (state.noBatchDelete && method === 'POST' && q.has('delete')) {
      fail('no-batch-delete', 501, 'NotImplemented', 'DeleteObjects is not implemented.');
      return;
    }
    if (expectContinue) res.writeContinue();
    const uploadId = q.get('uploadId');
    if (uploadId !== null && method === 'PUT' && q.has('partNumber')) {
      const n = Number(q.get('partNumber'));
      forward(req, res, rec, null, (bytes) => {
        const sizes = parts.get(uploadId) ?? new Map<number, number>();
        sizes.set(n, bytes);
        parts.set(uploadId, sizes);
      });
      return;
    }
    if (profile === 'r2' && uploadId !== null && method === 'POST') {
      // CompleteMultipartUpload: every part but the last must have the same size.
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('error', () => res.destroy());
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const numbers = [...body.toString('utf8').matchAll(/<PartNumber>(\d+)<\/PartNumber>/g)]
          .map((m) => Number(m[1]))
          .sort((a, b) => a - b);
        const sizes = parts.get(uploadId) ?? new Map<number, number>();
        const nonFinal = numbers.slice(0, -1).map((p) => sizes.get(p));
        if (nonFinal.some((s) => s === undefined || s !== nonFinal[0])) {
          rec.injected = 'r2';
          rec.status = 400;
          const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidPart</Code><Message>All non-trailing parts must have the same length.</Message></Error>`;
          res.writeHead(400, {
            'content-type': 'application/xml',
            'content-length': Buffer.byteLength(xml),
          });
          res.end(xml);
          return;
        }
        forward(req, res, rec, body);
      });
      return;
    }
    forward(req, res, rec, null);
  };

  const http: HttpServer = createHttpServer({ keepAliveTimeout: 30_000 }, (req, res) =>
    handle(req, res, false),
  );
  http.on('checkContinue', (req, res) => handle(req, res, true));
  http.on('clientError', (_e, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(0, '127.0.0.1', () => resolve());
  });
  const inner = http.address();
  if (inner === null || typeof inner === 'string') throw new Error('fault proxy: no port');
  const tcp = await startFaultProxy({
    target: { host: '127.0.0.1', port: inner.port },
    ...(opts.fault ? { fault: opts.fault } : {}),
  });

  let stopping: Promise<void> | undefined;
  return {
    host: tcp.host,
    port: tcp.port,
    endpoint: `http://127.0.0.1:${tcp.port}`,
    get fault() {
      return tcp.fault;
    },
    set: (f) => tcp.set(f),
    get tripped() {
      return tcp.tripped;
    },
    whenTripped: (ms) => tcp.whenTripped(ms),
    stats: () => tcp.stats(),
    dropConnections: () => tcp.dropConnections(),
    get profile() {
      return profile;
    },
    setProfile(p) {
      profile = p;
    },
    get noBatchDelete() {
      return state.noBatchDelete;
    },
    set noBatchDelete(v: boolean) {
      state.noBatchDelete = v;
    },
    failRequests(rule) {
      rules.push({
        rule,
        remaining: rule.count ?? Number.POSITIVE_INFINITY,
        until: null,
      });
    },
    clearFailures() {
      rules.length = 0;
    },
    requests,
    stop() {
      stopping ??= (async () => {
        await tcp.stop();
        http.closeAllConnections();
        await new Promise<void>((resolve) => http.close(() => resolve()));
        agent.destroy();
      })();
      return stopping;
    },
  };
}
