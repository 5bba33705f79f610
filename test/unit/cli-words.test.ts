// The CLI's small helpers: "did you mean", --env-file, the CLI's wording, colour.
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { cliWording } from '../../src/inputs/cli-wording.js';
import { parseEnvFile } from '../../src/inputs/env-file.js';
import { closest, editDistance } from '../../src/inputs/suggest.js';
import { colourFor, paint } from '../../src/report/colour.js';

describe('did you mean', () => {
  it('finds the nearest name, and none when nothing is near', () => {
    expect(editDistance('lst', 'list')).toBe(1);
    expect(editDistance('databse-url', 'database-url')).toBe(1);
    expect(editDistance('keep-dialy', 'keep-daily')).toBe(1);
    const commands = ['backup', 'verify', 'monitor', 'restore', 'list', 'prune'];
    expect(closest('lst', commands)).toBe('list');
    expect(closest('restor', commands)).toBe('restore');
    expect(closest('BACKUP', commands)).toBe('backup');
    expect(closest('explode', commands)).toBeUndefined();
    expect(closest('x', commands)).toBeUndefined();
    expect(closest('PG_DR_DATABSE_URL', ['PG_DR_DATABASE_URL', 'PG_DR_PREFIX'])).toBe(
      'PG_DR_DATABASE_URL',
    );
  });
});

describe('--env-file', () => {
  it('reads PG_DR_ lines: export, comments, quotes, a double-quoted value over several lines', () => {
    const m = parseEnvFile(
      [
        '# settings',
        '',
        'export PG_DR_PRIMARY_NAME=b2',
        "PG_DR_PRIMARY_BUCKET='acme # not a comment'",
        'PG_DR_PREFIX=dr/   # a comment',
        'PG_DR_PASSPHRASE="a \\"quoted\\" pass\\\\phrase"',
        'PG_DR_SSH_PRIVATE_KEY="line one',
        'line two"',
        'PG_DR_AGE_IDENTITY="a\\nb"',
        'PG_DR_KEEP_DAILY = 5',
      ].join('\n'),
      'f.env',
    );
    expect(Object.fromEntries(m)).toEqual({
      'primary-name': 'b2',
      'primary-bucket': 'acme # not a comment',
      prefix: 'dr/',
      passphrase: 'a "quoted" pass\\phrase',
      'ssh-private-key': 'line one\nline two',
      'age-identity': 'a\nb',
      'keep-daily': '5',
    });
  });

  it('refuses an unknown variable or a broken line, naming the line, never the value', () => {
    const bad = (text: string) => {
      try {
        parseEnvFile(text, 'f.env');
      } catch (e) {
        expect(e).toBeInstanceOf(InputError);
        return (e as Error).message;
      }
      throw new Error('expected an error');
    };
    const typo = bad('PG_DR_PREFIX=x/\nPG_DR_DATABSE_URL=postgresql://u:hunter22@h/db\n');
    expect(typo).toBe(
      "--env-file f.env, line 2: unknown variable PG_DR_DATABSE_URL. Did you mean 'PG_DR_DATABASE_URL'? Expected PG_DR_<INPUT> names (pg-dr <command> --help lists them).",
    );
    expect(bad('DATABASE_URL=postgresql://u:hunter22@h/db')).not.toContain('hunter22');
    expect(bad('just some text hunter22')).toMatch(
      /^--env-file f\.env, line 1: not a NAME=value line/,
    );
    expect(bad('PG_DR_PASSPHRASE="hunter22 never closed')).toBe(
      '--env-file f.env, line 1: PG_DR_PASSPHRASE\'s value has no closing ".',
    );
  });
});

describe('CLI wording', () => {
  it('inputs read as flags, a missing one with its variable', () => {
    expect(cliWording('Invalid \'keep-daily\': "abc". Expected a whole number ≥ 0.')).toBe(
      'Invalid --keep-daily: "abc". Expected a whole number ≥ 0.',
    );
    expect(cliWording("Missing 'database-url'. Expected a URL.")).toBe(
      'Missing --database-url (or PG_DR_DATABASE_URL). Expected a URL.',
    );
    expect(
      cliWording(
        'Restore into a new or empty database, or set force: true: it then … (drop-previous: true)',
      ),
    ).toBe('Restore into a new or empty database, or pass --force: it then … (--drop-previous)');
    expect(cliWording("set 'source-database' to choose")).toBe('set --source-database to choose');
    // Not an input: left alone.
    expect(cliWording("'GITHUB_WORKSPACE' and 'no-such-input' and force-path-style: true")).toBe(
      "'GITHUB_WORKSPACE' and 'no-such-input' and --force-path-style",
    );
  });
});

describe('colour', () => {
  it('only on a TTY, never with NO_COLOR or TERM=dumb', () => {
    expect(colourFor({ isTTY: true }, {})).toBe(true);
    expect(colourFor({ isTTY: false }, {})).toBe(false);
    expect(colourFor({}, {})).toBe(false);
    expect(colourFor({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    // https://no-color.org: an empty NO_COLOR does not count.
    expect(colourFor({ isTTY: true }, { NO_COLOR: '' })).toBe(true);
    expect(colourFor({ isTTY: true }, { TERM: 'dumb' })).toBe(false);
  });

  it('colours the marks and the prefixes, nothing else', () => {
    expect(paint('error: x')).toBe('\u001b[1;31merror:\u001b[0m x');
    expect(paint('warning: y')).toBe('\u001b[33mwarning:\u001b[0m y');
    expect(paint('✓ ok ✗ bad')).toBe('\u001b[32m✓\u001b[0m ok \u001b[31m✗\u001b[0m bad');
    expect(paint('plain text')).toBe('plain text');
  });
});

describe('PG_DR_ENV_FILE (restore_command names its settings file so)', () => {
  it('is read like --env-file, which wins; a missing file is pg-dr’s error, not Node’s exit 9', async () => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { cliInputSource } = await import('../../src/inputs/source.js');
    const dir = await mkdtemp(join(tmpdir(), 'pg-dr-envfile-'));
    try {
      await writeFile(join(dir, 'a.env'), 'PG_DR_PREFIX=from-variable/\n');
      await writeFile(join(dir, 'b.env'), 'PG_DR_PREFIX=from-flag/\n');
      const env = { PG_DR_ENV_FILE: join(dir, 'a.env') };
      expect(cliInputSource(['list'], env).get('prefix')).toBe('from-variable/');
      expect(cliInputSource(['list', '--env-file', join(dir, 'b.env')], env).get('prefix')).toBe(
        'from-flag/',
      );
      expect(() => cliInputSource(['list'], { PG_DR_ENV_FILE: join(dir, 'gone.env') })).toThrow(
        /Cannot read --env-file ".*gone\.env": ENOENT/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
