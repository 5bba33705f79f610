/**
 * Network namespaces for tests that must prove where traffic goes: a namespace with a veth
 * pair to the root namespace (a private link-local /30), and a PostgreSQL cluster that
 * listens only on the namespace's own loopback, so the root namespace cannot reach it over
 * TCP at all. Root only (`ip netns`); everything stays inside this machine.
 *
 * The test process still reaches the cluster through its Unix socket (a path in the shared
 * file system, not bound to a network namespace) to seed and count rows; pg-dr itself only
 * speaks TCP, so any connection it makes has to come through the bastion.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { execa } from 'execa';
import { type PgCluster, startPostgres } from './postgres.js';
import { findBinary } from './tools.js';

const IP = '/usr/sbin/ip';

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function ipBinary(): string | undefined {
  return findBinary(IP) ?? findBinary('ip');
}

/**
 * Why network namespaces cannot be used here, or null when they can (a throwaway
 * namespace was created, entered and deleted).
 */
export async function netnsUnavailable(): Promise<string | null> {
  if (!isRoot()) return 'not running as root (ip netns needs CAP_SYS_ADMIN and CAP_NET_ADMIN)';
  const ip = ipBinary();
  if (ip === undefined) return "the 'ip' command (iproute2) is not installed";
  if (findBinary('runuser') === undefined) return "'runuser' (util-linux) is not installed";
  if (findBinary('setpriv') === undefined) return "'setpriv' (util-linux) is not installed";
  const name = `pgdr-probe-${process.pid}-${randomBytes(3).toString('hex')}`;
  const add = await execa(ip, ['netns', 'add', name], { reject: false });
  if (add.exitCode !== 0) return `'ip netns add' failed: ${add.stderr.trim() || add.exitCode}`;
  try {
    const exec = await execa(ip, ['netns', 'exec', name, ip, 'link', 'set', 'lo', 'up'], {
      reject: false,
    });
    if (exec.exitCode !== 0) return `'ip netns exec' failed: ${exec.stderr.trim()}`;
    const veth = `pv${randomBytes(4).toString('hex')}`;
    const link = await execa(
      ip,
      ['link', 'add', veth, 'type', 'veth', 'peer', 'name', `${veth}n`, 'netns', name],
      { reject: false },
    );
    if (link.exitCode !== 0) return `creating a veth pair failed: ${link.stderr.trim()}`;
    await execa(ip, ['link', 'del', veth], { reject: false });
    return null;
  } finally {
    await execa(ip, ['netns', 'del', name], { reject: false });
  }
}

/** A network namespace joined to the root namespace by a veth pair. */
export interface Netns {
  /** `ip netns` name, unique to this process. */
  readonly name: string;
  /** The veth end in the root namespace, and its address. */
  readonly hostInterface: string;
  readonly hostAddress: string;
  /** The veth end inside the namespace, and its address (where a bastion listens). */
  readonly nsInterface: string;
  readonly nsAddress: string;
  /** The /30 both ends share, e.g. `169.254.77.4/30`. */
  readonly subnet: string;
  /** Runs a command inside the namespace (as root). */
  exec(
    file: string,
    args: readonly string[],
  ): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  /** Kills every process left in the namespace, deletes it and the veth pair. Idempotent. */
  remove(): Promise<void>;
}

/** Addresses already routed in the root namespace (to avoid picking a /30 in use). */
async function usedPrefixes(ip: string): Promise<string> {
  const [addr, route] = await Promise.all([
    execa(ip, ['-4', '-o', 'addr', 'show'], { reject: false }),
    execa(ip, ['-4', 'route', 'show', 'table', 'all'], { reject: false }),
  ]);
  return `${addr.stdout}\n${route.stdout}`;
}

/**
 * Creates `pgdr-<label>-<pid>-<random>` with `lo` up and a veth pair whose ends get
 * `169.254.<a>.<b+1>` (root side) and `169.254.<a>.<b+2>` (namespace side) in a /30.
 * 169.254.169.0/24 (cloud metadata) is never used. Removed at process exit if the caller
 * forgets.
 */
export async function createNetns(label: string): Promise<Netns> {
  const ip = ipBinary();
  if (ip === undefined) throw new Error("createNetns: the 'ip' command is not installed");
  const tag = randomBytes(3).toString('hex');
  const name = `pgdr-${label.replace(/[^A-Za-z0-9_-]/g, '_')}-${process.pid}-${tag}`;
  // Interface names: at most 15 characters.
  const hostInterface = `pdh${tag}`;
  const nsInterface = `pdn${tag}`;

  const used = await usedPrefixes(ip);
  let third = 0;
  let base = 0;
  for (let i = 0; ; i++) {
    third = randomInt(16, 250);
    base = randomInt(0, 64) * 4;
    if (third !== 169 && !used.includes(`169.254.${third}.`)) break;
    if (i > 50) throw new Error('createNetns: no free 169.254.x.0/24 found for the veth pair');
  }
  const hostAddress = `169.254.${third}.${base + 1}`;
  const nsAddress = `169.254.${third}.${base + 2}`;
  const subnet = `169.254.${third}.${base}/30`;

  const run = async (args: string[]): Promise<void> => {
    const r = await execa(ip, args, { reject: false });
    if (r.exitCode !== 0) throw new Error(`ip ${args.join(' ')} failed: ${r.stderr.trim()}`);
  };
  const removeSync = (): void => {
    const pids = spawnSync(ip, ['netns', 'pids', name], { encoding: 'utf8' });
    for (const p of (pids.stdout ?? '').split(/\s+/).filter((s) => /^\d+$/.test(s))) {
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {
        // gone
      }
    }
    spawnSync(ip, ['netns', 'del', name], { stdio: 'ignore' });
    spawnSync(ip, ['link', 'del', hostInterface], { stdio: 'ignore' });
  };
  process.once('exit', removeSync);

  try {
    await run(['netns', 'add', name]);
    await run([
      'link',
      'add',
      hostInterface,
      'type',
      'veth',
      'peer',
      'name',
      nsInterface,
      'netns',
      name,
    ]);
    await run(['addr', 'add', `${hostAddress}/30`, 'dev', hostInterface]);
    await run(['link', 'set', hostInterface, 'up']);
    await run(['netns', 'exec', name, ip, 'addr', 'add', `${nsAddress}/30`, 'dev', nsInterface]);
    await run(['netns', 'exec', name, ip, 'link', 'set', nsInterface, 'up']);
    await run(['netns', 'exec', name, ip, 'link', 'set', 'lo', 'up']);
  } catch (err) {
    process.removeListener('exit', removeSync);
    removeSync();
    throw err;
  }

  let removing: Promise<void> | undefined;
  return {
    name,
    hostInterface,
    hostAddress,
    nsInterface,
    nsAddress,
    subnet,
    async exec(file, args) {
      const r = await execa(ip, ['netns', 'exec', name, file, ...args], { reject: false });
      return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
    },
    remove(): Promise<void> {
      removing ??= (async () => {
        process.removeListener('exit', removeSync);
        const pids = await execa(ip, ['netns', 'pids', name], { reject: false });
        for (const p of pids.stdout.split(/\s+/).filter((s) => /^\d+$/.test(s))) {
          try {
            process.kill(Number(p), 'SIGKILL');
          } catch {
            // gone
          }
        }
        await execa(ip, ['netns', 'del', name], { reject: false });
        // Deleting the namespace destroys its veth end, and with it the peer; be sure.
        await execa(ip, ['link', 'del', hostInterface], { reject: false });
      })();
      return removing;
    },
  };
}

/** True when a network interface of this name exists in the root namespace. */
export async function interfaceExists(name: string): Promise<boolean> {
  const ip = ipBinary();
  if (ip === undefined) return false;
  const r = await execa(ip, ['link', 'show', 'dev', name], { reject: false });
  return r.exitCode === 0;
}

/** True when `ip netns list` shows this namespace. */
export async function netnsExists(name: string): Promise<boolean> {
  const ip = ipBinary();
  if (ip === undefined) return false;
  const r = await execa(ip, ['netns', 'list'], { reject: false });
  return r.stdout.split('\n').some((l) => l.split(/\s+/)[0] === name);
}

/** A cluster inside a namespace; `host` is `127.0.0.1` as seen from inside it. */
export type NetnsPgCluster = PgCluster;

/**
 * Starts PostgreSQL (as the `postgres` OS user) inside `ns`, listening on the namespace's
 * loopback `127.0.0.1` only (plus a Unix socket the test process uses), SCRAM password
 * auth over TCP, and `log_connections = on` so a test can see who connected.
 */
export async function startPostgresInNetns(
  ns: Netns,
  opts: { name?: string; binDir?: string } = {},
): Promise<NetnsPgCluster> {
  if (!isRoot()) throw new Error('startPostgresInNetns needs root');
  const ip = ipBinary();
  if (ip === undefined) throw new Error("startPostgresInNetns: the 'ip' command is not installed");
  return startPostgres({
    name: opts.name ?? 'pg-netns',
    ...(opts.binDir ? { binDir: opts.binDir } : {}),
    netns: { name: ns.name, ip },
    logConnections: true,
  });
}
