import { describe, expect, it } from 'vitest';
import { dumpMajor, type Manifest } from '../../src/manifest/schema.js';
import { formatServerVersion, parseClientVersion } from '../../src/postgres/binaries.js';

/** Only the two fields dumpMajor reads. */
function manifest(pgDumpVersion: string, serverVersionNum: number): Manifest {
  return { database: { pgDumpVersion, serverVersionNum } } as Manifest;
}

// dumpMajor reads the manifest's own fields with the rule postgres/binaries.ts applies to
// pg_dump --version and server_version_num; the two must agree or restore picks a wrong client.
describe('dumpMajor', () => {
  it('agrees with parseClientVersion on the recorded pg_dump version', () => {
    for (const v of ['17.2', '15.18', '13.0', '10.23', '18', '9.6.24', '9.6', '9.4.26', ' 16.4']) {
      const client = parseClientVersion(`pg_dump (PostgreSQL) ${v}`);
      expect(client).not.toBeNull();
      expect(dumpMajor(manifest(v, 170002))).toBe(client?.major);
    }
  });

  it('falls back on the server version when pg_dump version is not a version', () => {
    for (const num of [170002, 150018, 130000, 100023, 90624, 90105]) {
      expect(dumpMajor(manifest('', num))).toBe(formatServerVersion(num).major);
      expect(dumpMajor(manifest('unknown', num))).toBe(formatServerVersion(num).major);
    }
  });

  it('keeps the two-part major of releases before 10', () => {
    expect(dumpMajor(manifest('9.6.24', 90624))).toBe(9.6);
    expect(dumpMajor(manifest('', 90624))).toBe(9.6);
    expect(dumpMajor(manifest('17.2', 170002))).toBe(17);
  });
});
