import { describe, expect, it } from 'vitest';
import { parseRecoveryTarget } from '../../src/inputs/commands/restore.js';
import type { InputName, InputSource } from '../../src/inputs/source.js';

const source = (values: Partial<Record<InputName, string>>): InputSource => ({
  get: (name) => values[name] ?? '',
});

const time = (v: string) =>
  parseRecoveryTarget(source({ 'recovery-target-time': v }), true) as {
    kind: 'time';
    time: Date;
  };

describe('recovery targets', () => {
  it('reads a time as users type it: Z, an offset, a space, fractions', () => {
    expect(time('2026-11-30T09:35:13Z').time.toISOString()).toBe('2026-11-30T09:35:13.000Z');
    expect(time('2026-11-30 10:35:13+01:00').time.toISOString()).toBe('2026-11-30T09:35:13.000Z');
    expect(time('2026-11-30T04:35:13-0500').time.toISOString()).toBe('2026-11-30T09:35:13.000Z');
    expect(time('2026-11-30T09:35:13.25z').time.toISOString()).toBe('2026-11-30T09:35:13.250Z');
    expect(time('2026-12-01T00:30+01').time.toISOString()).toBe('2026-11-30T23:30:00.000Z');
  });

  it('refuses a time without a zone, saying why, and impossible dates', () => {
    expect(() => time('2026-11-30T09:35:13')).toThrow(
      /"2026-11-30T09:35:13"\. It has no time zone, so the moment is ambiguous/,
    );
    expect(() => time('2026-02-30T09:35:13Z')).toThrow(/Expected an ISO 8601 time with its zone/);
    expect(() => time('2026-11-30T25:00:00Z')).toThrow(/Invalid 'recovery-target-time'/);
    expect(() => time('yesterday')).toThrow(/"yesterday"/);
  });

  it('reads an LSN and latest; one target only; each needs start', () => {
    expect(parseRecoveryTarget(source({ 'recovery-target-lsn': '0/3000148' }), true)).toEqual({
      kind: 'lsn',
      lsn: '0/3000148',
    });
    expect(parseRecoveryTarget(source({ 'recovery-target': 'latest' }), true)).toEqual({
      kind: 'latest',
    });
    expect(parseRecoveryTarget(source({}), true)).toBeNull();
    expect(() => parseRecoveryTarget(source({ 'recovery-target-lsn': '3000148' }), true)).toThrow(
      /Expected a WAL position like 0\/3000148/,
    );
    expect(() => parseRecoveryTarget(source({ 'recovery-target': 'now' }), true)).toThrow(
      /"now"\. Expected latest/,
    );
    expect(() =>
      parseRecoveryTarget(
        source({ 'recovery-target': 'latest', 'recovery-target-time': '2026-11-30T09:35:13Z' }),
        true,
      ),
    ).toThrow(/Set one recovery target, not 2/);
    expect(() => parseRecoveryTarget(source({ 'recovery-target': 'latest' }), false)).toThrow(
      /needs start: true/,
    );
  });
});
