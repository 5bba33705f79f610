import { createServer, type Server, type Socket } from 'node:net';
import type { ClientChannel, ConnectConfig, ServerHostKeyAlgorithm } from 'ssh2';
import { UserError } from '../errors.js';
import {
  blobKeyType,
  entriesFor,
  fingerprint,
  hostKeyMatches,
  type KnownHost,
  knownHostsName,
  parseKnownHosts,
} from './known-hosts.js';
import { type ClientKey, parseClientKey } from './private-key.js';
import type { SshSettings } from './settings.js';
import ssh2 from './ssh2.js';

export type { HostKeyVerdict, HostPattern, KnownHost } from './known-hosts.js';
export { fingerprint, hostKeyMatches, knownHostsName, parseKnownHosts } from './known-hosts.js';
export { parseClientKey } from './private-key.js';

/** An open SSH tunnel: a local port that reaches the database through the bastion. */
export interface Tunnel {
  /** 127.0.0.1 port that forwards to the database as the bastion resolves it. */
  readonly localPort: number;
  /** Rejects (never resolves) when the SSH connection drops while the tunnel is open; use to fail a running backup. */
  readonly dropped: Promise<never>;
  /** Closes the listener, every forwarded connection, and the SSH connection. Idempotent. */
  close(): Promise<void>;
}

export type TunnelErrorKind = 'unreachable' | 'auth' | 'host-key' | 'forward' | 'dropped';

/** Why a tunnel could not be opened, or why it broke. Messages never hold the private key. */
export class TunnelError extends UserError {
  constructor(
    readonly kind: TunnelErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TunnelError';
  }
}

export interface OpenTunnelOptions {
  /** Budget for each setup step (TCP + SSH handshake + auth, then the probe); default 20 s. */
  readonly readyTimeoutMs?: number;
  /** Aborts the setup (the promise rejects with the signal's reason). */
  readonly signal?: AbortSignal;
  /** Told about a forwarded connection the bastion refused while the tunnel is open. */
  readonly log?: (line: string) => void;
}

const DEFAULT_READY_TIMEOUT_MS = 20_000;
/** A dead bastion is noticed after about KEEPALIVE_INTERVAL_MS × (KEEPALIVE_COUNT_MAX + 1). */
const KEEPALIVE_INTERVAL_MS = 10_000;
const KEEPALIVE_COUNT_MAX = 3;
/** How long close() waits for the bastion to acknowledge the disconnect before dropping it. */
const CLOSE_GRACE_MS = 2_000;

/**
 * ssh2's default host key algorithms, in its order of preference, less `ssh-rsa`: an RSA
 * host key is accepted only with SHA-2 signatures (rsa-sha2-*), never SHA-1, as OpenSSH
 * has done since 8.8.
 */
const HOST_KEY_ALGORITHMS: readonly ServerHostKeyAlgorithm[] = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
];

/**
 * Host key algorithms with the ones pinned for this host first (as OpenSSH orders them),
 * so a bastion with several host keys presents the one ssh-known-hosts holds.
 */
function hostKeyAlgorithms(pinned: readonly KnownHost[]): ServerHostKeyAlgorithm[] {
  const wanted = new Set<string>();
  for (const e of pinned) {
    if (e.revoked) continue;
    if (e.keyType === 'ssh-rsa') for (const a of ['rsa-sha2-512', 'rsa-sha2-256']) wanted.add(a);
    wanted.add(e.keyType);
  }
  const first = HOST_KEY_ALGORITHMS.filter((a) => wanted.has(a));
  return [...first, ...HOST_KEY_ALGORITHMS.filter((a) => !wanted.has(a))];
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** ssh2 marks where an error came from: `client-socket`, `client-authentication`, … */
function levelOf(err: unknown): string | undefined {
  const level = (err as { level?: unknown } | null)?.level;
  return typeof level === 'string' ? level : undefined;
}

/** RFC 4254 §5.1 reason codes of a refused channel open. */
const OPEN_FAILURE_REASONS: Readonly<Record<number, string>> = {
  1: 'administratively prohibited: the bastion does not allow this forwarding (AllowTcpForwarding, PermitOpen)',
  2: 'connect failed',
  3: 'unknown channel type',
  4: 'resource shortage',
};

/**
 * Text of an SSH channel-open failure: `(SSH) Channel open failure: Connection refused`
 * → `Connection refused`; OpenSSH's bare "open failed" gets the reason code spelled out.
 */
function channelFailure(err: unknown): string {
  const description = messageOf(err).replace(/^\(SSH\)\s*Channel open failure:\s*/i, '');
  const code = (err as { reason?: unknown } | null)?.reason;
  const reason = typeof code === 'number' ? OPEN_FAILURE_REASONS[code] : undefined;
  // Code 2 comes with the connect error itself ("Connection refused", "No route to host").
  if (reason === undefined || (code === 2 && description !== '')) return description || 'refused';
  return description === '' || /^open failed$/i.test(description)
    ? reason
    : `${description} (${reason})`;
}

/** Where the setup has got to; `failed` and `closing` are final. */
type TunnelState = 'connecting' | 'authenticating' | 'probing' | 'open' | 'failed' | 'closing';

/**
 * Opens an SSH connection to the bastion, checks its host key against `ssh.knownHosts`
 * (always: there is no way to skip it), authenticates with `ssh.privateKey` (parsed in
 * memory, never written to disk), proves the bastion can reach `remote`, and listens on a
 * free 127.0.0.1 port that forwards each connection to `remote` as the bastion resolves it.
 *
 * Rejects with an InputError for unreadable `ssh-known-hosts` / `ssh-private-key`, with a
 * TunnelError (`unreachable`, `host-key`, `auth`, `forward`) when the setup fails, or with
 * `signal.reason` when aborted.
 */
export async function openTunnel(
  ssh: SshSettings,
  remote: { host: string; port: number },
  options: OpenTunnelOptions = {},
): Promise<Tunnel> {
  const knownHosts = parseKnownHosts(ssh.knownHosts);
  const clientKey = parseClientKey(ssh.privateKey);
  options.signal?.throwIfAborted();
  const tunnel = new SshTunnel(ssh, remote, knownHosts, clientKey, options);
  await tunnel.open(options.signal);
  return { localPort: tunnel.localPort, dropped: tunnel.dropped, close: () => tunnel.close() };
}

/**
 * One SSH connection to the bastion and the local listener that forwards through it. The
 * setup (`open`) goes connect → host-key check → authentication → probe of `remote` →
 * listener; from then on a close of the connection is a drop (`dropped` rejects).
 */
class SshTunnel implements Tunnel {
  localPort = 0;
  readonly dropped: Promise<never>;
  private readonly ssh: SshSettings;
  private readonly remote: { host: string; port: number };
  private readonly knownHosts: readonly KnownHost[];
  private readonly clientKey: ClientKey;
  private readonly timeoutMs: number;
  private readonly log: ((line: string) => void) | undefined;
  /** The bastion and the database as `host:port`, for messages. */
  private readonly bastion: string;
  private readonly target: string;
  private readonly conn: InstanceType<typeof ssh2.Client>;
  private state: TunnelState = 'connecting';
  /** Set when the host-key check refused the bastion: the reason the setup fails. */
  private hostKeyError: TunnelError | undefined;
  /** The connection's last error: why it closed. */
  private lastError: unknown;
  private connClosed = false;
  private readonly connClosedPromise: Promise<void>;
  private rejectDropped: (err: TunnelError) => void = () => {};
  // The local listener and its forwarded connections.
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly channels = new Set<ClientChannel>();
  private closing: Promise<void> | undefined;

  constructor(
    ssh: SshSettings,
    remote: { host: string; port: number },
    knownHosts: readonly KnownHost[],
    clientKey: ClientKey,
    options: OpenTunnelOptions,
  ) {
    this.ssh = ssh;
    this.remote = remote;
    this.knownHosts = knownHosts;
    this.clientKey = clientKey;
    this.timeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
    this.log = options.log;
    this.bastion = hostPort(ssh.host, ssh.port);
    this.target = hostPort(remote.host, remote.port);
    this.conn = new ssh2.Client();
    this.connClosedPromise = new Promise<void>((resolve) => {
      this.conn.once('close', () => {
        this.connClosed = true;
        resolve();
      });
    });
    this.dropped = new Promise<never>((_resolve, reject) => {
      this.rejectDropped = reject;
    });
    // Nobody has to listen: an unobserved drop must not become an unhandledRejection.
    this.dropped.catch(() => {});
    this.conn.on('error', (err: unknown) => {
      this.lastError = err;
    });
    this.conn.on('close', () => this.onDrop());
  }

  /** The setup: resolves once the local port forwards, rejects with what failed. */
  async open(signal: AbortSignal | undefined): Promise<void> {
    try {
      await this.connectAndProbe(signal);
    } catch (err) {
      this.state = 'failed';
      this.conn.destroy();
      await this.connClosedPromise;
      throw err;
    }
    try {
      this.server = await listenLocal((socket) => this.forward(socket));
    } catch (err) {
      this.state = 'failed';
      await this.endConnection();
      throw err;
    }
    const address = this.server.address();
    this.localPort = typeof address === 'object' && address !== null ? address.port : 0;
    this.state = 'open';
    // The bastion may have gone away between the probe and now: that is a drop too.
    if (this.connClosed) this.onDrop();
  }

  /** Closes the listener, every forwarded connection, and the SSH connection. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.state === 'open') this.state = 'closing';
      await this.tearDownForwarding();
      await this.endConnection();
    })();
    return this.closing;
  }

  /**
   * Connects, authenticates and probes `remote`. Settles once, with the first of: the
   * probe's channel opened, an error, the connection closing, the probe's timeout, abort.
   */
  private connectAndProbe(signal: AbortSignal | undefined): Promise<void> {
    const config = this.connectConfig();
    return new Promise<void>((resolve, reject) => {
      let probeTimer: NodeJS.Timeout | undefined;
      const detach = () => {
        if (probeTimer !== undefined) clearTimeout(probeTimer);
        signal?.removeEventListener('abort', onAbort);
        this.conn.removeListener('error', onError);
        this.conn.removeListener('close', onClose);
      };
      const fail = (err: unknown) => {
        detach();
        reject(err);
      };
      const onAbort = () => fail(signal?.reason);
      const onError = (err: unknown) => fail(this.classify(err));
      const onClose = () => fail(this.closedDuringSetup());
      signal?.addEventListener('abort', onAbort, { once: true });
      this.conn.on('error', onError);
      this.conn.on('close', onClose);
      this.conn.once('handshake', () => {
        if (this.state === 'connecting') this.state = 'authenticating';
      });
      this.conn.once('ready', () => {
        this.state = 'probing';
        probeTimer = setTimeout(() => fail(this.probeTimedOut()), this.timeoutMs);
        this.probe((err) => {
          if (err !== undefined) return fail(err);
          detach();
          if (this.state === 'probing') resolve();
        });
      });
      try {
        this.conn.connect(config);
      } catch (err) {
        fail(
          new TunnelError(
            'unreachable',
            `Cannot connect to the bastion ${this.bastion}: ${messageOf(err)}.`,
            { cause: err },
          ),
        );
      }
    });
  }

  private connectConfig(): ConnectConfig {
    const { host, port, user } = this.ssh;
    return {
      host,
      port,
      username: user,
      privateKey: this.clientKey.material(),
      hostVerifier: (key: Buffer) => this.verifyHostKey(key),
      readyTimeout: this.timeoutMs,
      keepaliveInterval: KEEPALIVE_INTERVAL_MS,
      keepaliveCountMax: KEEPALIVE_COUNT_MAX,
      algorithms: { serverHostKey: hostKeyAlgorithms(entriesFor(this.knownHosts, host, port)) },
      // Only the key given: no agent, no keyboard-interactive prompts.
      tryKeyboard: false,
    };
  }

  /** ssh2's host verifier: true for a pinned key; otherwise keeps why in `hostKeyError`. */
  private verifyHostKey(key: Buffer): boolean {
    const { host, port } = this.ssh;
    const keyType = blobKeyType(key) ?? 'unknown-key-type';
    const verdict = hostKeyMatches(this.knownHosts, host, port, keyType, key.toString('base64'));
    if (verdict === 'match') return true;
    const got = `${keyType} key ${fingerprint(key)}`;
    if (verdict === 'unknown') {
      const lookedUp = knownHostsName(host, port);
      this.hostKeyError = new TunnelError(
        'host-key',
        `Host key check failed: the bastion ${this.bastion} is not in ssh-known-hosts (looked up as "${lookedUp}"); ` +
          `it presented ${got}. Get its host key out of band (e.g. \`ssh-keyscan -p ${port} ${host}\` ` +
          `from a trusted network, checked against the server), and add the line to 'ssh-known-hosts'.`,
      );
      return false;
    }
    const expected = entriesFor(this.knownHosts, host, port)
      .filter((e) => !e.revoked)
      .map((e) => `${e.keyType} ${fingerprint(Buffer.from(e.keyBase64, 'base64'))}`);
    const revoked = verdict === 'revoked' ? ' This key is marked @revoked.' : '';
    this.hostKeyError = new TunnelError(
      'host-key',
      `HOST KEY MISMATCH — possible man-in-the-middle: the bastion ${this.bastion} presented ${got}, ` +
        `but ssh-known-hosts expects ${expected.length > 0 ? expected.join(' or ') : 'another key'}.${revoked} ` +
        `Refusing to connect. If the bastion's host key really changed, check the new key out of band and update 'ssh-known-hosts'.`,
    );
    return false;
  }

  /** Opens one channel to `remote` and closes it unused: proves the bastion reaches it. */
  private probe(done: (err?: TunnelError) => void): void {
    const { host, port } = this.remote;
    this.conn.forwardOut('127.0.0.1', 0, host, port, (err, channel) => {
      if (err) {
        done(
          new TunnelError(
            'forward',
            `The bastion cannot reach ${this.target}: ${channelFailure(err)}.`,
            { cause: err },
          ),
        );
        return;
      }
      // The probe only proves reachability: close it without sending a byte.
      channel.on('error', () => {});
      channel.close();
      done();
    });
  }

  private probeTimedOut(): TunnelError {
    return new TunnelError(
      'forward',
      `The bastion cannot reach ${this.target}: no answer within ${this.timeoutMs} ms.`,
    );
  }

  /** A connection error during the setup, as the TunnelError the caller sees. */
  private classify(err: unknown): TunnelError {
    if (this.hostKeyError !== undefined) return this.hostKeyError;
    const reason = messageOf(err);
    if (levelOf(err) === 'client-authentication')
      return new TunnelError(
        'auth',
        `The bastion ${this.bastion} refused public-key authentication for user '${this.ssh.user}' ` +
          `(${this.clientKey.type} key ${this.clientKey.fingerprint}): ${reason}. ` +
          `Check 'ssh-user' and that the key's public half is in that user's authorized_keys on the bastion.`,
        { cause: err },
      );
    if (levelOf(err) === 'client-timeout' && this.state === 'connecting')
      return new TunnelError(
        'unreachable',
        `Cannot reach the bastion ${this.bastion}: no SSH handshake within ${this.timeoutMs} ms.`,
        { cause: err },
      );
    if (this.state === 'connecting')
      return new TunnelError(
        'unreachable',
        `Cannot reach the bastion ${this.bastion}: ${reason}.`,
        {
          cause: err,
        },
      );
    return new TunnelError(
      'unreachable',
      `The SSH connection to the bastion ${this.bastion} failed ${
        this.state === 'authenticating' ? 'during authentication' : 'before the tunnel was ready'
      }: ${reason}.`,
      { cause: err },
    );
  }

  /** Why the setup failed when the connection closed before the tunnel was ready. */
  private closedDuringSetup(): TunnelError {
    if (this.lastError !== undefined) return this.classify(this.lastError);
    return this.state === 'probing'
      ? new TunnelError(
          'forward',
          `The bastion ${this.bastion} closed the connection while opening the forward to ${this.target}.`,
        )
      : new TunnelError(
          'unreachable',
          `The bastion ${this.bastion} closed the connection before the SSH session was ready.`,
        );
  }

  /** The connection closed: a drop if the tunnel was open (forwarding stops, `dropped` rejects). */
  private onDrop(): void {
    if (this.state !== 'open') return;
    this.state = 'failed';
    void this.tearDownForwarding();
    const last = this.lastError;
    const why =
      last === undefined
        ? 'the bastion closed the connection'
        : /keepalive/i.test(messageOf(last))
          ? `no answer to keepalives for ${((KEEPALIVE_COUNT_MAX + 1) * KEEPALIVE_INTERVAL_MS) / 1000} s`
          : messageOf(last);
    this.rejectDropped(
      new TunnelError(
        'dropped',
        `The SSH tunnel through the bastion ${this.bastion} to ${this.target} dropped: ${why}.`,
        { cause: last },
      ),
    );
  }

  /** A connection to the local port: forwarded to `remote` through the bastion. */
  private forward(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => this.sockets.delete(socket));
    if (this.state !== 'open') {
      socket.destroy();
      return;
    }
    const { host, port } = this.remote;
    const from = socket.remoteAddress ?? '127.0.0.1';
    this.conn.forwardOut(from, socket.remotePort ?? 0, host, port, (err, channel) => {
      if (err) {
        this.log?.(
          `The bastion refused to forward a connection to ${this.target}: ${channelFailure(err)}.`,
        );
        socket.destroy();
        return;
      }
      if (socket.destroyed || this.state !== 'open') {
        channel.on('error', () => {});
        channel.destroy();
        return;
      }
      this.join(socket, channel);
    });
  }

  /** Pipes a local connection and its channel both ways; either one ending ends both. */
  private join(socket: Socket, channel: ClientChannel): void {
    this.channels.add(channel);
    const destroyBoth = () => {
      socket.destroy();
      channel.destroy();
    };
    channel.on('error', destroyBoth);
    channel.once('close', () => {
      this.channels.delete(channel);
      socket.destroy();
    });
    socket.on('error', destroyBoth);
    socket.once('close', () => channel.destroy());
    socket.pipe(channel).pipe(socket);
  }

  private tearDownForwarding(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    for (const c of this.channels) c.destroy();
    const srv = this.server;
    if (srv === undefined || !srv.listening) return Promise.resolve();
    return new Promise((resolve) => srv.close(() => resolve()));
  }

  /** Ends the SSH connection, waiting CLOSE_GRACE_MS for the bastion before destroying it. */
  private async endConnection(): Promise<void> {
    if (this.connClosed) return;
    this.conn.end();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.connClosedPromise,
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          this.conn.destroy();
          resolve();
        }, CLOSE_GRACE_MS);
      }),
    ]);
    clearTimeout(timer);
    if (!this.connClosed) await this.connClosedPromise;
  }
}

function listenLocal(onConnection: (socket: Socket) => void): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer(onConnection);
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.removeListener('error', reject);
      server.on('error', () => {});
      resolve(server);
    });
  });
}
