/**
 * The fault suite's stack, shared by its files (faults.test.ts, faults-cancel.test.ts):
 * PostgreSQL, two s3rver buckets, a fault-injecting proxy in front of each bucket and of
 * PostgreSQL, a local GitHub API as the alert feed, and the helpers that run a backup
 * through them and check what it left. `useFaultSuite` registers the hooks that start
 * and stop it; the state is exported as live bindings, set once the hooks have run.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import {
  type FaultProxy,
  type HttpFaultProxy,
  startFaultProxy,
  startHttpFaultProxy,
} from './faults.js';
import { ageKeyPair, createSeededDatabase, tempDir } from './fixtures.js';
import { type FakeGitHubApi, type FakeIssue, startGitHubApi } from './github-api.js';
import { leasePostgres } from './lease.js';
import { requireBuilt } from './node.js';
import type { PgCluster } from './postgres.js';
import { destinationInputs, type RunOutcome } from './run.js';
import { PRIMARY_BUCKET, type S3Pair, type S3Server, SECONDARY_BUCKET, startS3Pair } from './s3.js';
import type { SshdServer } from './sshd.js';
import { requireBinary } from './tools.js';

export const TOKEN = 'ghs_faultsSuiteToken0123456789abcdefABCD';
export const OWNER = 'acme';
export const REPO = 'platform';

export let pg: PgCluster;
export let s3: S3Pair;
export let api: FakeGitHubApi;
export let pgProxy: FaultProxy;
export let primaryProxy: HttpFaultProxy;
export let secondaryProxy: HttpFaultProxy;
export let work: string;
export let workspace: string;
export let recipient: string;
export let identity: string;
export let source: Record<string, number>;

/**
 * Faults tested by the current file, for the count printed at the end. Test files share
 * modules under `isolate: false`, so each file's beforeAll empties it.
 */
export const faultsTested: string[] = [];

/** Registers the hooks that start the stack before the file's tests and stop it after. */
export function useFaultSuite(name: string): void {
  beforeAll(async () => {
    faultsTested.length = 0;
    requireBinary('zstd');
    requireBinary('pgrep');
    [pg, s3, api] = await Promise.all([
      leasePostgres({ name }),
      startS3Pair(),
      startGitHubApi({ token: TOKEN, owner: OWNER, repo: REPO }),
    ]);
    source = await createSeededDatabase(pg, 'app');
    [pgProxy, primaryProxy, secondaryProxy] = await Promise.all([
      startFaultProxy({ target: { port: pg.port } }),
      startHttpFaultProxy({ target: { port: s3.primary.port } }),
      startHttpFaultProxy({ target: { port: s3.secondary.port } }),
    ]);
    work = await tempDir(name);
    workspace = join(work, 'ws');
    await mkdir(join(workspace, 'deploy'), { recursive: true });
    await writeFile(
      join(workspace, 'docker-compose.yml'),
      'services:\n  db:\n    image: postgres\n',
    );
    await writeFile(join(workspace, 'deploy/run.sh'), 'echo run\n');
    ({ identity, recipient } = await ageKeyPair());
  });

  afterEach(() => {
    for (const p of [pgProxy, primaryProxy, secondaryProxy]) {
      p?.set({ kind: 'pass' });
    }
    primaryProxy?.clearFailures();
    secondaryProxy?.clearFailures();
  });

  afterAll(async () => {
    await Promise.all([pgProxy?.stop(), primaryProxy?.stop(), secondaryProxy?.stop()]);
    await Promise.all([pg?.stop(), s3?.stop(), api?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
    console.log(`[${name}] ${faultsTested.length} faults tested: ${faultsTested.join('; ')}`);
  });
}

/** `postgresql://…@127.0.0.1:<port>/app`: the database, reached through `port`. */
export function databaseUrlVia(port: number, database = 'app'): string {
  const url = new URL(pg.url(database));
  url.port = String(port);
  return url.toString();
}

export function backupInputs(extra: Record<string, string> = {}): Record<string, string> {
  return {
    command: 'backup',
    'database-url': databaseUrlVia(pgProxy.port),
    'age-recipients': recipient,
    'github-token': TOKEN,
    ...destinationInputs(
      { ...s3.primary, endpoint: primaryProxy.endpoint },
      { ...s3.secondary, endpoint: secondaryProxy.endpoint },
    ),
    ...extra,
  };
}

export function env(): Record<string, string> {
  return {
    GITHUB_WORKSPACE: workspace,
    GITHUB_REPOSITORY: `${OWNER}/${REPO}`,
    GITHUB_API_URL: api.url,
  };
}

export const BUCKETS = (): [string, S3Server, string][] => [
  ['b2', s3.primary, PRIMARY_BUCKET],
  ['r2', s3.secondary, SECONDARY_BUCKET],
];

/** Manifest keys in each bucket, listed directly (not through the proxies). */
export async function manifests(): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const [name, server, bucket] of BUCKETS())
    out[name] = (await server.listKeys(bucket)).filter((k) => k.endsWith('/manifest.json'));
  return out;
}

/** Keys of one backup in each bucket. */
export async function backupKeys(id: string): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const [name, server, bucket] of BUCKETS())
    out[name] = await server.listKeys(bucket, `disaster_recovery/${id}/`);
  return out;
}

export function restoreInputs(id: string, target: string): Record<string, string> {
  return {
    command: 'restore',
    'backup-id': id,
    'database-url': target,
    'age-identity': identity,
    ...destinationInputs(
      { ...s3.primary, endpoint: primaryProxy.endpoint },
      { ...s3.secondary, endpoint: secondaryProxy.endpoint },
    ),
  };
}

/** The open alert issue of `key`, if any. */
export function openIssue(key: string): FakeIssue | undefined {
  return api.state.issues.find(
    (i) => i.state === 'open' && i.body?.includes(`<!-- pg-dr:alert key=${key} -->`),
  );
}

/**
 * A failed backup: failed step, status `failed`, no new manifest at either destination,
 * and the backup-failed issue open and telling this failure (`cause`).
 */
export async function expectFailedBackup(
  r: RunOutcome,
  before: Record<string, string[]>,
  cause: RegExp,
  opts: { hadId: boolean } = { hadId: true },
): Promise<void> {
  expect(r.failed, `expected a failure; log:\n${r.log}`).toBeDefined();
  expect(r.failed).toMatch(cause);
  expect(r.outputs.status).toBe('failed');
  expect(await manifests()).toEqual(before);
  // What the failed run had stored is removed at once (both buckets are reachable here).
  const id = r.outputs['backup-id'];
  expect(id === undefined ? false : /^\d{8}T\d{6}Z-[0-9a-f]{6}$/.test(id)).toBe(opts.hadId);
  if (id) expect(await backupKeys(id)).toEqual({ b2: [], r2: [] });
  const issue = openIssue('backup-failed');
  expect(issue, 'a backup-failed issue is open').toBeDefined();
  expect(issue?.body).toMatch(cause);
}

/** A degraded backup: complete (with a manifest) at `at` only. */
export async function expectDegraded(r: RunOutcome, at: 'b2' | 'r2'): Promise<string> {
  expect(r.outputs.status, r.log).toBe('degraded');
  const id = r.outputs['backup-id'] as string;
  expect(id).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{6}$/);
  const keys = await backupKeys(id);
  const other = at === 'b2' ? 'r2' : 'b2';
  expect(keys[at]).toContain(`disaster_recovery/${id}/manifest.json`);
  expect(keys[other]).not.toContain(`disaster_recovery/${id}/manifest.json`);
  const destinations = JSON.parse(r.outputs.destinations as string) as {
    name: string;
    ok: boolean;
    error: string | null;
  }[];
  expect(destinations.find((d) => d.name === at)?.ok).toBe(true);
  expect(destinations.find((d) => d.name === other)).toMatchObject({ ok: false });
  expect(destinations.find((d) => d.name === other)?.error).toBeTruthy();
  const issue = openIssue('backup-degraded');
  expect(issue, 'a backup-degraded issue is open').toBeDefined();
  expect(issue?.body).toContain(id);
  return id;
}

/** Pids of the children of `parent` named `name` (exact process name). */
export async function childPids(parent: number, name: string): Promise<number[]> {
  const r = await execa('pgrep', ['-P', String(parent), '-x', name], { reject: false });
  return r.stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map(Number);
}

/** pg_dump's backend, found by its application name while it copies table data. */
export async function pgDumpBackend(): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const rows = await pg.query<{ pid: number }>(
      'postgres',
      `SELECT pid FROM pg_stat_activity
        WHERE application_name = 'pg-dr' AND datname = 'app' AND query ILIKE 'COPY %'`,
    );
    if (rows.length === 1 && rows[0]) return rows[0].pid;
    if (Date.now() > deadline)
      throw new Error(`pg_dump's backend not found (${rows.length} COPY backends)`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The CLI as a real process, inputs from PG_DR_* variables, the result as JSON on stdout. */
export function startCli(inputs: Record<string, string>) {
  const vars: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? work,
    ...env(),
  };
  for (const [k, v] of Object.entries({ ...inputs, format: 'json' }))
    vars[`PG_DR_${k.replace(/-/g, '_').toUpperCase()}`] = v;
  const command = vars.PG_DR_COMMAND as string;
  return execa(process.execPath, [requireBuilt('dist/cli/index.js'), command], {
    reject: false,
    env: vars,
    extendEnv: false,
    // The test decides when to give up: no SIGKILL 5 s after the SIGTERM.
    forceKillAfterDelay: false,
  });
}

/** GitHub's cancel: SIGINT/SIGTERM, then SIGKILL 7.5 s later. A run must be over before. */
export const CANCEL_GRACE_MS = 7_500;

/**
 * Starts the CLI, waits for `ready`, sends SIGTERM, and waits for the exit (SIGKILL after
 * `giveUpMs`). Returns the result and how long the exit took.
 */
export async function sigterm(
  inputs: Record<string, string>,
  ready: () => Promise<void>,
  giveUpMs = 15_000,
) {
  const cli = startCli(inputs);
  await ready();
  const t0 = Date.now();
  cli.kill('SIGTERM');
  const timer = setTimeout(() => cli.kill('SIGKILL'), giveUpMs);
  const r = await cli;
  clearTimeout(timer);
  const exitMs = Date.now() - t0;
  console.log(`[faults] CLI exit ${r.exitCode ?? r.signal}, ${exitMs} ms after SIGTERM`);
  for (const p of [pgProxy, primaryProxy, secondaryProxy]) p.set({ kind: 'pass' });
  return { r, exitMs };
}

/** A cancelled backup: exit 1 within the grace period, status failed, no new manifest, alert. */
export async function expectCancelled(
  run: {
    r: { exitCode?: number; signal?: string; stdout: string; stderr: string };
    exitMs: number;
  },
  before: Record<string, string[]>,
): Promise<void> {
  const { r, exitMs } = run;
  const log = `exit ${r.exitCode ?? r.signal} ${exitMs} ms after SIGTERM\n${r.stderr}`;
  expect(r.signal, log).toBeUndefined();
  expect(r.exitCode, log).toBe(1);
  expect(exitMs, log).toBeLessThan(CANCEL_GRACE_MS);
  const doc = JSON.parse(r.stdout) as Record<string, unknown>;
  expect(doc).toMatchObject({ ok: false, status: 'failed' });
  expect(String(doc.error)).toMatch(/SIGTERM/);
  expect(await manifests()).toEqual(before);
  expect(openIssue('backup-failed')?.body).toMatch(/SIGTERM/);
}

export const sshInputs = (bastion: SshdServer): Record<string, string> => ({
  'ssh-host': `${bastion.host}:${bastion.port}`,
  'ssh-user': bastion.user,
  'ssh-private-key': bastion.privateKey,
  'ssh-known-hosts': bastion.knownHosts,
});
