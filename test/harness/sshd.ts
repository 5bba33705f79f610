/**
 * A throwaway OpenSSH server (the system `/usr/sbin/sshd`) on a loopback port, to stand in
 * for a bastion.
 *
 * Root vs non-root: sshd always runs as an unprivileged user. As a normal user, that is
 * the current user. As root (this dev container, some CI images) it is the system user
 * `pgdr-tunnel`, created with `useradd --system` when missing, and sshd is started with
 * its uid/gid (no supplementary groups). An sshd that is not root can only log in the user
 * it runs as, skips the privilege-separation chroot (so `/run/sshd` is not needed), and
 * cannot read /etc/shadow (so the locked `!` password of a system user does not matter with
 * `UsePAM no`). Running sshd as root and logging in as `pgdr-tunnel` works too, but needs
 * `/run/sshd` and gives the test process a root daemon for no gain.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { appendFile, chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { freePort } from './ports.js';
import { requireBinary } from './tools.js';

/** The OS user the test sshd runs as (and logs in) when the tests run as root. */
export const SSHD_TEST_USER = 'pgdr-tunnel';
const SSHD = '/usr/sbin/sshd';
const START_ATTEMPTS = 5;
const START_TIMEOUT_MS = 15_000;

export interface SshdServer {
  /** Where sshd listens: `127.0.0.1` unless `listenAddress` said otherwise. */
  readonly host: string;
  readonly port: number;
  /** The user to log in as (the user sshd runs as). */
  readonly user: string;
  /** OpenSSH text of an ed25519 client key whose public half is in authorized_keys. */
  readonly privateKey: string;
  /** A known_hosts line pinning this server's host key, for `[host]:port`. */
  readonly knownHosts: string;
  /** `SHA256:…` of the host key, as `ssh-keygen -l` prints it. */
  readonly hostKeyFingerprint: string;
  /** The host public key, `ssh-ed25519 AAAA…` (no host field). */
  readonly hostPublicKey: string;
  /** Process id of the listening sshd. */
  readonly pid: number;
  /** sshd's log (it runs with `-e`, LogLevel VERBOSE), for failing tests. */
  log(): string;
  /** Appends a public key line to authorized_keys. */
  authorize(publicKey: string): Promise<void>;
  /**
   * SIGKILLs the listener and every per-connection sshd, as if the bastion died: open
   * SSH connections see their TCP connection reset. The temp dir stays until stop().
   */
  kill(): Promise<void>;
  /** Kills every sshd process of this server and removes its temp dir. Idempotent. */
  stop(): Promise<void>;
}

export interface StartSshdOptions {
  /** `AllowTcpForwarding`; default true. */
  allowTcpForwarding?: boolean;
  /**
   * Run sshd inside this network namespace (`ip netns exec`, root only). The namespace
   * and its interfaces (at least `lo` up) are the caller's to set up.
   */
  netns?: string;
  /** Address to listen on; default `127.0.0.1`. */
  listenAddress?: string;
}

export interface SshKeyPair {
  /** OpenSSH private key text, no passphrase. */
  readonly privateKey: string;
  /** `ssh-ed25519 AAAA… comment` line. */
  readonly publicKey: string;
  /** `SHA256:…` */
  readonly fingerprint: string;
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

interface OsUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

function lookupUser(name: string): OsUser | undefined {
  const r = spawnSync('getent', ['passwd', name], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const [, , uid, gid] = r.stdout.trim().split(':');
  return { name, uid: Number(uid), gid: Number(gid) };
}

/** The user sshd runs as: the current one, or (as root) `pgdr-tunnel`, created if missing. */
async function sshdUser(): Promise<OsUser> {
  if (!isRoot()) {
    const me = userInfo();
    return { name: me.username, uid: me.uid, gid: me.gid };
  }
  const existing = lookupUser(SSHD_TEST_USER);
  if (existing) return existing;
  const created = await execa(
    'useradd',
    [
      '--system',
      '--create-home',
      '--home-dir',
      `/var/lib/${SSHD_TEST_USER}`,
      '--shell',
      '/bin/sh',
      '--comment',
      'pg-dr test bastion user',
      SSHD_TEST_USER,
    ],
    { reject: false },
  );
  // Another test file may have created it at the same moment.
  const user = lookupUser(SSHD_TEST_USER);
  if (!user)
    throw new Error(`Could not create the OS user ${SSHD_TEST_USER}: ${created.stderr.trim()}`);
  return user;
}

/** Generates a key pair with `ssh-keygen` in a temp dir that is removed right after. */
export async function generateKeyPair(
  type: 'ed25519' | 'rsa' = 'ed25519',
  comment = 'pg-dr-test',
): Promise<SshKeyPair> {
  const dir = await mkdtemp(join(tmpdir(), 'pg-dr-key-'));
  try {
    const file = join(dir, 'id');
    const bits = type === 'rsa' ? ['-b', '3072'] : [];
    await execa(requireBinary('ssh-keygen'), [
      '-q',
      '-t',
      type,
      ...bits,
      '-N',
      '',
      '-C',
      comment,
      '-f',
      file,
    ]);
    const publicKey = (await readFile(`${file}.pub`, 'utf8')).trim();
    return {
      privateKey: await readFile(file, 'utf8'),
      publicKey,
      fingerprint: await keyFingerprint(`${file}.pub`),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function keyFingerprint(pubFile: string): Promise<string> {
  const { stdout } = await execa(requireBinary('ssh-keygen'), [
    '-l',
    '-E',
    'sha256',
    '-f',
    pubFile,
  ]);
  const fp = stdout.split(/\s+/)[1];
  if (fp === undefined || !fp.startsWith('SHA256:'))
    throw new Error(`Unexpected ssh-keygen -l output: ${stdout}`);
  return fp;
}

/** The known_hosts name of host:port (`host` on 22, else `[host]:port`). */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** A known_hosts line for host:port with a fresh, unrelated ed25519 key (for mismatch tests). */
export async function foreignKnownHostsLine(host: string, port: number): Promise<string> {
  const { publicKey } = await generateKeyPair('ed25519', 'not-the-bastion');
  const [type, key] = publicKey.split(' ');
  return `${knownHostsName(host, port)} ${type} ${key}`;
}

/** Process ids of every descendant of `pid` (read from /proc), deepest last. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid …; comm may hold spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift() as number;
    for (const c of children.get(p) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

/** SIGKILLs `pid` and all its descendants (collected first: killing reparents them). */
function killTree(pid: number): void {
  for (const p of [pid, ...descendants(pid)]) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Starts sshd in the foreground (`-D -e -f <config>`) on a free port, with a fresh ed25519
 * host key and a fresh ed25519 client key in authorized_keys, public-key auth only.
 */
export async function startSshd(opts: StartSshdOptions = {}): Promise<SshdServer> {
  requireBinary(SSHD);
  const keygen = requireBinary('ssh-keygen');
  if (opts.netns !== undefined && !isRoot())
    throw new Error('startSshd: netns needs root (ip netns exec).');
  const user = await sshdUser();
  const host = opts.listenAddress ?? '127.0.0.1';
  const dir = await mkdtemp(join(tmpdir(), 'pg-dr-sshd-'));
  const hostKeyFile = join(dir, 'ssh_host_ed25519_key');
  const authorizedKeys = join(dir, 'authorized_keys');
  const configFile = join(dir, 'sshd_config');

  let child: ChildProcess | undefined;
  const cleanupSync = (): void => {
    if (child?.pid !== undefined && child.exitCode === null) killTree(child.pid);
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanupSync);

  try {
    await execa(keygen, [
      '-q',
      '-t',
      'ed25519',
      '-N',
      '',
      '-C',
      'pg-dr-test-host',
      '-f',
      hostKeyFile,
    ]);
    const hostPub = (await readFile(`${hostKeyFile}.pub`, 'utf8')).trim().split(' ');
    const hostPublicKey = `${hostPub[0]} ${hostPub[1]}`;
    const hostKeyFingerprint = await keyFingerprint(`${hostKeyFile}.pub`);
    const client = await generateKeyPair('ed25519', 'pg-dr-test-client');
    await writeFile(authorizedKeys, `${client.publicKey}\n`, { mode: 0o600 });

    let port = 0;
    let log = '';
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      await writeFile(
        configFile,
        [
          `ListenAddress ${knownHostsName(host, port)}`,
          `HostKey ${hostKeyFile}`,
          `PidFile ${join(dir, 'sshd.pid')}`,
          `AuthorizedKeysFile ${authorizedKeys}`,
          'UsePAM no',
          'StrictModes no',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'PubkeyAuthentication yes',
          'PermitRootLogin no',
          `AllowUsers ${user.name}`,
          `AllowTcpForwarding ${opts.allowTcpForwarding === false ? 'no' : 'yes'}`,
          'X11Forwarding no',
          'AllowAgentForwarding no',
          'LogLevel VERBOSE',
          '',
        ].join('\n'),
      );
      if (isRoot()) {
        for (const f of [dir, hostKeyFile, `${hostKeyFile}.pub`, authorizedKeys, configFile])
          await chown(f, user.uid, user.gid);
      }
      const args = ['-D', '-e', '-f', configFile];
      const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
      log = '';
      child =
        opts.netns === undefined
          ? spawn(SSHD, args, {
              env,
              stdio: ['ignore', 'pipe', 'pipe'],
              ...(isRoot() ? { uid: user.uid, gid: user.gid } : {}),
            })
          : spawn(
              'ip',
              [
                'netns',
                'exec',
                opts.netns,
                'setpriv',
                `--reuid=${user.uid}`,
                `--regid=${user.gid}`,
                '--clear-groups',
                SSHD,
                ...args,
              ],
              { env, stdio: ['ignore', 'pipe', 'pipe'] },
            );
      const proc = child;
      const collect = (chunk: Buffer) => {
        log += chunk.toString('utf8');
      };
      proc.stdout?.on('data', collect);
      proc.stderr?.on('data', collect);
      const started = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), START_TIMEOUT_MS);
        const onData = () => {
          if (log.includes('Server listening on')) done(true);
        };
        const onExit = () => done(false);
        const done = (ok: boolean) => {
          clearTimeout(timer);
          proc.stderr?.removeListener('data', onData);
          proc.removeListener('exit', onExit);
          resolve(ok);
        };
        proc.stderr?.on('data', onData);
        proc.once('exit', onExit);
        proc.once('error', (err) => {
          log += `spawn error: ${err.message}\n`;
          done(false);
        });
        onData();
      });
      if (started) break;
      if (proc.pid !== undefined) killTree(proc.pid);
      await waitForExit(proc);
      if (attempt < START_ATTEMPTS && /Address already in use/i.test(log)) continue;
      throw new Error(`sshd did not start (attempt ${attempt}):\n${log}`);
    }
    const proc = child;
    const pid = proc.pid as number;

    let stopping: Promise<void> | undefined;
    return {
      host,
      port,
      user: user.name,
      privateKey: client.privateKey,
      knownHosts: `${knownHostsName(host, port)} ${hostPublicKey}`,
      hostKeyFingerprint,
      hostPublicKey,
      pid,
      log: () => log,
      async authorize(publicKey: string): Promise<void> {
        await appendFile(authorizedKeys, `${publicKey.trim()}\n`);
      },
      async kill(): Promise<void> {
        killTree(pid);
        await waitForExit(proc);
      },
      stop(): Promise<void> {
        stopping ??= (async () => {
          process.removeListener('exit', cleanupSync);
          killTree(pid);
          await waitForExit(proc);
          proc.stdout?.destroy();
          proc.stderr?.destroy();
          await rm(dir, { recursive: true, force: true });
        })();
        return stopping;
      },
    };
  } catch (err) {
    process.removeListener('exit', cleanupSync);
    cleanupSync();
    throw err;
  }
}
