import { describe, expect, it } from 'vitest';
import { Manifest } from '../../src/manifest/schema.js';
import {
  checkPhysicalServer,
  checkTablespaces,
  parseBackupLabel,
  parseManifestWal,
} from '../../src/postgres/basebackup.js';

const LABEL = `START WAL LOCATION: 0/3000220 (file 000000010000000000000003)
CHECKPOINT LOCATION: 0/3000258
BACKUP METHOD: streamed
BACKUP FROM: primary
START TIME: 2026-11-30 19:55:24 UTC
LABEL: pg-dr 20261130T195524Z-0d5da3
START TIMELINE: 1
`;

describe('a base backup’s own facts', () => {
  it('reads the start LSN and timeline from backup_label', () => {
    expect(parseBackupLabel(LABEL)).toEqual({ startLsn: '0/3000220', timeline: 1 });
    expect(() => parseBackupLabel('LABEL: x\n')).toThrow(/no start location or timeline/);
  });

  it('reads the end LSN and end timeline from backup_manifest, across a timeline switch', () => {
    const manifest = JSON.stringify({
      'PostgreSQL-Backup-Manifest-Version': 1,
      Files: [],
      'WAL-Ranges': [
        { Timeline: 3, 'Start-LSN': '0/5000000', 'End-LSN': '0/6000100' },
        { Timeline: 2, 'Start-LSN': '0/4000028', 'End-LSN': '0/5000000' },
      ],
    });
    expect(parseManifestWal(manifest)).toEqual({
      timeline: 3,
      startLsn: '0/4000028',
      endLsn: '0/6000100',
    });
    expect(() => parseManifestWal('{"Files": []}')).toThrow(/no WAL-Ranges/);
  });

  it('refuses tablespaces of the cluster’s own, naming each with its location', () => {
    const builtIn = [
      { name: 'pg_default', location: '' },
      { name: 'pg_global', location: '' },
    ];
    expect(() => checkTablespaces(builtIn)).not.toThrow();
    expect(() =>
      checkTablespaces([...builtIn, { name: 'fast', location: '/mnt/nvme/pg' }]),
    ).toThrow('this one has 1: "fast" (/mnt/nvme/pg)');
  });

  it('needs PostgreSQL 13 or newer (backup_manifest)', () => {
    expect(() => checkPhysicalServer(120022, '12.22')).toThrow(
      /mode physical needs PostgreSQL 13 or newer.*the server runs 12\.22/,
    );
    expect(() => checkPhysicalServer(130000, '13.0')).not.toThrow();
  });
});

describe('the manifest of a physical backup', () => {
  it('old manifests (no mode, no physical facts) still parse; kind base is accepted', () => {
    const shape = Manifest.shape;
    expect(shape.mode.safeParse(undefined).success).toBe(true);
    expect(shape.physical.safeParse(undefined).success).toBe(true);
    expect(shape.objects.element.shape.kind.safeParse('base').success).toBe(true);
    expect(shape.objects.element.shape.kind.safeParse('tarball').success).toBe(false);
    expect(
      shape.physical.safeParse({
        pgBasebackupVersion: '15.18',
        timeline: 1,
        startLsn: '0/3000220',
        endLsn: 'not an lsn',
        backupLabel: LABEL,
        tablespaces: [],
      }).success,
    ).toBe(false);
  });
});
