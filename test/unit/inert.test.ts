import { describe, expect, it } from 'vitest';
import { inert, withoutRowData } from '../../src/report/inert.js';

const HOSTILE =
  '@org/everyone <img src=x onerror=alert(1)> [click here](https://evil.example/x) `code` | cell\nsecond line www.evil.example';

describe('inert', () => {
  it('leaves no HTML, link, image, mention, code span, cell break or line break', () => {
    const out = inert(HOSTILE);
    expect(out).not.toMatch(/[<>[\]`|\n]/);
    expect(out).not.toMatch(/@org/);
    expect(out).not.toContain('https://');
    expect(out).not.toMatch(/\bwww\./);
    expect(out).toContain('&#60;img src=x onerror=alert(1)&#62;');
    expect(out).toContain('&#91;click here&#93;(https:\u200b//evil.example/x)');
    expect(out).toContain('@\u200borg/everyone');
  });

  it('reads the same once rendered: only markup characters change', () => {
    const decoded = inert(HOSTILE)
      .replace(/&#(\d+);/g, (_m, n: string) => String.fromCharCode(Number(n)))
      .replace(/\u200b/g, '');
    expect(decoded).toBe(HOSTILE.replace('\n', ' '));
  });

  it('keeps bare links clickable where asked (the job summary)', () => {
    expect(inert('see https://github.example/acme/p/issues/7', { bareLinks: 'keep' })).toBe(
      'see https://github.example/acme/p/issues/7',
    );
  });
});

describe('withoutRowData', () => {
  it('drops the lines of a client error that quote a row', () => {
    const stderr = [
      'pg_restore: error: COPY failed for table "customers": ERROR:  new row for relation "customers" violates check constraint "ok_email"',
      'DETAIL:  Failing row contains (1, alice@example.com, s3cr3t).',
      'CONTEXT:  COPY customers, line 1: "1\talice@example.com\ts3cr3t"',
      'pg_restore: error: could not execute query: ERROR:  duplicate key value violates unique constraint "u"',
      'DETAIL:  Key (email)=(bob@example.com) already exists.',
      'CONTEXT:  COPY customers, line 7, column email: "bob@example.com"',
    ].join('\n');
    const out = withoutRowData(stderr);
    expect(out).not.toMatch(/alice|bob|s3cr3t/);
    expect(out).toContain('violates check constraint "ok_email"');
    expect(out).toContain('duplicate key value violates unique constraint "u"');
    expect(out.match(/\(row data omitted\)/g)).toHaveLength(2);
  });
});
