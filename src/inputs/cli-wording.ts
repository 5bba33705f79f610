// Messages are written in the action's words ('source-database', set force: true); on the
// command line the same setting is a flag (--source-database, --force) or a variable
// (PG_DR_FORCE). The CLI host runs every line through cliWording.
import { envName } from './env-file.js';
import { INPUT_NAMES, type InputName } from './source.js';

/** Longest first, so `max-backup-age-hours` is never read as a shorter name. */
const NAMES = [...INPUT_NAMES].sort((a, b) => b.length - a.length).join('|');
const MISSING = new RegExp(`Missing '(${NAMES})'`, 'g');
const SET_TRUE = new RegExp(`\\bset (${NAMES}): true\\b`, 'g');
const TRUE = new RegExp(`(?<![\\w-])(${NAMES}): true\\b`, 'g');
const QUOTED = new RegExp(`'(${NAMES})'`, 'g');

/** A message as the CLI user should read it: inputs as flags, a missing one with its variable. */
export function cliWording(message: string): string {
  return message
    .replace(MISSING, (_, n: string) => `Missing --${n} (or ${envName(n as InputName)})`)
    .replace(SET_TRUE, (_, n: string) => `pass --${n}`)
    .replace(TRUE, (_, n: string) => `--${n}`)
    .replace(QUOTED, (_, n: string) => `--${n}`);
}
