import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { causeOf } from '../../src/postgres/stderr.js';

/** Real stderr of PostgreSQL 15 clients, captured from real failures (see each name). */
const sample = (name: string) =>
  readFileSync(join(import.meta.dirname, 'fixtures', 'stderr', `${name}.txt`), 'utf8');

describe('causeOf', () => {
  it('pg_dump out of lock slots: the ERROR and its HINT, not the LOCK TABLE statement', () => {
    expect(causeOf(sample('pg_dump-out-of-shared-memory'))).toBe(
      'pg_dump: error: query failed: ERROR: out of shared memory | HINT: You might need to increase max_locks_per_transaction.',
    );
  });

  it('pg_restore on a failing CREATE TABLE: the ERROR line, not the body of the statement', () => {
    const out = causeOf(sample('pg_restore-create-table'));
    expect(out).toBe(
      'pg_restore: error: could not execute query: ERROR: relation "x" already exists',
    );
    expect(out).not.toMatch(/CREATE TABLE|integer/);
  });

  it('never the row data of a failing COPY', () => {
    const out = causeOf(sample('pg_restore-duplicate-key'));
    expect(out).toBe(
      'pg_restore: error: COPY failed for table "x": ERROR: duplicate key value violates unique constraint "x_pkey" | (row data omitted)',
    );
    expect(out).not.toMatch(/\(1\)|Key/);
  });

  it("a backend terminated mid-COPY: libpq's words, not the COPY command", () => {
    expect(causeOf(sample('pg_dump-backend-terminated'))).toBe(
      'pg_dump: error: Dumping the contents of table "big" failed: PQgetCopyData() failed. | pg_dump: detail: Error message from server: server closed the connection unexpectedly | This probably means the server terminated abnormally | before or while processing the request.',
    );
  });

  it('a FATAL at connection', () => {
    expect(causeOf(sample('pg_dump-fatal-role'))).toMatch(
      /pg_dump: error: connection to server .* failed: FATAL: role "nosuch" does not exist$/,
    );
  });

  it('the last lines when nothing names an error, and "no message" when empty', () => {
    expect(causeOf('one\ntwo\nthree\nfour')).toBe('two | three | four');
    expect(causeOf('')).toBe('no message');
    expect(causeOf(undefined)).toBe('no message');
  });

  it('a short DETAIL stays, a long one goes', () => {
    const short = 'ERROR:  role "x" cannot be dropped\nDETAIL:  owner of database y\n';
    expect(causeOf(short)).toBe('ERROR: role "x" cannot be dropped | DETAIL: owner of database y');
    const long = `ERROR:  boom\nDETAIL:  ${'z'.repeat(300)}\n`;
    expect(causeOf(long)).toBe('ERROR: boom');
  });
});
