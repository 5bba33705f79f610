// The entry point of input parsing: `parseSettings` reads the inputs every command shares
// (common.ts), then the command's own (commands/<name>.ts), built from the checks in
// primitives.ts and the per-concern parsers (destinations, keys, database, backup-id).

import { type BackupSettings, parseBackup } from './commands/backup.js';
import { type CheckSettings, parseCheck } from './commands/check.js';
import { type ListSettings, parseList } from './commands/list.js';
import { type MonitorSettings, parseMonitor } from './commands/monitor.js';
import { type PruneSettings, parsePrune } from './commands/prune.js';
import { parseRestore, type RestoreSettings } from './commands/restore.js';
import { parseVerify, type VerifySettings } from './commands/verify.js';
import { type Command, type CommonSettings, parseCommon } from './common.js';
import type { InputSource } from './source.js';

export type { SshSettings } from '../tunnel/settings.js';
export type { BackupSelector } from './backup-id.js';
export type { BackupSettings } from './commands/backup.js';
export type { CheckSettings } from './commands/check.js';
export type { ListSettings } from './commands/list.js';
export type { MonitorSettings } from './commands/monitor.js';
export { type PruneRules, type PruneSettings, parsePruneRules } from './commands/prune.js';
export type { RestoreSettings } from './commands/restore.js';
export type { VerifySettings } from './commands/verify.js';
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
  | CheckSettings;

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
};

/** Reads and checks every input the command uses; throws an InputError at the first bad one. */
export function parseSettings(src: InputSource, env: NodeJS.ProcessEnv = process.env): Settings {
  const common = parseCommon(src, env);
  return PARSERS[common.command](src, common);
}
