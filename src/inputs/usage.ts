// Which inputs each command uses, and which it requires: read from the start of each
// input's action.yml description (`**backup** (required), **verify**: …`), which
// scripts/gen-docs.mjs parses into spec.generated.ts. The help, the README tables and
// test/unit/input-usage.test.ts (which checks this against what the parsers read) share it.
import type { Command } from './common.js';
import type { InputName } from './source.js';
import { INPUT_NAMES } from './source.js';
import { INPUT_SPECS } from './spec.generated.js';

/** One input as a command uses it. */
export interface InputUse {
  readonly name: InputName;
  readonly required: boolean;
  /** When or how this command uses it (`level restore`, `or passphrase`); '' when plainly. */
  readonly note: string;
  /** The description without the list of commands. */
  readonly text: string;
}

/** What `pg-dr --help` says of each command, one line. A new command is one row. */
export const COMMAND_SUMMARIES: { readonly [K in Command]: string } = {
  backup: 'dump the database, encrypt it and store it at both destinations',
  verify: 'check stored backups: checksums, decryption, or a full restore drill',
  monitor: 'check that backups and verifications are recent; raise or close alert issues',
  restore: 'restore a backup into a database (a new one, switched in once complete)',
  list: 'list the backups, newest first',
  prune: 'delete old backups by the retention rules, within safety rails',
  check: 'validate every input of a set-up without taking a backup: ✓/✗ with the fix for each ✗',
  wal: 'ship the WAL written since the last run (replication slot), then stop',
  'wal-get': "fetch one WAL file for PostgreSQL: restore_command = 'pg-dr wal-get %f %p'",
};

const isRequired = (note: string) => note === 'required' || note.startsWith('required,');

function use(name: InputName, note: string): InputUse {
  return {
    name,
    required: isRequired(note),
    note: isRequired(note) ? note.slice('required'.length).replace(/^, /, '') : note,
    text: INPUT_SPECS[name].text,
  };
}

function usageOf(name: InputName): Readonly<Record<string, string>> {
  return INPUT_SPECS[name].usage as Readonly<Record<string, string>>;
}

/** The inputs every command reads (`**all commands**`), required first. */
export function commonInputs(): InputUse[] {
  return requiredFirst(
    INPUT_NAMES.flatMap((n) => {
      const note = usageOf(n)['*'];
      return note === undefined ? [] : [use(n, note)];
    }),
  );
}

/** The inputs only some commands read, as `command` uses them, required first. */
export function ownInputs(command: Command): InputUse[] {
  return requiredFirst(
    INPUT_NAMES.flatMap((n) => {
      const note = usageOf(n)[command];
      return note === undefined ? [] : [use(n, note)];
    }),
  );
}

/** Every input `command` reads: its own and the common ones. */
export function inputsOf(command: Command): InputUse[] {
  return [...commonInputs(), ...ownInputs(command)];
}

function requiredFirst(uses: InputUse[]): InputUse[] {
  return [...uses.filter((u) => u.required), ...uses.filter((u) => !u.required)];
}
