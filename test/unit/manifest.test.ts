import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ZodError } from 'zod';
import {
  BACKUP_ID,
  backupIdTime,
  backupPrefix,
  MANIFEST_NAME,
  newBackupId,
} from '../../src/manifest/id.js';
import {
  type Manifest,
  Manifest as ManifestSchema,
  parseManifest,
} from '../../src/manifest/schema.js';

const SHA_A = 'a'.repeat(64);
const SHA_B = '0123456789abcdef'.repeat(4);

function validManifest(): Manifest {
  return {
    format: 'pg-dr/1',
    id: '20261126T020000Z-7f3a9c',
    createdAt: '2026-11-26T02:00:00.000Z',
    finishedAt: '2026-11-26T02:04:31.250Z',
    durationSeconds: 271.25,
    tool: { name: 'pg-dr', version: '0.1.0' },
    source: {
      repository: 'acme/platform',
      commit: '3f2c1e0d9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e',
      ref: 'refs/heads/main',
      workflow: 'dr-backup',
      runId: '123456789',
      runAttempt: '1',
      runUrl: 'https://github.com/acme/platform/actions/runs/123456789',
      actor: 'github-actions[bot]',
    },
    database: {
      name: 'app',
      serverVersion: '17.2',
      serverVersionNum: 170002,
      pgDumpVersion: '17.2',
      sizeBytes: 1_234_567_890,
      compression: 'zstd',
      compressionLevel: 3,
      archiveBytes: 987_654_321,
      dumpSeconds: 250.5,
      rowCounts: {
        method: 'exact',
        tables: [
          { schema: 'public', table: 'users', rows: 1200 },
          { schema: 'public', table: 'orders', rows: 98_000 },
        ],
      },
    },
    config: { files: ['docker-compose.yml', 'deploy/deploy.sh'] },
    objects: [
      {
        name: 'database.dump.zst.age',
        kind: 'database',
        plaintext: { bytes: 300_000_000, sha256: SHA_A },
        encrypted: { bytes: 300_100_000, sha256: SHA_B },
      },
      {
        name: 'config.tar.gz.age',
        kind: 'config',
        plaintext: { bytes: 2048, sha256: SHA_B },
        encrypted: { bytes: 2300, sha256: SHA_A },
      },
    ],
    encryption: {
      scheme: 'age',
      mode: 'recipients',
      recipients: ['age1qcmjhlekksy092hs2l95kw0a5glnlj4fm78k6cvquw5dmchs2fxsxk9whp'],
    },
    destinations: [
      {
        name: 'b2',
        endpointHost: 's3.us-west-004.backblazeb2.com',
        bucket: 'acme-dr',
        ok: true,
        error: null,
        etags: { 'database.dump.zst.age': 'abc-20', 'config.tar.gz.age': 'def' },
        uploadSeconds: 240,
      },
      {
        name: 'r2',
        endpointHost: '0123abcd.r2.cloudflarestorage.com',
        bucket: 'acme-dr',
        ok: false,
        error: 'InternalError (HTTP 500)',
        etags: {},
        uploadSeconds: 12.5,
      },
    ],
  };
}

/** Loosely typed, to build the invalid manifests the schema must refuse. */
// biome-ignore lint/suspicious/noExplicitAny: tests delete and retype fields at will
type Loose = Record<string, any>;

/** A deep copy of the valid manifest, changed by `edit`. */
function variant(edit: (m: Loose) => void): unknown {
  const m = structuredClone(validManifest()) as Loose;
  edit(m);
  return m;
}

function issuesOf(value: unknown): string[] {
  const r = ManifestSchema.safeParse(value);
  expect(r.success).toBe(false);
  return r.success ? [] : r.error.issues.map((i) => i.path.join('.'));
}

describe('backup ids', () => {
  it('look like 20261126T020000Z-315a9c: the second, its millisecond, 12 random bits', () => {
    const id = newBackupId(new Date('2026-11-26T02:00:00.789Z'), () => Buffer.from([0xfa, 0x9c]));
    expect(id).toBe('20261126T020000Z-315a9c'); // 789 ms = 0x315
    expect(BACKUP_ID.test(id)).toBe(true);
    expect(BACKUP_ID.test(newBackupId(new Date()))).toBe(true);
    expect(BACKUP_ID.test('20261126T020000Z-7F3A9C')).toBe(false);
    expect(BACKUP_ID.test('20261126T020000Z')).toBe(false);
  });

  it('sort by creation time, within a second too', () => {
    const times = [
      '2025-12-31T23:59:59Z',
      '2025-12-31T23:59:59.100Z',
      '2025-12-31T23:59:59.999Z',
      '2026-01-01T00:00:00Z',
      '2026-01-01T00:00:01Z',
      '2026-01-01T09:00:00Z',
      '2026-01-01T10:00:00Z',
      '2026-02-01T00:00:00Z',
      '2026-11-26T02:00:00Z',
      '2027-01-01T00:00:00Z',
    ].map((t) => new Date(t));
    const ids = times.map((t) => newBackupId(t));
    const shuffled = [...ids].reverse();
    shuffled.push(...shuffled.splice(0, 3));
    expect(shuffled.sort()).toEqual(ids);
    expect(ids.map(backupIdTime)).toEqual(
      times.map((t) => new Date(Math.floor(t.getTime() / 1000) * 1000)),
    );
  });

  it('are unique and in order for 1000 runs in the same second', () => {
    const base = Date.parse('2026-11-26T02:00:00.000Z');
    const ids = Array.from({ length: 1000 }, (_, i) => newBackupId(new Date(base + i)));
    expect(new Set(ids).size).toBe(1000);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids.map((id) => id.slice(0, 16)))).toEqual(new Set(['20261126T020000Z']));
    // Within one millisecond, distinct random bits give distinct ids.
    const now = new Date(base + 500);
    let n = 0;
    const counter = () => Buffer.from([(n >> 8) & 0x0f, n++ & 0xff]);
    expect(new Set(Array.from({ length: 1000 }, () => newBackupId(now, counter))).size).toBe(1000);
    // With the real generator (12 random bits) a repeat among 50 runs of one millisecond is
    // possible (~26 %, the birthday bound) but more than three would mean a broken source.
    const real = Array.from({ length: 50 }, () => newBackupId(now));
    expect(new Set(real).size).toBeGreaterThanOrEqual(47);
    expect(real.every((id) => BACKUP_ID.test(id))).toBe(true);
  });

  it('give back their creation time, to the second', () => {
    for (let i = 0; i < 200; i++) {
      const t = new Date(Date.UTC(2000, 0, 1) + Math.floor(Math.random() * 60 * 365 * 86_400_000));
      const id = newBackupId(t, () => randomBytes(3));
      expect(backupIdTime(id).getTime()).toBe(Math.floor(t.getTime() / 1000) * 1000);
    }
    expect(backupIdTime('20261126T020000Z-7f3a9c').toISOString()).toBe('2026-11-26T02:00:00.000Z');
    expect(() => backupIdTime('latest')).toThrow('not a backup id: latest');
  });

  it('name the backup folder and its manifest', () => {
    expect(backupPrefix('disaster_recovery/', '20261126T020000Z-7f3a9c')).toBe(
      'disaster_recovery/20261126T020000Z-7f3a9c/',
    );
    expect(MANIFEST_NAME).toBe('manifest.json');
  });
});

describe('manifest schema', () => {
  it('parses a valid manifest unchanged', () => {
    const m = validManifest();
    expect(parseManifest(JSON.stringify(m))).toEqual(m);
  });

  it('accepts a passphrase-encrypted backup with gzip (no archive size) and nulls for a local run', () => {
    const v = variant((m) => {
      m.encryption = { scheme: 'age', mode: 'passphrase' };
      m.database.compression = 'gzip';
      m.database.archiveBytes = null;
      m.database.compressionLevel = null;
      for (const k of Object.keys(m.source)) m.source[k] = null;
    });
    expect(ManifestSchema.parse(v).encryption).toEqual({ scheme: 'age', mode: 'passphrase' });
  });

  it('refuses missing fields, naming where', () => {
    expect(issuesOf(variant((m) => delete m.id))).toEqual(['id']);
    expect(issuesOf(variant((m) => delete m.database.pgDumpVersion))).toEqual([
      'database.pgDumpVersion',
    ]);
    expect(issuesOf(variant((m) => delete m.objects[0].encrypted.sha256))).toEqual([
      'objects.0.encrypted.sha256',
    ]);
    expect(issuesOf(variant((m) => delete m.destinations[1].ok))).toEqual(['destinations.1.ok']);
    expect(issuesOf(variant((m) => delete m.source.commit))).toEqual(['source.commit']);
  });

  it('refuses a bad SHA-256', () => {
    for (const bad of ['A'.repeat(64), 'a'.repeat(63), 'a'.repeat(65), 'g'.repeat(64), '']) {
      expect(issuesOf(variant((m) => (m.objects[1].plaintext.sha256 = bad)))).toEqual([
        'objects.1.plaintext.sha256',
      ]);
    }
  });

  it('refuses wrong values', () => {
    expect(issuesOf(variant((m) => (m.format = 'pg-dr/2')))).toEqual(['format']);
    expect(issuesOf(variant((m) => (m.id = 'latest')))).toEqual(['id']);
    expect(issuesOf(variant((m) => (m.createdAt = 'yesterday')))).toEqual(['createdAt']);
    expect(issuesOf(variant((m) => (m.objects[0].plaintext.bytes = -1)))).toEqual([
      'objects.0.plaintext.bytes',
    ]);
    expect(issuesOf(variant((m) => (m.objects[0].encrypted.bytes = 1.5)))).toEqual([
      'objects.0.encrypted.bytes',
    ]);
    expect(issuesOf(variant((m) => (m.objects[0].kind = 'logs')))).toEqual(['objects.0.kind']);
    expect(issuesOf(variant((m) => (m.database.compression = 'lz4')))).toEqual([
      'database.compression',
    ]);
    expect(issuesOf(variant((m) => (m.tool.name = 'other')))).toEqual(['tool.name']);
    expect(issuesOf(variant((m) => (m.objects = [])))).toEqual(['objects']);
    expect(issuesOf(variant((m) => (m.destinations = [])))).toEqual(['destinations']);
    expect(
      issuesOf(
        variant((m) => (m.encryption = { scheme: 'age', mode: 'recipients', recipients: [] })),
      ),
    ).toEqual(['encryption.recipients']);
    expect(issuesOf(variant((m) => (m.encryption.scheme = 'gpg')))).toEqual(['encryption.scheme']);
  });

  it('throws a ZodError from parseManifest, and a SyntaxError for non-JSON', () => {
    expect(() => parseManifest(JSON.stringify(variant((m) => delete m.objects)))).toThrow(ZodError);
    expect(() => parseManifest('{"format":')).toThrow(SyntaxError);
  });

  // There is no field for a URL; zod's z.object strips unknown keys, so a URL with
  // credentials that slipped into a destination (or anywhere) never survives parsing.
  it('strips unknown fields such as a destination URL with credentials', () => {
    const secretUrl = 'https://AKIAEXAMPLE:wJalrXUtnFEMIsecret@s3.example.com/acme-dr';
    const v = variant((m) => {
      m.destinations[0].url = secretUrl;
      m.destinations[0].secretAccessKey = 'wJalrXUtnFEMIsecret';
      m.database.password = 'hunter2hunter2';
      m.extra = { note: 'x' };
    });
    const parsed = ManifestSchema.parse(v);
    expect(parsed).toEqual(validManifest());
    expect(Object.keys(parsed.destinations[0] ?? {})).not.toContain('url');
    const text = JSON.stringify(parsed);
    expect(text).not.toContain('wJalrXUtnFEMIsecret');
    expect(text).not.toContain('hunter2hunter2');
    expect(text).not.toContain('extra');
  });
});
