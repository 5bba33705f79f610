// The entry point of input parsing: `parseSettings` reads the inputs every command shares
// (common.ts), then the command's own (commands/<name>.ts), built from the checks in
// primitives.ts and the per-concern parsers (destinations, keys, database, backup-id).

import { InputError, InputErrors } from '../errors.js';
import { type BackupSettings, parseBackup } from './commands/backup.js';
import { type CheckSettings, parseCheck } from './commands/check.js';
import { type ListSettings, parseList } from './commands/list.js';
import { type MonitorSettings, parseMonitor } from './commands/monitor.js';
import { type PruneSettings, parsePrune } from './commands/prune.js';
import { parseRestore, type RestoreSettings } from './commands/restore.js';
import { parseVerify, type VerifySettings } from './commands/verify.js';
import { parseWal, type WalSettings } from './commands/wal.js';
import { parseWalGet, type WalGetSettings } from './commands/wal-get.js';
import { type Command, type CommonSettings, parseCommon } from './common.js';
import { type InputName, type InputSource, specDefault } from './source.js';
import { INPUT_SPECS } from './spec.generated.js';

export type { SshSettings } from '../tunnel/settings.js';
export type { BackupSelector } from './backup-id.js';
export type { BackupSettings } from './commands/backup.js';
export type { CheckSettings } from './commands/check.js';
export type { ListSettings } from './commands/list.js';
export type { MonitorSettings } from './commands/monitor.js';
export { type PruneRules, type PruneSettings, parsePruneRules } from './commands/prune.js';
export type { RestoreSettings } from './commands/restore.js';
export type { VerifySettings } from './commands/verify.js';
export type { WalSettings } from './commands/wal.js';
export type { WalGetSettings } from './commands/wal-get.js';
export {
  COMMANDS,
  type Command,
  type CommonSettings,
  parseOutputFormat,
  SECRET_INPUTS,
} from './common.js';
export { parseBoolean, parseFraction, parseWholeNumber } from './primitives.js';

export type Settings =
  | BackupSettings
  | VerifySettings
  | RestoreSettings
  | ListSettings
  | PruneSettings
  | MonitorSettings
  | CheckSettings
  | WalSettings
  | WalGetSettings;

/** Reads a command's own inputs, once the common ones are read. */
type CommandParser<K extends Command> = (
  src: InputSource,
  common: CommonSettings,
) => Extract<Settings, { command: K }>;

/** One row per command. */
const PARSERS: { readonly [K in Command]: CommandParser<K> } = {
  backup: parseBackup,
  verify: parseVerify,
  monitor: parseMonitor,
  restore: parseRestore,
  list: parseList,
  prune: parsePrune,
  check: parseCheck,
  wal: parseWal,
  'wal-get': parseWalGet,
};

function parseOnce(src: InputSource, env: NodeJS.ProcessEnv): Settings {
  const common = parseCommon(src, env);
  return PARSERS[common.command](src, common);
}

/**
 * Valid values put in place of a bad input whose default is no better (a required one), so
 * that parsing goes on to the inputs after it. Never used for work: only to find more errors.
 */
const STAND_INS: Partial<Record<InputName, Readonly<Partial<Record<InputName, string>>>>> = {
  'primary-endpoint': { 'primary-endpoint': 'https://stand-in.invalid' },
  'primary-bucket': { 'primary-bucket': 'stand-in' },
  'primary-access-key-id': { 'primary-access-key-id': 'stand-in' },
  'primary-secret-access-key': { 'primary-secret-access-key': 'stand-in' },
  'secondary-endpoint': { 'secondary-endpoint': 'https://stand-in.invalid' },
  'secondary-bucket': { 'secondary-bucket': 'stand-in' },
  'secondary-access-key-id': { 'secondary-access-key-id': 'stand-in' },
  'secondary-secret-access-key': { 'secondary-secret-access-key': 'stand-in' },
  'database-url': { 'database-url': 'postgresql://stand_in@stand-in.invalid/stand_in' },
  'drill-database-url': { 'drill-database-url': 'postgresql://stand_in@stand-in.invalid/stand_in' },
  'age-recipients': { 'age-recipients': '', passphrase: 'stand-in passphrase' },
  'age-identity': { 'age-identity': '', passphrase: 'stand-in passphrase' },
  passphrase: { passphrase: 'stand-in passphrase' },
  'ssh-host': { 'ssh-host': 'stand-in.invalid' },
  'ssh-user': { 'ssh-user': 'stand-in' },
  'ssh-private-key': { 'ssh-private-key': 'stand-in' },
  'ssh-known-hosts': { 'ssh-known-hosts': 'stand-in' },
};

/**
 * Reads and checks every input the command uses. Every bad input of the run is reported at
 * once: after an error, the input is replaced by its default (or a stand-in) and the inputs
 * are read again, until no new input fails — at most once per input. One bad input throws
 * its InputError; several throw InputErrors. A bad `command` stops at once (the other
 * inputs would be judged for the wrong command).
 */
export function parseSettings(src: InputSource, env: NodeJS.ProcessEnv = process.env): Settings {
  const errors: InputError[] = [];
  const overlay = new Map<string, string>();
  const view: InputSource = { get: (n) => overlay.get(n) ?? src.get(n) };
  for (;;) {
    try {
      const settings = parseOnce(view, env);
      if (errors.length === 0) return settings;
      break;
    } catch (e) {
      if (!(e instanceof InputError) || errors.some((x) => x.input === e.input)) {
        if (errors.length === 0) throw e;
        break;
      }
      errors.push(e);
      if (e.input === 'command' || !(e.input in INPUT_SPECS)) break;
      const name = e.input as InputName;
      const standIn = STAND_INS[name] ?? { [name]: specDefault(name) };
      for (const [k, v] of Object.entries(standIn)) overlay.set(k, v);
    }
  }
  throw errors.length === 1 ? (errors[0] as InputError) : new InputErrors(errors);
}
