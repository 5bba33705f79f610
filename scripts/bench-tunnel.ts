/**
 * The SSH tunnel's cost, measured: tunnel setup time, and dump throughput through the
 * tunnel against a direct connection — pg-dr's whole backup (compression none:
 * dump → age → 2 × s3rver) and the bare network path (`pg_dump -Fc -Z0`, output
 * discarded), best of three alternating runs. A real sshd on loopback is the bastion.
 *
 * It was a test that printed these figures (and asserted nothing about them); speed
 * belongs here. The tunnel's behaviour is tested in test/integration/tunnel*.test.ts.
 *
 *   npm run bench:tunnel                 # 700,000 rows (~150 MB), writes BENCHMARKS.md
 *   npm run bench:tunnel -- --rows 20000 --no-write
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { openTunnel } from '../src/tunnel/index.js';
import { ageKeyPair, tempDir } from '../test/harness/fixtures.js';
import { type PgCluster, startPostgres } from '../test/harness/postgres.js';
import { destinationInputs, type RunOutcome, runPgDr } from '../test/harness/run.js';
import { type S3Pair, startS3Pair } from '../test/harness/s3.js';
import { type SshdServer, startSshd } from '../test/harness/sshd.js';
import { writeBenchSection } from './bench/section.js';

interface Run {
  readonly archive: number;
  readonly seconds: number;
  readonly wall: number;
  readonly setupMs: number | null;
}

async function seed(pg: PgCluster, rows: number): Promise<number> {
  await pg.createDatabase('bulk');
  await pg.query(
    'bulk',
    `SELECT setseed(0.17);
     CREATE TABLE bulk (
       id bigint PRIMARY KEY, label text NOT NULL, amount numeric(12, 2) NOT NULL,
       at timestamptz NOT NULL, doc jsonb NOT NULL, blob bytea NOT NULL);
     INSERT INTO bulk
     SELECT i, 'item ' || i || ' ' || md5(i::text), round((random() * 1e6)::numeric, 2),
            timestamptz '2025-01-01 00:00:00+00' + i * interval '17 seconds',
            jsonb_build_object('n', i, 'tag', md5((i * 31)::text), 'ok', i % 2 = 0,
                               'name', (ARRAY['Zoë', 'José', '李', 'Ольга'])[1 + i % 4]),
            decode(md5(random()::text) || md5(random()::text) || md5(random()::text), 'hex')
       FROM generate_series(1, ${rows}) AS i;
     ANALYZE bulk;`,
  );
  const [row] = await pg.query<{ size: string }>(
    'bulk',
    'SELECT pg_database_size(current_database())::text AS size',
  );
  return Number(row?.size);
}

function setupOf(r: RunOutcome): number | null {
  const m = /SSH tunnel up in (\d+) ms/.exec(r.log);
  return m ? Number(m[1]) : null;
}

async function main(): Promise<void> {
  // The lock file pins an SDK that supports Node 20; its notice about future releases is noise here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { values } = parseArgs({
    options: { rows: { type: 'string', default: '700000' }, 'no-write': { type: 'boolean' } },
  });
  const rows = Number(values.rows);
  if (!Number.isInteger(rows) || rows < 1000)
    throw new Error(`--rows: "${values.rows}". Expected a whole number ≥ 1000.`);
  let pg: PgCluster | undefined;
  let s3: S3Pair | undefined;
  let sshd: SshdServer | undefined;
  const work = await tempDir('bench-tunnel');
  try {
    [pg, s3, sshd] = await Promise.all([
      startPostgres({ name: 'bench-tunnel' }),
      startS3Pair(),
      startSshd(),
    ]);
    const cluster = pg;
    const bastion = sshd;
    const { recipient } = await ageKeyPair();
    const size = await seed(cluster, rows);
    const env = { GITHUB_WORKSPACE: work };
    const backup = async (label: string, extra: Record<string, string>): Promise<Run> => {
      const t0 = Date.now();
      const r = await runPgDr(
        {
          command: 'backup',
          'database-url': cluster.url('bulk'),
          'age-recipients': recipient,
          compression: 'none',
          prefix: `bulk-${label}/`,
          ...destinationInputs((s3 as S3Pair).primary, (s3 as S3Pair).secondary),
          ...extra,
        },
        env,
      );
      if (r.failed || r.outputs.status !== 'ok')
        throw new Error(`backup (${label}) failed: ${r.failed}\n${r.log}`);
      const m = JSON.parse(r.outputs.manifest as string);
      return {
        archive: m.database.archiveBytes,
        seconds: m.database.dumpSeconds,
        wall: (Date.now() - t0) / 1000,
        setupMs: setupOf(r),
      };
    };
    const direct = await backup('direct', {});
    const tunnel = await backup('tunnel', {
      'ssh-host': `${bastion.host}:${bastion.port}`,
      'ssh-user': bastion.user,
      'ssh-private-key': bastion.privateKey,
      'ssh-known-hosts': bastion.knownHosts,
    });
    const raw = await rawDumps(cluster, bastion);
    const mb = (n: number) => (n / 1e6).toFixed(1);
    const rate = (r: Run) => r.archive / 1e6 / r.seconds;
    const lines = [
      `- Database: ${mb(size)} MB (\`pg_database_size\`), ${rows} rows; archive (custom format, compression none) ${mb(direct.archive)} MB.`,
      `- SSH tunnel setup (ed25519, loopback sshd): ${tunnel.setupMs ?? '?'} ms.`,
      `- pg-dr backup, compression none (dump → age → 2 × s3rver), \`dumpSeconds\`: direct ${direct.seconds.toFixed(2)} s = ${rate(direct).toFixed(1)} MB/s; through the tunnel ${tunnel.seconds.toFixed(2)} s = ${rate(tunnel).toFixed(1)} MB/s (**${(rate(tunnel) / rate(direct)).toFixed(2)}** of direct); whole runs ${direct.wall.toFixed(1)} s vs ${tunnel.wall.toFixed(1)} s.`,
      `- Bare \`pg_dump -Fc -Z0\`, output discarded, best of 3 alternating: direct ${raw.direct.toFixed(2)} s = ${(direct.archive / 1e6 / raw.direct).toFixed(1)} MB/s; through the tunnel ${raw.tunnel.toFixed(2)} s = ${(direct.archive / 1e6 / raw.tunnel).toFixed(1)} MB/s (runs: direct ${raw.directRuns.join('/')} s, tunnel ${raw.tunnelRuns.join('/')} s).`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    if (!values['no-write']) await writeSection(lines);
  } finally {
    await Promise.all([pg?.stop(), s3?.stop(), sshd?.stop()]);
    await rm(work, { recursive: true, force: true });
  }
}

async function rawDumps(pg: PgCluster, sshd: SshdServer) {
  const pgDump = join(pg.binDir, 'pg_dump');
  const dump = async (port: number) => {
    const t0 = Date.now();
    await execa(pgDump, ['-Fc', '-Z0', 'bulk'], {
      stdout: 'ignore',
      env: {
        PATH: process.env.PATH,
        PGHOST: '127.0.0.1',
        PGPORT: String(port),
        PGUSER: pg.user,
        PGPASSWORD: pg.password,
      },
    });
    return (Date.now() - t0) / 1000;
  };
  const directRuns: number[] = [];
  const tunnelRuns: number[] = [];
  const t = await openTunnel(
    {
      host: sshd.host,
      port: sshd.port,
      user: sshd.user,
      privateKey: sshd.privateKey,
      knownHosts: sshd.knownHosts,
    },
    { host: '127.0.0.1', port: pg.port },
  );
  try {
    for (let i = 0; i < 3; i++) {
      directRuns.push(await dump(pg.port));
      tunnelRuns.push(await dump(t.localPort));
    }
  } finally {
    await t.close();
  }
  return {
    direct: Math.min(...directRuns),
    tunnel: Math.min(...tunnelRuns),
    directRuns: directRuns.map((x) => x.toFixed(2)),
    tunnelRuns: tunnelRuns.map((x) => x.toFixed(2)),
  };
}

async function writeSection(lines: readonly string[]): Promise<void> {
  await writeBenchSection(
    'tunnel',
    'SSH tunnel (`npm run bench:tunnel`)',
    `Measured ${new Date().toISOString().slice(0, 10)}, on this machine, nothing else running.`,
    lines,
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:tunnel: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
