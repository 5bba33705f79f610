import { readFile } from 'node:fs/promises';
import { createServer, type Server, Socket } from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTunnel, type Tunnel, TunnelError } from '../../src/tunnel/index.js';
import type { SshSettings } from '../../src/tunnel/settings.js';
import { freePort, isPortOpen } from '../harness/ports.js';
import { type PgCluster, startPostgres } from '../harness/postgres.js';
import {
  foreignKnownHostsLine,
  generateKeyPair,
  knownHostsName,
  type SshdServer,
  startSshd,
} from '../harness/sshd.js';
import { requireBinary } from '../harness/tools.js';

/** Every error a test saw, checked at the end for private key text. */
const seenErrors: unknown[] = [];
/** Every private key a test used. */
const usedKeys: string[] = [];

function settingsFor(sshd: SshdServer, overrides: Partial<SshSettings> = {}): SshSettings {
  const s = {
    host: sshd.host,
    port: sshd.port,
    user: sshd.user,
    privateKey: sshd.privateKey,
    knownHosts: sshd.knownHosts,
    ...overrides,
  };
  usedKeys.push(s.privateKey);
  return s;
}

/** Awaits a rejection and returns it as a TunnelError (failing the test otherwise). */
async function tunnelFailure(promise: Promise<unknown>): Promise<TunnelError> {
  const err = await promise.then(
    (t) => {
      void (t as Tunnel).close();
      throw new Error('expected openTunnel to fail, but it opened');
    },
    (e: unknown) => e,
  );
  seenErrors.push(err);
  expect(err).toBeInstanceOf(TunnelError);
  return err as TunnelError;
}

async function selectOne(port: number, cluster: PgCluster): Promise<number> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: cluster.user,
    password: cluster.password,
    database: 'postgres',
  });
  await client.connect();
  try {
    const { rows } = await client.query<{ one: number }>('SELECT 1 AS one');
    return rows[0]?.one ?? -1;
  } finally {
    await client.end();
  }
}

/** Active resources of this process, counted by type (timers, sockets, servers…). */
function activeResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

/** Resources above the baseline (vitest's own timers and fs requests come and go). */
function extraResources(baseline: Record<string, number>): Record<string, number> {
  const extra: Record<string, number> = {};
  for (const [type, n] of Object.entries(activeResources()))
    if (n > (baseline[type] ?? 0)) extra[type] = n - (baseline[type] ?? 0);
  return extra;
}

async function expectResourcesBackTo(baseline: Record<string, number>): Promise<void> {
  const deadline = Date.now() + 3_000;
  while (Date.now() < deadline) {
    if (Object.keys(extraResources(baseline)).length === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(extraResources(baseline)).toEqual({});
}

/** A TCP server that accepts connections and never says a word (a black-hole "bastion"). */
async function silentServer(): Promise<{ port: number; server: Server; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return { port: address.port, server, sockets };
}

async function closeSilent(s: { server: Server; sockets: Set<Socket> }): Promise<void> {
  for (const sock of s.sockets) sock.destroy();
  await new Promise((r) => s.server.close(r));
}

describe('SSH tunnel through a real sshd to a real PostgreSQL', () => {
  let cluster: PgCluster;
  let sshd: SshdServer;

  beforeAll(async () => {
    [cluster, sshd] = await Promise.all([startPostgres({ name: 'tunnel' }), startSshd()]);
  });
  afterAll(async () => {
    await Promise.all([cluster?.stop(), sshd?.stop()]);
  });

  it('forwards PostgreSQL connections (pg and psql) once the bastion proved it can reach them', async () => {
    const started = performance.now();
    const tunnel = await openTunnel(settingsFor(sshd), { host: '127.0.0.1', port: cluster.port });
    const setupMs = performance.now() - started;
    console.log(
      `tunnel setup (openTunnel → resolved, incl. handshake, auth and probe): ${setupMs.toFixed(1)} ms`,
    );
    try {
      expect(tunnel.localPort).toBeGreaterThan(0);
      expect(tunnel.localPort).not.toBe(cluster.port);
      expect(await selectOne(tunnel.localPort, cluster)).toBe(1);

      // Several connections at once, and a payload larger than any SSH window.
      const counts = await Promise.all(
        [1, 2, 3].map(async (i) => {
          const client = new pg.Client({
            host: '127.0.0.1',
            port: tunnel.localPort,
            user: cluster.user,
            password: cluster.password,
            database: 'postgres',
          });
          await client.connect();
          try {
            const { rows } = await client.query<{ n: number; h: string }>(
              "SELECT length(repeat('x', $1::int)) AS n, md5(repeat('x', $1::int)) AS h",
              [4_000_000 * i],
            );
            const big = await client.query<{ s: string }>("SELECT repeat('ab', $1::int) AS s", [
              1_500_000 * i,
            ]);
            return { n: rows[0]?.n, len: big.rows[0]?.s.length };
          } finally {
            await client.end();
          }
        }),
      );
      expect(counts).toEqual([
        { n: 4_000_000, len: 3_000_000 },
        { n: 8_000_000, len: 6_000_000 },
        { n: 12_000_000, len: 9_000_000 },
      ]);

      // libpq through the tunnel, as pg_dump will use it.
      const psql = await execa(
        requireBinary('psql'),
        [
          '-X',
          '-A',
          '-t',
          '-h',
          '127.0.0.1',
          '-p',
          String(tunnel.localPort),
          '-U',
          cluster.user,
          '-d',
          'postgres',
          '-c',
          'SELECT 1',
        ],
        { env: { PGPASSWORD: cluster.password, PGCONNECT_TIMEOUT: '10' } },
      );
      expect(psql.stdout.trim()).toBe('1');
    } finally {
      await tunnel.close();
    }
    // The readiness probe opens a connection to PostgreSQL and closes it without a byte:
    // PostgreSQL logs nothing for that (no "incomplete startup packet" noise per backup).
    const log = await readFile(cluster.logFile, 'utf8');
    expect(log).not.toMatch(/incomplete startup packet/i);
    expect(sshd.log()).toContain(`Accepted publickey for ${sshd.user}`);
  });

  it('authenticates with an RSA key too', async () => {
    const rsa = await generateKeyPair('rsa');
    await sshd.authorize(rsa.publicKey);
    const tunnel = await openTunnel(settingsFor(sshd, { privateKey: rsa.privateKey }), {
      host: '127.0.0.1',
      port: cluster.port,
    });
    try {
      expect(await selectOne(tunnel.localPort, cluster)).toBe(1);
    } finally {
      await tunnel.close();
    }
    expect(sshd.log()).toContain(`RSA ${rsa.fingerprint}`);
  });

  it('refuses a bastion whose host key differs from the pinned one (possible MITM)', async () => {
    const pinned = await foreignKnownHostsLine(sshd.host, sshd.port);
    const err = await tunnelFailure(
      openTunnel(settingsFor(sshd, { knownHosts: pinned }), {
        host: '127.0.0.1',
        port: cluster.port,
      }),
    );
    expect(err.kind).toBe('host-key');
    expect(err.message).toContain('HOST KEY MISMATCH — possible man-in-the-middle');
    // Shows the key received and the key expected.
    expect(err.message).toContain(sshd.hostKeyFingerprint);
    const expectedFp = (await execa('ssh-keygen', ['-l', '-E', 'sha256', '-f', '-'], {
      input: pinned,
    }).then((r) => r.stdout.split(/\s+/)[1])) as string;
    expect(err.message).toContain(expectedFp);
    // Refused before authentication: the client key was never offered.
    expect(sshd.log()).not.toMatch(/Failed publickey/);
  });

  it('refuses a bastion that is not in ssh-known-hosts', async () => {
    const [, type, key] = sshd.knownHosts.split(' ');
    const otherHost = `${knownHostsName('127.0.0.2', sshd.port)} ${type} ${key}\n${knownHostsName(
      '127.0.0.1',
      sshd.port + 1,
    )} ${type} ${key}`;
    const err = await tunnelFailure(
      openTunnel(settingsFor(sshd, { knownHosts: otherHost }), {
        host: '127.0.0.1',
        port: cluster.port,
      }),
    );
    expect(err.kind).toBe('host-key');
    expect(err.message).toContain('not in ssh-known-hosts');
    expect(err.message).toContain(`[127.0.0.1]:${sshd.port}`);
    expect(err.message).toContain(sshd.hostKeyFingerprint);
  });

  it('reports a refused client key as auth, naming the user and the bastion', async () => {
    const baseline = activeResources();
    const stranger = await generateKeyPair('ed25519');
    const err = await tunnelFailure(
      openTunnel(settingsFor(sshd, { privateKey: stranger.privateKey }), {
        host: '127.0.0.1',
        port: cluster.port,
      }),
    );
    expect(err.kind).toBe('auth');
    expect(err.message).toContain(`'${sshd.user}'`);
    expect(err.message).toContain(`127.0.0.1:${sshd.port}`);
    expect(err.message).toContain(stranger.fingerprint);
    // A failed setup leaves nothing behind.
    await expectResourcesBackTo(baseline);
  });

  it('reports a closed bastion port, an unknown host and a silent server as unreachable', async () => {
    const closedPort = await freePort();
    const refused = await tunnelFailure(
      openTunnel(settingsFor(sshd, { port: closedPort }), {
        host: '127.0.0.1',
        port: cluster.port,
      }),
    );
    expect(refused.kind).toBe('unreachable');
    expect(refused.message).toContain(`127.0.0.1:${closedPort}`);
    expect(refused.message).toMatch(/ECONNREFUSED/);

    const dns = await tunnelFailure(
      openTunnel(settingsFor(sshd, { host: 'bastion.pg-dr-test.invalid' }), {
        host: '127.0.0.1',
        port: cluster.port,
      }),
    );
    expect(dns.kind).toBe('unreachable');
    expect(dns.message).toContain(`bastion.pg-dr-test.invalid:${sshd.port}`);

    const silent = await silentServer();
    try {
      const timedOut = await tunnelFailure(
        openTunnel(
          settingsFor(sshd, { port: silent.port }),
          { host: '127.0.0.1', port: cluster.port },
          { readyTimeoutMs: 500 },
        ),
      );
      expect(timedOut.kind).toBe('unreachable');
      expect(timedOut.message).toContain(`no SSH handshake within 500 ms`);
    } finally {
      await closeSilent(silent);
    }
  });

  it('reports a database the bastion cannot reach as forward, before any client runs', async () => {
    const nobody = await freePort();
    const err = await tunnelFailure(
      openTunnel(settingsFor(sshd), { host: '127.0.0.1', port: nobody }),
    );
    expect(err.kind).toBe('forward');
    expect(err.message).toBe(`The bastion cannot reach 127.0.0.1:${nobody}: Connection refused.`);
  });

  it('reports a bastion that forbids forwarding as forward', async () => {
    const strict = await startSshd({ allowTcpForwarding: false });
    try {
      const err = await tunnelFailure(
        openTunnel(settingsFor(strict), { host: '127.0.0.1', port: cluster.port }),
      );
      expect(err.kind).toBe('forward');
      expect(err.message).toMatch(/cannot reach 127\.0\.0\.1:\d+: administratively prohibited/);
    } finally {
      await strict.stop();
    }
  });

  it('stops the setup when the signal aborts', async () => {
    const silent = await silentServer();
    try {
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error('run cancelled')), 200);
      const started = Date.now();
      const err = await openTunnel(
        settingsFor(sshd, { port: silent.port }),
        { host: '127.0.0.1', port: cluster.port },
        { signal: controller.signal, readyTimeoutMs: 10_000 },
      ).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((err as Error).message).toBe('run cancelled');
      expect(Date.now() - started).toBeLessThan(5_000);
      await expect(
        openTunnel(
          settingsFor(sshd),
          { host: '127.0.0.1', port: cluster.port },
          { signal: controller.signal },
        ),
      ).rejects.toThrow('run cancelled');
    } finally {
      await closeSilent(silent);
    }
  });

  it('rejects `dropped` when the bastion dies while the tunnel is open', async () => {
    const doomed = await startSshd();
    try {
      const tunnel = await openTunnel(settingsFor(doomed), {
        host: '127.0.0.1',
        port: cluster.port,
      });
      let settled = false;
      tunnel.dropped.catch(() => {
        settled = true;
      });
      expect(await selectOne(tunnel.localPort, cluster)).toBe(1);
      await new Promise((r) => setTimeout(r, 100));
      expect(settled).toBe(false);

      const killedAt = Date.now();
      await doomed.kill();
      const err = await tunnel.dropped.then(
        () => undefined,
        (e: unknown) => e,
      );
      seenErrors.push(err);
      console.log(`drop noticed ${Date.now() - killedAt} ms after the bastion was killed`);
      expect(err).toBeInstanceOf(TunnelError);
      expect((err as TunnelError).kind).toBe('dropped');
      expect((err as TunnelError).message).toContain(`127.0.0.1:${doomed.port}`);
      // The listener goes away with the connection; close() still works.
      expect(await isPortOpen(tunnel.localPort)).toBe(false);
      await tunnel.close();
      await tunnel.close();
    } finally {
      await doomed.stop();
    }
  });

  it('never rejects `dropped` after close(), and an unobserved `dropped` is no unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const doomed = await startSshd();
    try {
      // Nobody observes this tunnel's `dropped`.
      const tunnel = await openTunnel(settingsFor(doomed), {
        host: '127.0.0.1',
        port: cluster.port,
      });
      await doomed.kill();
      await new Promise((r) => setTimeout(r, 500));
      await tunnel.close();

      const other = await startSshd();
      try {
        const closedFirst = await openTunnel(settingsFor(other), {
          host: '127.0.0.1',
          port: cluster.port,
        });
        let rejected = false;
        closedFirst.dropped.catch(() => {
          rejected = true;
        });
        await closedFirst.close();
        await other.kill();
        await new Promise((r) => setTimeout(r, 300));
        expect(rejected).toBe(false);
      } finally {
        await other.stop();
      }
      await new Promise((r) => setTimeout(r, 100));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await doomed.stop();
    }
  });

  it('close() shuts the listener and every forwarded connection, leaving no handles', async () => {
    const baseline = activeResources();
    const tunnel = await openTunnel(settingsFor(sshd), { host: '127.0.0.1', port: cluster.port });
    // A forwarded connection that is still open when close() is called.
    const open = new Socket();
    const openClosed = new Promise<void>((r) => open.once('close', () => r()));
    open.on('error', () => {});
    await new Promise<void>((r) => open.connect(tunnel.localPort, '127.0.0.1', r));
    await new Promise((r) => setTimeout(r, 200));

    await Promise.all([tunnel.close(), tunnel.close()]);
    await openClosed;
    expect(await isPortOpen(tunnel.localPort)).toBe(false);
    const refused = await new Promise<string>((resolve) => {
      const s = new Socket();
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      s.once('connect', () => {
        s.destroy();
        resolve('connected');
      });
      s.connect(tunnel.localPort, '127.0.0.1');
    });
    expect(refused).toBe('ECONNREFUSED');
    await expectResourcesBackTo(baseline);
  });

  it('puts no private key text in any error message', () => {
    expect(seenErrors.length).toBeGreaterThanOrEqual(8);
    const keyLines = usedKeys.flatMap((k) =>
      k.split('\n').filter((l) => l.length > 12 && !l.startsWith('-----')),
    );
    expect(keyLines.length).toBeGreaterThan(0);
    for (const err of seenErrors) {
      const text = `${String(err)} ${(err as Error).stack ?? ''} ${String((err as Error).cause ?? '')}`;
      for (const line of keyLines) expect(text).not.toContain(line);
    }
  });
});

describe('startSshd', () => {
  it('runs sshd as an unprivileged user with its own temp config', async () => {
    const sshd = await startSshd();
    try {
      const status = await readFile(join('/proc', String(sshd.pid), 'status'), 'utf8');
      const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
      expect(uid).not.toBe(0);
      expect(sshd.knownHosts).toMatch(/^\[127\.0\.0\.1\]:\d+ ssh-ed25519 AAAA\S+$/);
      expect(sshd.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    } finally {
      await sshd.stop();
    }
    expect(await isPortOpen(sshd.port)).toBe(false);
  });
});
