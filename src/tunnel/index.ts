import { createServer, type Server, type Socket } from 'node:net';
import type { ClientChannel, ConnectConfig, ServerHostKeyAlgorithm } from 'ssh2';
import {
  blobKeyType,
  entriesFor,
  fingerprint,
  hostKeyMatches,
  type KnownHost,
  knownHostsName,
  parseKnownHosts,
} from './known-hosts.js';
import { parseClientKey } from './private-key.js';
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
export class TunnelError extends Error {
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
  const timeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const { signal, log } = options;
  signal?.throwIfAborted();

  const bastion = hostPort(ssh.host, ssh.port);
  const target = hostPort(remote.host, remote.port);
  const conn = new ssh2.Client();

  // --- state shared by the setup and the open tunnel ---
  let state: 'connecting' | 'authenticating' | 'probing' | 'open' | 'failed' | 'closing' =
    'connecting';
  let hostKeyError: TunnelError | undefined;
  let lastError: unknown;
  let connClosed = false;
  const connClosedPromise = new Promise<void>((resolve) => {
    conn.once('close', () => {
      connClosed = true;
      resolve();
    });
  });

  const hostVerifier = (key: Buffer): boolean => {
    const keyType = blobKeyType(key) ?? 'unknown-key-type';
    const verdict = hostKeyMatches(knownHosts, ssh.host, ssh.port, keyType, key.toString('base64'));
    if (verdict === 'match') return true;
    const got = `${keyType} key ${fingerprint(key)}`;
    const lookedUp = knownHostsName(ssh.host, ssh.port);
    if (verdict === 'unknown') {
      hostKeyError = new TunnelError(
        'host-key',
        `Host key check failed: the bastion ${bastion} is not in ssh-known-hosts (looked up as "${lookedUp}"); ` +
          `it presented ${got}. Get its host key out of band (e.g. \`ssh-keyscan -p ${ssh.port} ${ssh.host}\` ` +
          `from a trusted network, checked against the server), and add the line to 'ssh-known-hosts'.`,
      );
    } else {
      const expected = entriesFor(knownHosts, ssh.host, ssh.port)
        .filter((e) => !e.revoked)
        .map((e) => `${e.keyType} ${fingerprint(Buffer.from(e.keyBase64, 'base64'))}`);
      const revoked = verdict === 'revoked' ? ' This key is marked @revoked.' : '';
      hostKeyError = new TunnelError(
        'host-key',
        `HOST KEY MISMATCH — possible man-in-the-middle: the bastion ${bastion} presented ${got}, ` +
          `but ssh-known-hosts expects ${expected.length > 0 ? expected.join(' or ') : 'another key'}.${revoked} ` +
          `Refusing to connect. If the bastion's host key really changed, check the new key out of band and update 'ssh-known-hosts'.`,
      );
    }
    return false;
  };

  const classify = (err: unknown): TunnelError => {
    if (hostKeyError !== undefined) return hostKeyError;
    const reason = messageOf(err);
    if (levelOf(err) === 'client-authentication')
      return new TunnelError(
        'auth',
        `The bastion ${bastion} refused public-key authentication for user '${ssh.user}' ` +
          `(${clientKey.type} key ${clientKey.fingerprint}): ${reason}. ` +
          `Check 'ssh-user' and that the key's public half is in that user's authorized_keys on the bastion.`,
        { cause: err },
      );
    if (levelOf(err) === 'client-timeout' && state === 'connecting')
      return new TunnelError(
        'unreachable',
        `Cannot reach the bastion ${bastion}: no SSH handshake within ${timeoutMs} ms.`,
        { cause: err },
      );
    if (state === 'connecting')
      return new TunnelError('unreachable', `Cannot reach the bastion ${bastion}: ${reason}.`, {
        cause: err,
      });
    return new TunnelError(
      'unreachable',
      `The SSH connection to the bastion ${bastion} failed ${
        state === 'authenticating' ? 'during authentication' : 'before the tunnel was ready'
      }: ${reason}.`,
      { cause: err },
    );
  };

  // --- the local listener and its forwarded connections ---
  const sockets = new Set<Socket>();
  const channels = new Set<ClientChannel>();
  let server: Server | undefined;

  const tearDownForwarding = (): Promise<void> => {
    for (const s of sockets) s.destroy();
    for (const c of channels) c.destroy();
    const srv = server;
    if (srv === undefined || !srv.listening) return Promise.resolve();
    return new Promise((resolve) => srv.close(() => resolve()));
  };

  let rejectDropped: (err: TunnelError) => void = () => {};
  const dropped = new Promise<never>((_resolve, reject) => {
    rejectDropped = reject;
  });
  // Nobody has to listen: an unobserved drop must not become an unhandledRejection.
  dropped.catch(() => {});

  conn.on('error', (err: unknown) => {
    lastError = err;
  });
  const onDrop = (): void => {
    if (state !== 'open') return;
    state = 'failed';
    void tearDownForwarding();
    const why =
      lastError === undefined
        ? 'the bastion closed the connection'
        : /keepalive/i.test(messageOf(lastError))
          ? `no answer to keepalives for ${((KEEPALIVE_COUNT_MAX + 1) * KEEPALIVE_INTERVAL_MS) / 1000} s`
          : messageOf(lastError);
    rejectDropped(
      new TunnelError(
        'dropped',
        `The SSH tunnel through the bastion ${bastion} to ${target} dropped: ${why}.`,
        { cause: lastError },
      ),
    );
  };
  conn.on('close', onDrop);

  const config: ConnectConfig = {
    host: ssh.host,
    port: ssh.port,
    username: ssh.user,
    privateKey: clientKey.material(),
    hostVerifier,
    readyTimeout: timeoutMs,
    keepaliveInterval: KEEPALIVE_INTERVAL_MS,
    keepaliveCountMax: KEEPALIVE_COUNT_MAX,
    algorithms: { serverHostKey: hostKeyAlgorithms(entriesFor(knownHosts, ssh.host, ssh.port)) },
    // Only the key given: no agent, no keyboard-interactive prompts.
    tryKeyboard: false,
  };

  const setup = new Promise<void>((resolve, reject) => {
    let probeTimer: NodeJS.Timeout | undefined;
    const fail = (err: unknown) => {
      if (probeTimer !== undefined) clearTimeout(probeTimer);
      signal?.removeEventListener('abort', onAbort);
      conn.removeListener('error', onError);
      conn.removeListener('close', onClose);
      reject(err);
    };
    const onAbort = () => fail(signal?.reason);
    const onError = (err: unknown) => fail(classify(err));
    const onClose = () =>
      fail(
        lastError !== undefined
          ? classify(lastError)
          : state === 'probing'
            ? new TunnelError(
                'forward',
                `The bastion ${bastion} closed the connection while opening the forward to ${target}.`,
              )
            : new TunnelError(
                'unreachable',
                `The bastion ${bastion} closed the connection before the SSH session was ready.`,
              ),
      );
    signal?.addEventListener('abort', onAbort, { once: true });
    conn.on('error', onError);
    conn.on('close', onClose);
    conn.once('handshake', () => {
      if (state === 'connecting') state = 'authenticating';
    });
    conn.once('ready', () => {
      state = 'probing';
      probeTimer = setTimeout(
        () =>
          fail(
            new TunnelError(
              'forward',
              `The bastion cannot reach ${target}: no answer within ${timeoutMs} ms.`,
            ),
          ),
        timeoutMs,
      );
      conn.forwardOut('127.0.0.1', 0, remote.host, remote.port, (err, channel) => {
        if (err) {
          fail(
            new TunnelError(
              'forward',
              `The bastion cannot reach ${target}: ${channelFailure(err)}.`,
              { cause: err },
            ),
          );
          return;
        }
        // The probe only proves reachability: close it without sending a byte.
        channel.on('error', () => {});
        channel.close();
        clearTimeout(probeTimer);
        signal?.removeEventListener('abort', onAbort);
        conn.removeListener('error', onError);
        conn.removeListener('close', onClose);
        if (state !== 'probing') return;
        resolve();
      });
    });
    try {
      conn.connect(config);
    } catch (err) {
      fail(
        new TunnelError(
          'unreachable',
          `Cannot connect to the bastion ${bastion}: ${messageOf(err)}.`,
          { cause: err },
        ),
      );
    }
  });

  const endConnection = async (): Promise<void> => {
    if (connClosed) return;
    conn.end();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      connClosedPromise,
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          conn.destroy();
          resolve();
        }, CLOSE_GRACE_MS);
      }),
    ]);
    clearTimeout(timer);
    if (!connClosed) await connClosedPromise;
  };

  try {
    await setup;
  } catch (err) {
    state = 'failed';
    conn.destroy();
    await connClosedPromise;
    throw err;
  }

  const forward = (socket: Socket): void => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
    if (state !== 'open') {
      socket.destroy();
      return;
    }
    conn.forwardOut(
      socket.remoteAddress ?? '127.0.0.1',
      socket.remotePort ?? 0,
      remote.host,
      remote.port,
      (err, channel) => {
        if (err) {
          log?.(
            `The bastion refused to forward a connection to ${target}: ${channelFailure(err)}.`,
          );
          socket.destroy();
          return;
        }
        if (socket.destroyed || state !== 'open') {
          channel.on('error', () => {});
          channel.destroy();
          return;
        }
        channels.add(channel);
        const destroyBoth = () => {
          socket.destroy();
          channel.destroy();
        };
        channel.on('error', destroyBoth);
        channel.once('close', () => {
          channels.delete(channel);
          socket.destroy();
        });
        socket.on('error', destroyBoth);
        socket.once('close', () => channel.destroy());
        socket.pipe(channel).pipe(socket);
      },
    );
  };

  try {
    server = await listenLocal(forward);
  } catch (err) {
    state = 'failed';
    await endConnection();
    throw err;
  }
  const address = server.address();
  const localPort = typeof address === 'object' && address !== null ? address.port : 0;
  state = 'open';
  // The bastion may have gone away between the probe and now: that is a drop too.
  if (connClosed) onDrop();

  let closing: Promise<void> | undefined;
  return {
    localPort,
    dropped,
    close(): Promise<void> {
      closing ??= (async () => {
        if (state === 'open') state = 'closing';
        await tearDownForwarding();
        await endConnection();
      })();
      return closing;
    },
  };
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
