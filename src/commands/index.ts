import type { Settings } from '../inputs/parse.js';
import { runBackup } from './backup.js';
import { runCheck } from './check.js';
import type { Command, CommandResult, Context, Handler, Handlers } from './command.js';
import { runList } from './list.js';
import { runMonitor } from './monitor.js';
import { runPrune } from './prune.js';
import { runRestore } from './restore.js';
import { runVerify } from './verify.js';
import { runWal } from './wal.js';
import { runWalGet } from './wal-get.js';

/** Every command, by name: adding one is its file, a row here, and its inputs in action.yml. */
export const HANDLERS: Handlers = {
  backup: runBackup,
  verify: runVerify,
  restore: runRestore,
  list: runList,
  prune: runPrune,
  monitor: runMonitor,
  check: runCheck,
  wal: runWal,
  'wal-get': runWalGet,
};

/** Runs the command the settings name. */
export function dispatch<K extends Command>(
  settings: Extract<Settings, { command: K }>,
  ctx: Context,
): Promise<CommandResult> {
  const handler: Handler<K> = HANDLERS[settings.command as K];
  return handler(settings, ctx);
}
