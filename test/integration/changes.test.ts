/**
 * The wrong thing backed up still dumps without an error. Each backup compares itself with
 * the previous backup of the same database: an emptied or dropped table raises
 * `backup-changed` (the backup itself succeeds), and the next unremarkable backup closes it.
 * Two databases under one prefix: the backup warns, list shows both, restore of `latest`
 * stops and names them until `source-database` chooses, verify checks the newest of each,
 * and prune keeps each database's newest.
 */
import { randomBytes } from 'node:crypto';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSeededDatabase, SEED_ROW_COUNTS, tableRowCounts } from '../harness/fixtures.js';
import { type FakeGitHubApi, startGitHubApi } from '../harness/github-api.js';
import { leasePostgres } from '../harness/lease.js';
import type { PgCluster } from '../harness/postgres.js';
import { destinationInputs, type RunOutcome, runPgDr } from '../harness/run.js';
import { type S3Pair, startS3Pair } from '../harness/s3.js';
import { requireBinary } from '../harness/tools.js';

let pg: PgCluster;
let s3: S3Pair;
let gh: FakeGitHubApi;
let identity: string;
let recipient: string;
const token = `ghs_${randomBytes(18).toString('hex')}`;
const ghEnv = () => ({ GITHUB_REPOSITORY: 'acme/platform', GITHUB_API_URL: gh.url });
const MARK = '<!-- pg-dr:alert key=backup-changed -->';

beforeAll(async () => {
  requireBinary('zstd');
  [pg, s3] = await Promise.all([leasePostgres({ name: 'changes' }), startS3Pair()]);
  gh = await startGitHubApi({ token, owner: 'acme', repo: 'platform' });
  await Promise.all([createSeededDatabase(pg, 'shop'), createSeededDatabase(pg, 'ledger')]);
  await pg.query(
    'shop',
    'CREATE TABLE public.events (id bigint PRIMARY KEY, kind text); INSERT INTO public.events SELECT g, $$click$$ FROM generate_series(1, 80000) g',
  );
  identity = await generateX25519Identity();
  recipient = await identityToRecipient(identity);
});
afterAll(async () => {
  await Promise.all([pg?.stop(), s3?.stop(), gh?.stop()]);
});

const common = (prefix: string) => ({
  prefix,
  'github-token': token,
  ...destinationInputs(s3.primary, s3.secondary),
});

function backup(prefix: string, database: string, extra: Record<string, string> = {}) {
  return runPgDr(
    {
      command: 'backup',
      'database-url': pg.url(database),
      'age-recipients': recipient,
      ...common(prefix),
      ...extra,
    },
    ghEnv(),
  );
}

const changesTable = (r: RunOutcome) => r.tables.find((t) => t.title.startsWith('Changes since'));
const row = (r: RunOutcome, name: string) =>
  changesTable(r)
    ?.rows.filter((x) => x[0] === name)
    .map((x) => x[1]);
const changedIssue = () => gh.state.issues.find((i) => i.body?.includes(MARK));

describe('change detection', () => {
  it('an emptied and a dropped table raise backup-changed; the backup stands; the next one closes it', async () => {
    const first = await backup('shop/', 'shop');
    expect(first.outputs.status).toBe('ok');
    // Nothing to compare with: no table, no alert, no warning about the prefix.
    expect(changesTable(first)).toBeUndefined();
    expect(first.log).not.toMatch(/prefix also holds/);

    const same = await backup('shop/', 'shop');
    expect(changesTable(same)?.title).toBe(`Changes since ${first.outputs['backup-id']}`);
    expect(row(same, 'Rows (all tables)')?.[0]).toMatch(/^101,571 → 101,571 \(\+?0%\)$/);
    expect(row(same, 'Verdict')?.[0]).toMatch(/^✅ no table lost more than 50% of its rows/);
    expect(changedIssue()).toBeUndefined();

    await pg.query('shop', 'DELETE FROM public.events; DROP TABLE public.audit_log');
    const emptied = await backup('shop/', 'shop');
    // Not a failure: the backup is kept and the step passes.
    expect(emptied.failed).toBeUndefined();
    expect(emptied.outputs.status).toBe('ok');
    expect(row(emptied, 'Lost > 50%')).toEqual(['public.events: 80,000 → 0 (-100%)']);
    expect(row(emptied, 'Tables')).toEqual(['0 appeared, 1 disappeared (public.audit_log)']);
    expect(row(emptied, 'Verdict')?.[0]).toMatch(
      /^⚠️ changed sharply: a table lost more than 50% of its rows \(public\.events: 80000 → 0\); a table disappeared \(public\.audit_log\)$/,
    );
    const issue = changedIssue();
    expect(issue?.state).toBe('open');
    expect(issue?.title).toBe('pg-dr: the backup of shop changed sharply since the previous one');
    expect(issue?.body).toContain('- `public.events`: 80000 → 0 rows');
    expect(issue?.body).toContain('- `public.audit_log` (0 rows before)');
    // The backup before the change is the one to recover from.
    expect(issue?.body).toContain(`\`${same.outputs['backup-id']}\``);
    console.log(`--- backup-changed issue #${issue?.number} ---\n${issue?.body}`);

    const after = await backup('shop/', 'shop');
    expect(row(after, 'Verdict')?.[0]).toMatch(/^✅/);
    const closed = gh.state.issues.find((i) => i.number === issue?.number);
    expect(closed?.state).toBe('closed');
    expect(closed?.comments.at(-1)?.body).toContain(
      `backup ${after.outputs['backup-id']} shows no sharp change since ${emptied.outputs['backup-id']}`,
    );
    // Exactly one issue for the whole episode.
    expect(gh.state.issues.filter((i) => i.body?.includes(MARK))).toHaveLength(1);
  });

  it('max-row-drop-percent sets the bar; a smaller loss under the default passes', async () => {
    await pg.query('shop', 'DELETE FROM public.orders WHERE id % 10 < 3'); // 30% of 20,000
    const quiet = await backup('shop/', 'shop');
    expect(row(quiet, 'Changed')).toContain('public.orders: 20,000 → 14,000 (-30%)');
    expect(row(quiet, 'Lost > 50%')).toEqual([]);
    expect(changedIssue()?.state).toBe('closed');

    await pg.query('shop', 'DELETE FROM billing.invoices WHERE id % 10 < 3');
    const strict = await backup('shop/', 'shop', { 'max-row-drop-percent': '20' });
    expect(row(strict, 'Lost > 20%')).toEqual(['billing.invoices: 500 → 350 (-30%)']);
    expect(
      gh.state.issues.filter((i) => i.body?.includes(MARK) && i.state === 'open'),
    ).toHaveLength(1);
  });
});

describe('two databases under one prefix', () => {
  const P = 'mixed/';
  let shopId = '';
  let ledgerId = '';

  it('the backup warns; list shows both; restore latest stops and names them', async () => {
    shopId = (await backup(P, 'shop')).outputs['backup-id'] ?? '';
    const ledger = await backup(P, 'ledger');
    ledgerId = ledger.outputs['backup-id'] ?? '';
    expect(ledger.log).toContain(
      `warning: The prefix also holds backups of "shop" (newest ${shopId}).`,
    );
    // A backup of another database is not "the previous one": nothing compared.
    expect(changesTable(ledger)).toBeUndefined();

    const listed = await runPgDr({ command: 'list', ...common(P) });
    const report = JSON.parse(listed.outputs.report ?? '{}');
    expect(report.databases.map((d: { name: string }) => d.name)).toEqual(['ledger', 'shop']);
    expect(listed.tables[0]?.notes?.join('\n')).toContain(
      'The prefix holds backups of 2 databases',
    );
    const onlyShop = await runPgDr({ command: 'list', 'source-database': 'shop', ...common(P) });
    expect(
      JSON.parse(onlyShop.outputs.report ?? '{}').backups.map((b: { id: string }) => b.id),
    ).toEqual([shopId]);

    const target = await pg.createDatabase('restored_somewhere');
    const restore = (extra: Record<string, string>) =>
      runPgDr({
        command: 'restore',
        'backup-id': 'latest',
        'database-url': target,
        'age-identity': identity,
        force: 'true',
        ...common(P),
        ...extra,
      });
    const ambiguous = await restore({});
    expect(ambiguous.failed).toBe(
      `The prefix holds backups of 2 databases: "ledger" (newest ${ledgerId}, 1 complete), "shop" (newest ${shopId}, 1 complete). Set 'source-database' to the one to restore, or 'backup-id' to a backup.`,
    );
    // Nothing was written into the target.
    expect(await tableRowCounts(pg, 'restored_somewhere')).toEqual({});

    const chosen = await restore({ 'source-database': 'ledger' });
    expect(chosen.failed).toBeUndefined();
    expect(await tableRowCounts(pg, 'restored_somewhere')).toEqual(
      await tableRowCounts(pg, 'ledger'),
    );
    expect(await tableRowCounts(pg, 'ledger')).toMatchObject(SEED_ROW_COUNTS);

    const unknown = await restore({ 'source-database': 'shopp' });
    expect(unknown.failed).toMatch(/^No complete backup of the database "shopp" was found/);
  });

  it('prune keeps the newest of each database; verify latest checks the newest of each', async () => {
    const shop2 = (await backup(P, 'shop')).outputs['backup-id'] as string;
    const pruned = await runPgDr({
      command: 'prune',
      'keep-last': '1',
      'keep-daily': '0',
      'keep-weekly': '0',
      'keep-monthly': '0',
      'keep-yearly': '0',
      'dry-run': 'true',
      ...common(P),
    });
    expect(pruned.failed).toBeUndefined();
    const at = JSON.parse(pruned.outputs.report ?? '{}').destinations[0] as {
      backups: { id: string; result: string; reasons: string[] }[];
    };
    const result = Object.fromEntries(at.backups.map((b) => [b.id, b.result]));
    // One database's newest does not push the other's out.
    expect(result).toEqual({ [shop2]: 'kept', [ledgerId]: 'kept', [shopId]: 'would delete' });
    expect(at.backups.find((b) => b.id === ledgerId)?.reasons).toEqual([
      'newest',
      'last',
      'database "ledger"',
    ]);

    const verified = await runPgDr({
      command: 'verify',
      'backup-id': 'latest',
      'verify-level': 'checksum',
      ...common(P),
    });
    expect(verified.failed).toBeUndefined();
    const ids = JSON.parse(verified.outputs.report ?? '{}').verifications.map(
      (v: { backupId: string }) => v.backupId,
    );
    expect([...new Set(ids)].sort()).toEqual([ledgerId, shop2].sort());
  });
});

describe('the last good backup in the alerts that follow', () => {
  it('a failed verify names the newest backup known to verify, not "not known"', async () => {
    const recent = await runPgDr({
      command: 'verify',
      'backup-id': 'recent',
      'source-database': 'shop',
      ...common('shop/'),
    });
    expect(recent.failed).toBeUndefined();
    const ids = [
      ...new Set(
        JSON.parse(recent.outputs.report ?? '{}').verifications.map(
          (v: { backupId: string }) => v.backupId,
        ),
      ),
    ].sort() as string[];
    const [newest, before] = [ids.at(-1) as string, ids.at(-2) as string];
    // 4 bytes overwritten in the newest dump, at both destinations.
    for (const [server, bucket] of [
      [s3.primary, 'pgdr-primary'],
      [s3.secondary, 'pgdr-secondary'],
    ] as const) {
      const key = (await server.listKeys(bucket, `shop/${newest}/`)).find((k) =>
        k.includes('database.dump'),
      ) as string;
      const bytes = await server.getObject(bucket, key);
      bytes.write('XXXX', 100);
      await server.putObject(bucket, key, bytes);
    }
    const failed = await runPgDr(
      { command: 'verify', 'backup-id': 'latest', ...common('shop/') },
      ghEnv(),
    );
    expect(failed.failed).toMatch(/^Verification failed: /);
    const issue = gh.state.issues.find(
      (i) => i.state === 'open' && i.body?.includes('<!-- pg-dr:alert key=verification-failed -->'),
    );
    expect(issue?.body).toMatch(
      new RegExp(
        `### Last good backup\\n\\n\`${before}\`, finished .* stored at \\*\\*b2\\*\\*, \\*\\*r2\\*\\*\\.`,
      ),
    );
  });
});
