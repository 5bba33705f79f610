/**
 * The fixes `check` gives when the server refuses a physical replication connection
 * (check/physical.ts): read from the server's SQLSTATE and words, with the pg_hba.conf line
 * to add for the address the server saw, the role quoted as pg_hba.conf reads it.
 */
import { describe, expect, it } from 'vitest';
import { hbaName, replicationFix } from '../../src/check/physical.js';
import { SqlError } from '../../src/postgres/session.js';

describe('hbaName', () => {
  it.each([
    ['postgres', 'postgres'],
    ['backup_role', 'backup_role'],
    ['Backup', 'Backup'],
    ['all', '"all"'],
    ['replication', '"replication"'],
    ['ops team', '"ops team"'],
    ['+admins', '"+admins"'],
    ['we"ird', '"we""ird"'],
  ])('%s → %s', (name, quoted) => {
    expect(hbaName(name)).toBe(quoted);
  });
});

describe('replicationFix', () => {
  const hba = (host: string) =>
    new SqlError(
      `FATAL: no pg_hba.conf entry for replication connection from host "${host}", user "backup", no encryption`,
      '28000',
    );

  it('no pg_hba line: the line to add, with the address the server saw as a CIDR, and the reload', () => {
    expect(replicationFix(hba('10.0.3.7'), 'backup')).toMatch(
      /^Add the line "host replication backup 10\.0\.3\.7\/32 scram-sha-256" to pg_hba\.conf .*SELECT pg_reload_conf\(\).*use mode: logical\.$/,
    );
    expect(replicationFix(hba('fd00::7'), 'ops team')).toMatch(
      /"host replication "ops team" fd00::7\/128 scram-sha-256"/,
    );
  });

  it('the role may not start a WAL sender (42501): ALTER ROLE, pg_hba.conf let it in', () => {
    const e = new SqlError(
      'FATAL: must be superuser or replication role to start walsender',
      '42501',
    );
    expect(replicationFix(e, 'backup')).toMatch(
      /^ALTER ROLE backup REPLICATION \(see the role row\)/,
    );
  });

  it('every WAL sender taken (53300): raise max_wal_senders', () => {
    const e = new SqlError(
      'FATAL: number of requested standby connections exceeds max_wal_senders (currently 1)',
      '53300',
    );
    expect(replicationFix(e, 'backup')).toMatch(
      /^Every WAL sender is in use: raise max_wal_senders/,
    );
  });

  it('a password the replication line refuses (28P01)', () => {
    const e = new SqlError('FATAL: password authentication failed for user "backup"', '28P01');
    expect(replicationFix(e, 'backup')).toMatch(/user and password in 'database-url'/);
  });

  it('anything else (a managed service closing the connection): the line, max_wal_senders, mode logical', () => {
    const e = new SqlError('Connection terminated unexpectedly', null);
    expect(replicationFix(e, 'backup')).toMatch(
      /"host replication backup <address> scram-sha-256".*max_wal_senders above 0.*use mode: logical\.$/,
    );
  });
});
