import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prune } from '../../src/commands/prune.js';
import { type PruneSettings, parseSettings } from '../../src/inputs/parse.js';
import { cliInputSource } from '../../src/inputs/source.js';
import { createCliHost } from '../../src/report/host.js';
import { createDestination } from '../../src/storage/destination.js';
import { plantComplete, plantIncomplete, plantVerification } from '../harness/plant.js';
import { destinationInputs } from '../harness/run.js';
import { type S3Pair, type S3Server, startS3Pair } from '../harness/s3.js';

let s3: S3Pair;

const ID = {
  A: '20261126T020000Z-aaaaaa', // newest
  B: '20261125T020000Z-bbbbbb',
  C: '20261124T020000Z-cccccc',
  D: '20261123T020000Z-dddddd', // Monday of W48
  E: '20261122T020000Z-eeeeee', // Sunday, W47
  F: '20261115T020000Z-ffffff', // W46; its verification (failed) is the only one in the window
  G: '20261031T020000Z-111111', // October
  H: '20261001T020000Z-222222',
  I: '20260915T020000Z-333333',
  X: '20261125T200000Z-444444', // incomplete, 7 h before "now": may be in flight
  Y: '20261120T020000Z-555555', // incomplete, days old
};

async function plantTimeline(prefix: string): Promise<void> {
  for (const [server, bucket] of [
    [s3.primary, 'pgdr-primary'],
    [s3.secondary, 'pgdr-secondary'],
  ] as const) {
    for (const k of ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I'] as const)
      await plantComplete(server, bucket, prefix, ID[k]);
    await plantIncomplete(server, bucket, prefix, ID.X);
    await plantIncomplete(server, bucket, prefix, ID.Y);
    await plantVerification(server, bucket, prefix, ID.F, '2026-11-25T03:00:00.000Z', false);
  }
}

function settingsFor(prefix: string, extra: Record<string, string> = {}): PruneSettings {
  const argv = Object.entries({
    command: 'prune',
    prefix,
    'keep-last': '2',
    'keep-daily': '3',
    'keep-weekly': '2',
    'keep-monthly': '2',
    'keep-yearly': '1',
    ...destinationInputs(s3.primary, s3.secondary),
    ...extra,
  }).map(([k, v]) => `--${k}=${v}`);
  return parseSettings(cliInputSource(argv, {}), {}) as PruneSettings;
}

async function run(settings: PruneSettings, now: string) {
  const host = createCliHost({ write: () => true } as unknown as NodeJS.WritableStream);
  return prune(settings, {
    host,
    destinations: settings.destinations.map((d) => createDestination(d)),
    now: () => new Date(now),
  });
}

async function idsLeft(server: S3Server, bucket: string, prefix: string): Promise<string[]> {
  const keys = await server.listKeys(bucket, prefix);
  return [...new Set(keys.map((k) => k.slice(prefix.length).split('/')[0] as string))].sort();
}

beforeAll(async () => {
  s3 = await startS3Pair();
});
afterAll(async () => {
  await s3?.stop();
});

describe('prune on two real S3 servers', () => {
  it('keeps exactly what the rules and the rails keep, at each destination', async () => {
    await plantTimeline('t1/');
    const { report, summary } = await run(settingsFor('t1/'), '2026-11-26T03:00:00Z');
    expect(report.ok).toBe(true);
    // Worked out by hand (keep-last 2, daily 3, weekly 2, monthly 2, yearly 1):
    //   last: A B · daily: 11-26 A, 11-25 B, 11-24 C · weekly: W48 A, W47 E · monthly: 11 A, 10 G · yearly: 2026 A
    //   F: the only backup verified in the last 8 days (failed: someone must look at it)
    //   X: incomplete but 7 h old (maybe in flight) · Y: incomplete and older than 24 h → removed
    const kept = [ID.A, ID.B, ID.C, ID.E, ID.F, ID.G, ID.X].sort();
    expect(await idsLeft(s3.primary, 'pgdr-primary', 't1/')).toEqual(kept);
    expect(await idsLeft(s3.secondary, 'pgdr-secondary', 't1/')).toEqual(kept);
    // Whole backups only: a kept backup still has every object.
    expect((await s3.primary.listKeys('pgdr-primary', `t1/${ID.F}/`)).length).toBe(4);
    const primary = report.destinations[0];
    const byId = new Map(primary?.backups.map((b) => [b.id, b]));
    expect(byId.get(ID.D)?.result).toBe('deleted');
    expect(byId.get(ID.Y)?.result).toBe('deleted');
    expect(byId.get(ID.A)?.reasons).toContain('newest');
    expect(byId.get(ID.E)?.reasons).toContain('weekly 2026-W47');
    expect(byId.get(ID.F)?.reasons.join(' ')).toMatch(/only verified/);
    expect(summary.header).toEqual(['destination', 'backup', 'result', 'rule']);
    expect(summary.rows.length).toBe(22);
    // Printed so the closing note can show the table.
    console.log(
      summary.rows
        .filter((r) => r[0] === 'b2')
        .map((r) => `| ${r.join(' | ')} |`)
        .join('\n'),
    );
  });

  it('refuses to prune anything while the newest complete backup is stale', async () => {
    await plantTimeline('t2/');
    const before = await idsLeft(s3.primary, 'pgdr-primary', 't2/');
    const { report } = await run(settingsFor('t2/'), '2026-11-28T06:00:00Z');
    expect(report.ok).toBe(false);
    expect(report.destinations[0]?.refused).toMatch(/older than 26 h|26/);
    expect(await idsLeft(s3.primary, 'pgdr-primary', 't2/')).toEqual(before);
    expect(await idsLeft(s3.secondary, 'pgdr-secondary', 't2/')).toEqual(before);
  });

  it('dry-run lists what would go and deletes nothing', async () => {
    await plantTimeline('t3/');
    const before = await idsLeft(s3.primary, 'pgdr-primary', 't3/');
    const { report } = await run(settingsFor('t3/', { 'dry-run': 'true' }), '2026-11-26T03:00:00Z');
    const would = report.destinations[0]?.backups
      .filter((b) => b.result === 'would delete')
      .map((b) => b.id)
      .sort();
    expect(would).toEqual([ID.D, ID.H, ID.I, ID.Y].sort());
    expect(await idsLeft(s3.primary, 'pgdr-primary', 't3/')).toEqual(before);
  });

  it('a flood of planted backups dated in the future, with planted ok records, deletes no real backup', async () => {
    await plantTimeline('t4/');
    const planted: string[] = [];
    for (let i = 0; i < 14; i++) {
      const id = `2099123${i % 10}T23595${i % 10}Z-f${String(i).padStart(5, '0')}`;
      planted.push(id);
      for (const [server, bucket] of [
        [s3.primary, 'pgdr-primary'],
        [s3.secondary, 'pgdr-secondary'],
      ] as const) {
        await plantComplete(server, bucket, 't4/', id);
        await plantVerification(server, bucket, 't4/', id, '2099-12-31T23:59:59.000Z', true);
      }
    }
    // An unreadable newest record must not hide F's real one (its "only verified" rail).
    await s3.primary.putObject(
      'pgdr-primary',
      `t4/${ID.F}/verifications/20261125T040000000Z.json`,
      Buffer.from('not a record'),
    );
    // A planted "passed" record dated in the future on an old backup must not hold it either.
    await plantVerification(
      s3.primary,
      'pgdr-primary',
      't4/',
      ID.D,
      '2099-01-01T00:00:00.000Z',
      true,
    );
    const { report } = await run(settingsFor('t4/'), '2026-11-26T03:00:00Z');
    expect(report.ok).toBe(true);
    const kept = [ID.A, ID.B, ID.C, ID.E, ID.F, ID.G, ID.X, ...planted].sort();
    expect(await idsLeft(s3.primary, 'pgdr-primary', 't4/')).toEqual(kept);
    expect(await idsLeft(s3.secondary, 'pgdr-secondary', 't4/')).toEqual(kept);
    const byId = new Map(report.destinations[0]?.backups.map((b) => [b.id, b]));
    expect(byId.get(ID.A)?.reasons).toContain('newest');
    expect(byId.get(ID.F)?.reasons.join(' ')).toMatch(/only verified/);
    expect(byId.get(planted[0] as string)?.reasons).toEqual(['dated in the future: ignored']);
  });

  it('a backup whose manifest was overwritten is kept for a person, not deleted as incomplete', async () => {
    await plantTimeline('t5/');
    for (const [server, bucket] of [
      [s3.primary, 'pgdr-primary'],
      [s3.secondary, 'pgdr-secondary'],
    ] as const)
      await server.putObject(bucket, `t5/${ID.H}/manifest.json`, Buffer.from('not a manifest'));
    const { report } = await run(settingsFor('t5/'), '2026-11-26T03:00:00Z');
    const kept = [ID.A, ID.B, ID.C, ID.E, ID.F, ID.G, ID.H, ID.X].sort();
    expect(await idsLeft(s3.primary, 'pgdr-primary', 't5/')).toEqual(kept);
    const h = report.destinations[0]?.backups.find((b) => b.id === ID.H);
    expect(h).toMatchObject({ action: 'keep', result: 'kept' });
    expect(h?.reasons.join(' ')).toMatch(/damaged or tampered/);
  });

  it('refuses to delete more than max-deletions backups in one run, and deletes none', async () => {
    await plantTimeline('t6/');
    const before = await idsLeft(s3.primary, 'pgdr-primary', 't6/');
    const { report } = await run(
      settingsFor('t6/', { 'max-deletions': '3' }),
      '2026-11-26T03:00:00Z',
    );
    expect(report.ok).toBe(false);
    expect(report.destinations[0]?.refused).toMatch(
      /would delete 4 backups, more than max-deletions \(3\): nothing is deleted/,
    );
    expect(await idsLeft(s3.primary, 'pgdr-primary', 't6/')).toEqual(before);
    expect(await idsLeft(s3.secondary, 'pgdr-secondary', 't6/')).toEqual(before);
    // The default (10) lets the same plan through.
    expect((await run(settingsFor('t6/'), '2026-11-26T03:00:00Z')).report.ok).toBe(true);
  });
});
