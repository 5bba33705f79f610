/**
 * Backup, restore and restore drills through an SSH tunnel, end to end: a real sshd as the
 * bastion, real PostgreSQL, two s3rver buckets, pg-dr run in-process with its inputs.
 *
 * The last suite proves the dump really travels through the bastion (PostgreSQL inside a
 * network namespace the test process cannot reach over TCP). The tunnel's throughput
 * against a direct dump is measured by `npm run bench:tunnel`, not here.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ageKeyPair,
  COMPOSE_WORKSPACE,
  createSeededDatabase,
  seedDatabase,
  tableRowCounts,
  tempDir,
  writeTree,
} from '../harness/fixtures.js';
import { leasePostgres } from '../harness/lease.js';
import {
  createNetns,
  interfaceExists,
  type Netns,
  type NetnsPgCluster,
  netnsExists,
  netnsUnavailable,
  startPostgresInNetns,
} from '../harness/netns.js';
import { freePort, isPortOpen } from '../harness/ports.js';
import type { PgCluster } from '../harness/postgres.js';
import { destinationInputs, type RunOutcome, runPgDr } from '../harness/run.js';
import { PRIMARY_BUCKET, type S3Pair, SECONDARY_BUCKET, startS3Pair } from '../harness/s3.js';
import {
  foreignKnownHostsLine,
  generateKeyPair,
  knownHostsName,
  type SshdServer,
  startSshd,
} from '../harness/sshd.js';
import { requireBinary } from '../harness/tools.js';

let pg: PgCluster;
let s3: S3Pair;
let sshd: SshdServer;
let work: string;
let workspace: string;
let identity: string;
let recipient: string;
let source: Record<string, number>;

/** Every "SSH tunnel up in N ms" this file saw, for the figures printed at the end. */
const setupTimes: number[] = [];

const netnsProblem = await netnsUnavailable();

beforeAll(async () => {
  requireBinary('age');
  requireBinary('zstd');
  [pg, s3, sshd] = await Promise.all([
    leasePostgres({ name: 'tunnel-backup' }),
    startS3Pair(),
    startSshd(),
  ]);
  source = await createSeededDatabase(pg, 'app');
  work = await tempDir('tunnel-backup');
  workspace = join(work, 'ws');
  await writeTree(workspace, COMPOSE_WORKSPACE);
  ({ identity, recipient } = await ageKeyPair());
});

afterAll(async () => {
  await Promise.all([pg?.stop(), s3?.stop(), sshd?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
  if (setupTimes.length > 0) {
    const sorted = [...setupTimes].sort((a, b) => a - b);
    console.log(
      `[tunnel-backup] SSH tunnel setup (from "SSH tunnel up in N ms"), ${sorted.length} runs: ` +
        `min ${sorted[0]} ms, median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted.at(-1)} ms`,
    );
  }
});

const env = () => ({ GITHUB_WORKSPACE: workspace });
const destinations = () => destinationInputs(s3.primary, s3.secondary);

/** The four ssh-* inputs for a bastion, with overrides. */
function sshInputs(
  bastion: SshdServer,
  overrides: Partial<
    Record<'ssh-host' | 'ssh-user' | 'ssh-private-key' | 'ssh-known-hosts', string>
  > = {},
): Record<string, string> {
  return {
    'ssh-host': `${bastion.host}:${bastion.port}`,
    'ssh-user': bastion.user,
    'ssh-private-key': bastion.privateKey,
    'ssh-known-hosts': bastion.knownHosts,
    ...overrides,
  };
}

function backupInputs(databaseUrl: string, extra: Record<string, string> = {}) {
  return {
    command: 'backup',
    'database-url': databaseUrl,
    'age-recipients': recipient,
    ...destinations(),
    ...extra,
  };
}

/** The N of "SSH tunnel up in N ms", recorded; fails the test when the line is missing. */
function tunnelSetupMs(r: RunOutcome): number {
  const m = /SSH tunnel up in (\d+) ms/.exec(r.log);
  expect(m, `no "SSH tunnel up" line in the log:\n${r.log}`).not.toBeNull();
  const ms = Number(m?.[1]);
  setupTimes.push(ms);
  return ms;
}

/** Every key in both buckets. */
async function listings(): Promise<{ primary: string[]; secondary: string[] }> {
  const [primary, secondary] = await Promise.all([
    s3.primary.listKeys(PRIMARY_BUCKET),
    s3.secondary.listKeys(SECONDARY_BUCKET),
  ]);
  return { primary, secondary };
}

/** Runs `inputs`, expects a failure, and checks that neither bucket changed. */
async function failsUploadingNothing(inputs: Record<string, string>): Promise<RunOutcome> {
  const before = await listings();
  const r = await runPgDr(inputs, env());
  expect(r.failed, `expected a failure; log:\n${r.log}`).toBeDefined();
  expect(r.outputs.status).toBe('failed');
  expect(await listings()).toEqual(before);
  return r;
}

/** The private key text (whole, or any line of its body) appears in no log, error or output. */
function expectNoKeyText(r: RunOutcome, privateKey: string): void {
  const seen = [r.log, r.failed ?? '', JSON.stringify(r.outputs), JSON.stringify(r.tables)].join(
    '\n',
  );
  expect(seen).not.toContain(privateKey.trim());
  const body = privateKey
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('-----'));
  expect(body.length).toBeGreaterThan(0);
  for (const line of body) expect(seen).not.toContain(line);
  // Nor a long run of it joined up (a message that unwrapped the base64).
  expect(seen).not.toContain(body.join('').slice(0, 40));
}

describe('backup through an SSH tunnel', () => {
  it('backs up through the bastion, restores through it, and passes a restore drill through it', async () => {
    const sshBefore = sshd.log().match(/Accepted publickey/g)?.length ?? 0;
    const b = await runPgDr(backupInputs(pg.url('app'), sshInputs(sshd)), env());
    expect(b.failed, b.log).toBeUndefined();
    expect(b.outputs.status).toBe('ok');
    expect(b.log).toMatch(
      new RegExp(
        `SSH tunnel up in \\d+ ms: 127\\.0\\.0\\.1:\\d+ → 127\\.0\\.0\\.1 → 127\\.0\\.0\\.1:${pg.port}`,
      ),
    );
    tunnelSetupMs(b);
    expect(sshd.log().match(/Accepted publickey/g)?.length ?? 0).toBeGreaterThan(sshBefore);
    const id = b.outputs['backup-id'] as string;
    const manifest = JSON.parse(b.outputs.manifest as string);
    expect(manifest.database.name).toBe('app');
    expect(
      Object.fromEntries(
        manifest.database.rowCounts.tables.map(
          (t: { schema: string; table: string; rows: number }) => [
            `${t.schema}.${t.table}`,
            t.rows,
          ],
        ),
      ),
    ).toEqual(source);
    expect(await s3.primary.listKeys(PRIMARY_BUCKET, `disaster_recovery/${id}/`)).toContain(
      `disaster_recovery/${id}/manifest.json`,
    );
    expect(await s3.secondary.listKeys(SECONDARY_BUCKET, `disaster_recovery/${id}/`)).toContain(
      `disaster_recovery/${id}/manifest.json`,
    );

    // Restore through the tunnel into a fresh database.
    const target = await pg.createDatabase('restored_via_tunnel');
    const r = await runPgDr(
      {
        command: 'restore',
        'backup-id': id,
        'database-url': target,
        'age-identity': identity,
        'config-dir': join(work, 'restored-config'),
        ...destinations(),
        ...sshInputs(sshd),
      },
      env(),
    );
    expect(r.failed, r.log).toBeUndefined();
    expect(r.outputs.status).toBe('ok');
    tunnelSetupMs(r);
    expect(JSON.parse(r.outputs.report as string)).toMatchObject({
      ok: true,
      backupId: id,
      mismatches: [],
    });
    expect(await tableRowCounts(pg, 'restored_via_tunnel')).toEqual(source);

    // A restore drill (verify-level restore) whose scratch database is behind the bastion.
    const drill = await pg.createDatabase('drill_via_tunnel');
    const v = await runPgDr(
      {
        command: 'verify',
        'backup-id': id,
        'verify-level': 'restore',
        'age-identity': identity,
        'drill-database-url': drill,
        ...destinations(),
        ...sshInputs(sshd),
      },
      env(),
    );
    expect(v.failed, v.log).toBeUndefined();
    expect(v.outputs.status).toBe('ok');
    tunnelSetupMs(v);
    const report = JSON.parse(v.outputs.report as string);
    expect(
      report.verifications.map((x: { destination: string; ok: boolean }) => [x.destination, x.ok]),
    ).toEqual([
      ['b2', true],
      ['r2', true],
    ]);
    expect(report.verifications[0].drill).toMatchObject({ ok: true, mismatches: [] });
    expect(report.verifications[0].drill.tables).toBe(Object.keys(source).length);
  });

  it('refuses a bastion whose host key is not the pinned one, uploading nothing', async () => {
    const r = await failsUploadingNothing(
      backupInputs(
        pg.url('app'),
        sshInputs(sshd, { 'ssh-known-hosts': await foreignKnownHostsLine(sshd.host, sshd.port) }),
      ),
    );
    expect(r.failed).toContain('HOST KEY MISMATCH');
    expect(r.failed).toContain(sshd.hostKeyFingerprint);
    expect(r.log).not.toMatch(/SSH tunnel up/);
    expectNoKeyText(r, sshd.privateKey);
  });

  it('reports a client key the bastion does not accept as an authentication failure for the user', async () => {
    const stranger = await generateKeyPair();
    const r = await failsUploadingNothing(
      backupInputs(pg.url('app'), sshInputs(sshd, { 'ssh-private-key': stranger.privateKey })),
    );
    expect(r.failed).toMatch(/authentication/i);
    expect(r.failed).toContain(`'${sshd.user}'`);
    expect(r.failed).toContain(stranger.fingerprint);
    expectNoKeyText(r, stranger.privateKey);
  });

  it('reports a closed bastion port as unreachable, naming host:port', async () => {
    const port = await freePort();
    const r = await failsUploadingNothing(
      backupInputs(
        pg.url('app'),
        sshInputs(sshd, {
          'ssh-host': `127.0.0.1:${port}`,
          'ssh-known-hosts': `${knownHostsName('127.0.0.1', port)} ${sshd.hostPublicKey}`,
        }),
      ),
    );
    expect(r.failed).toMatch(new RegExp(`Cannot reach the bastion 127\\.0\\.0\\.1:${port}\\b`));
    expectNoKeyText(r, sshd.privateKey);
  });

  it("rejects ssh-host without ssh-known-hosts, naming 'ssh-known-hosts'", async () => {
    const r = await failsUploadingNothing(
      backupInputs(pg.url('app'), sshInputs(sshd, { 'ssh-known-hosts': '' })),
    );
    expect(r.failed).toContain("'ssh-known-hosts'");
    expect(r.log).not.toMatch(/Open SSH tunnel/);
  });

  it('reports a database the bastion cannot reach, before anything is uploaded', async () => {
    const port = await freePort();
    const url = new URL(pg.url('app'));
    url.port = String(port);
    const r = await failsUploadingNothing(backupInputs(url.toString(), sshInputs(sshd)));
    expect(r.failed).toMatch(new RegExp(`bastion cannot reach 127\\.0\\.0\\.1:${port}\\b`));
    expectNoKeyText(r, sshd.privateKey);
    expect(r.failed).not.toContain(pg.password);
    expect(r.failed).not.toContain(encodeURIComponent(pg.password));
  });
});

describe.skipIf(netnsProblem !== null)(
  'the dump goes through the bastion (PostgreSQL inside a network namespace)',
  () => {
    let ns: Netns | undefined;
    let nsPg: NetnsPgCluster | undefined;
    let bastion: SshdServer | undefined;
    let nsSource: Record<string, number>;

    beforeAll(async () => {
      ns = await createNetns('tunnel');
      nsPg = await startPostgresInNetns(ns, { name: 'netns-pg' });
      bastion = await startSshd({ netns: ns.name, listenAddress: ns.nsAddress });
      await nsPg.createDatabase('netapp');
      nsSource = await seedDatabase(nsPg, 'netapp');
      console.log(
        `[tunnel-backup] netns ${ns.name}: veth ${ns.hostInterface} ${ns.hostAddress} ↔ ` +
          `${ns.nsInterface} ${ns.nsAddress} (${ns.subnet}); PostgreSQL on 127.0.0.1:${nsPg.port} ` +
          `inside it; sshd on ${ns.nsAddress}:${bastion.port}`,
      );
    });

    afterAll(async () => {
      const name = ns?.name;
      const veth = ns?.hostInterface;
      try {
        await Promise.allSettled([bastion?.stop(), nsPg?.stop()]);
      } finally {
        await ns?.remove();
      }
      if (name !== undefined) expect(await netnsExists(name)).toBe(false);
      if (veth !== undefined) expect(await interfaceExists(veth)).toBe(false);
    });

    const live = () => {
      if (!ns || !nsPg || !bastion) throw new Error('netns setup did not complete');
      return { ns, nsPg, bastion };
    };

    it('PostgreSQL is unreachable from here: no TCP connect, and a direct backup fails', async () => {
      const { ns, nsPg, bastion } = live();
      // The bastion is reachable over the veth pair, the database is not.
      expect(await isPortOpen(bastion.port, ns.nsAddress)).toBe(true);
      expect(await isPortOpen(nsPg.port, ns.nsAddress)).toBe(false);
      expect(await isPortOpen(nsPg.port, '127.0.0.1')).toBe(false);
      // It is up, though (over its Unix socket).
      expect(await tableRowCounts(nsPg, 'netapp')).toEqual(nsSource);

      const direct = await failsUploadingNothing(backupInputs(nsPg.url('netapp')));
      expect(direct.failed).toContain(`127.0.0.1:${nsPg.port}`);
      expect(direct.failed).toMatch(/Connection refused/);
      const viaVeth = new URL(nsPg.url('netapp'));
      viaVeth.hostname = ns.nsAddress;
      const direct2 = await failsUploadingNothing(backupInputs(viaVeth.toString()));
      expect(direct2.failed).toContain(`${ns.nsAddress}:${nsPg.port}`);
      expect(direct2.failed).toMatch(/Connection refused/);
    });

    it('backs up with ssh-host = the namespace and database-url = its localhost, and the rows restore', async () => {
      const { ns, nsPg, bastion } = live();
      const tcpBefore = ((await nsPg.log()).match(/connection received: host=127\.0\.0\.1/g) ?? [])
        .length;
      const b = await runPgDr(
        backupInputs(nsPg.url('netapp'), {
          'ssh-host': `${ns.nsAddress}:${bastion.port}`,
          'ssh-user': bastion.user,
          'ssh-private-key': bastion.privateKey,
          'ssh-known-hosts': bastion.knownHosts,
        }),
        env(),
      );
      expect(b.failed, b.log).toBeUndefined();
      expect(b.outputs.status).toBe('ok');
      expect(b.log).toContain(`→ ${ns.nsAddress} → 127.0.0.1:${nsPg.port}`);
      tunnelSetupMs(b);
      const id = b.outputs['backup-id'] as string;
      const manifest = JSON.parse(b.outputs.manifest as string);
      expect(manifest.database.name).toBe('netapp');
      // Every TCP connection the server saw came from its own loopback: the bastion's forward.
      const serverLog = await nsPg.log();
      expect(
        (serverLog.match(/connection received: host=127\.0\.0\.1/g) ?? []).length,
      ).toBeGreaterThan(tcpBefore);
      expect(serverLog).toMatch(/connection authorized: user=postgres database=netapp.*pg-dr/);
      expect(serverLog).not.toMatch(new RegExp(`connection received: host=${ns.hostAddress}`));

      const target = await nsPg.createDatabase('netrestored');
      const r = await runPgDr(
        {
          command: 'restore',
          'backup-id': id,
          'database-url': target,
          'age-identity': identity,
          ...destinations(),
          'ssh-host': `${ns.nsAddress}:${bastion.port}`,
          'ssh-user': bastion.user,
          'ssh-private-key': bastion.privateKey,
          'ssh-known-hosts': bastion.knownHosts,
        },
        env(),
      );
      expect(r.failed, r.log).toBeUndefined();
      expect(r.outputs.status).toBe('ok');
      tunnelSetupMs(r);
      expect(await tableRowCounts(nsPg, 'netrestored')).toEqual(nsSource);
    });

    it('takes a physical backup (pg_basebackup) through the bastion too', async () => {
      const { ns, nsPg, bastion } = live();
      const b = await runPgDr(
        backupInputs(nsPg.url('netapp'), {
          mode: 'physical',
          'ssh-host': `${ns.nsAddress}:${bastion.port}`,
          'ssh-user': bastion.user,
          'ssh-private-key': bastion.privateKey,
          'ssh-known-hosts': bastion.knownHosts,
        }),
        env(),
      );
      expect(b.failed, b.log).toBeUndefined();
      expect(b.outputs.status).toBe('ok');
      tunnelSetupMs(b);
      const manifest = JSON.parse(b.outputs.manifest as string);
      expect(manifest.mode).toBe('physical');
      expect(manifest.objects[0]).toMatchObject({ kind: 'base', name: 'base.tar.zst.age' });
      // pg_basebackup's replication connection reached the server through its own loopback.
      expect(await nsPg.log()).toMatch(
        /replication connection authorized: user=postgres application_name=pg-dr/,
      );
      const stored = await s3.primary.getObject(
        PRIMARY_BUCKET,
        `disaster_recovery/${b.outputs['backup-id']}/base.tar.zst.age`,
      );
      expect(stored.length).toBe(manifest.objects[0].encrypted.bytes);
    });
  },
);
if (netnsProblem !== null)
  console.warn(
    `[tunnel-backup] SKIPPED the network-namespace proof (the dump goes through the bastion): ${netnsProblem}`,
  );
