// The inputs each command uses (src/inputs/usage.ts, read from action.yml's descriptions)
// against what the parsers really read: every input a command's parser reads is in its
// list, every input in its list is read by some valid settings, and every required one is
// refused, by name, when missing.
import { beforeAll, describe, expect, it } from 'vitest';
import { InputError, InputErrors } from '../../src/errors.js';
import { COMMANDS, type Command, parseSettings } from '../../src/inputs/parse.js';
import { cliInputSource, type InputName, type InputSource } from '../../src/inputs/source.js';
import { COMMAND_NAMES } from '../../src/inputs/spec.generated.js';
import { inputsOf } from '../../src/inputs/usage.js';
import { ageKeyPair } from '../harness/fixtures.js';

let keys: { identity: string; recipient: string };
beforeAll(async () => {
  keys = await ageKeyPair();
});

const DESTINATIONS = {
  'primary-endpoint': 'https://s3.us-west-004.backblazeb2.com',
  'primary-bucket': 'acme-dr',
  'primary-access-key-id': 'key-id',
  'primary-secret-access-key': 'secret-key',
};
const SECONDARY = {
  'secondary-name': 'r2',
  'secondary-endpoint': 'https://account.r2.cloudflarestorage.com',
  'secondary-region': 'auto',
  'secondary-bucket': 'acme-dr',
  'secondary-access-key-id': 'key-id-2',
  'secondary-secret-access-key': 'secret-key-2',
};
const SSH = {
  'ssh-host': 'bastion.example.com:2222',
  'ssh-user': 'tunnel',
  'ssh-private-key': 'a private key',
  'ssh-known-hosts': 'bastion.example.com ssh-ed25519 AAAA',
};
const DB = 'postgresql://app:pw@db.example.com:5432/app';

/** Valid settings of each command: the plain ones first, then variants that read more. */
function variants(command: Command): Record<string, string>[] {
  return [...own(command), ...own(command).map((v) => ({ ...v, ...SECONDARY }))];
}

function own(command: Command): Record<string, string>[] {
  const base = { command, ...DESTINATIONS };
  switch (command) {
    case 'backup':
      return [
        { ...base, 'database-url': DB, 'age-recipients': keys.recipient },
        {
          ...base,
          'database-url': DB,
          'age-recipients': keys.recipient,
          'prune-after-backup': 'true',
          ...SSH,
        },
      ];
    case 'verify':
      return [
        base,
        {
          ...base,
          'verify-level': 'restore',
          'drill-database-url': DB,
          'age-identity': keys.identity,
          ...SSH,
        },
      ];
    case 'restore':
      return [{ ...base, 'database-url': DB, 'age-identity': keys.identity }];
    case 'wal':
      return [
        { ...base, 'database-url': DB, 'age-recipients': keys.recipient },
        { ...base, 'database-url': DB, 'age-recipients': keys.recipient, ...SSH },
      ];
    case 'wal-get':
      return [
        {
          ...base,
          'wal-file': '000000010000000000000003',
          'wal-path': '/tmp/RECOVERYXLOG',
          'age-identity': keys.identity,
        },
      ];
    default:
      return [base];
  }
}

/** An InputSource over flags that records every input read. */
function recording(inputs: Record<string, string>): InputSource & { read: Set<InputName> } {
  const src = cliInputSource(
    Object.entries(inputs).map(([k, v]) => `--${k}=${v}`),
    { HOME: '/nonexistent' },
  );
  const read = new Set<InputName>();
  return {
    read,
    get(name) {
      read.add(name);
      return src.get(name);
    },
  };
}

describe('which inputs each command uses', () => {
  it('the commands action.yml names are the commands the parsers know', () => {
    expect([...COMMAND_NAMES]).toEqual([...COMMANDS]);
  });

  it.each([...COMMANDS])('%s: reads only the inputs its list names, and all of them', (c) => {
    const listed = new Set(inputsOf(c).map((u) => u.name));
    const readAny = new Set<InputName>();
    for (const inputs of variants(c)) {
      const src = recording(inputs);
      expect(parseSettings(src, {}).command).toBe(c);
      const unlisted = [...src.read].filter((n) => !listed.has(n));
      expect(unlisted, `${c} reads inputs its list lacks`).toEqual([]);
      for (const n of src.read) readAny.add(n);
    }
    const neverRead = [...listed].filter((n) => !readAny.has(n));
    expect(neverRead, `${c}'s list names inputs its parser never reads`).toEqual([]);
  });

  it.each([...COMMANDS])('%s: each required input, missing, is refused by name', (c) => {
    const required = inputsOf(c).filter((u) => u.required);
    expect(required.map((u) => u.name)).toContain('primary-bucket');
    for (const { name } of required) {
      const inputs = { ...(variants(c)[0] as Record<string, string>) };
      expect(inputs[name], `${c}'s valid settings set ${name}`).toBeDefined();
      delete inputs[name];
      let error: unknown;
      try {
        parseSettings(recording(inputs), {});
      } catch (e) {
        error = e;
      }
      expect(error, `${c} without ${name}`).toBeInstanceOf(InputError);
      expect((error as InputError).input).toBe(name);
      expect((error as InputError).message).toContain(`'${name}'`);
    }
  });

  it('the required inputs: the primary destination, the database and the key', () => {
    const req = (c: Command) =>
      inputsOf(c)
        .filter((u) => u.required)
        .map((u) => u.name);
    const primary = [
      'primary-endpoint',
      'primary-bucket',
      'primary-access-key-id',
      'primary-secret-access-key',
    ];
    expect(req('backup')).toEqual([...primary, 'database-url', 'age-recipients']);
    expect(req('restore')).toEqual([...primary, 'database-url', 'age-identity']);
    for (const c of ['verify', 'list', 'prune', 'monitor'] as const)
      expect(req(c)).toEqual(primary);
  });
});

describe('every input error of a run at once', () => {
  it('three bad inputs: all three named, with their values, in one error', () => {
    let error: unknown;
    try {
      parseSettings(
        recording({
          command: 'backup',
          ...DESTINATIONS,
          'database-url': DB,
          'age-recipients': keys.recipient,
          compression: 'lz4',
          'keep-daily': 'abc',
          'row-counts': 'some',
          'prune-after-backup': 'true',
        }),
        {},
      );
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputErrors);
    const errors = (error as InputErrors).errors;
    expect(errors.map((e) => e.input).sort()).toEqual(['compression', 'keep-daily', 'row-counts']);
    expect((error as InputErrors).message).toMatch(/^3 inputs are invalid:\n/);
    expect((error as InputErrors).message).toContain(`Invalid 'compression': "lz4"`);
    expect((error as InputErrors).message).toContain(`Invalid 'keep-daily': "abc"`);
  });

  it('missing required inputs do not hide the bad ones after them, and no value of a secret is shown', () => {
    let error: unknown;
    try {
      parseSettings(
        recording({ command: 'restore', 'backup-id': 'yesterday', 'restore-jobs': '0' }),
        {},
      );
    } catch (e) {
      error = e;
    }
    const inputs = (error as InputErrors).errors.map((e) => e.input);
    expect(inputs).toEqual([
      'primary-endpoint',
      'primary-bucket',
      'primary-access-key-id',
      'primary-secret-access-key',
      'backup-id',
      'database-url',
      'age-identity',
      'restore-jobs',
    ]);
    expect((error as Error).message).not.toContain('stand-in');
  });

  it('one bad input: its own InputError, as before', () => {
    expect(() =>
      parseSettings(recording({ command: 'list', ...DESTINATIONS, 'source-database': 'a\tb' }), {}),
    ).toThrow(InputError);
  });

  it('a bad command stops there: the other inputs are not judged for a command not asked for', () => {
    let error: unknown;
    try {
      parseSettings(recording({ command: 'lst' }), {});
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).input).toBe('command');
  });
});
