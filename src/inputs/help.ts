// What `pg-dr --help` and `pg-dr <command> --help` print: the commands, one line each; a
// command's inputs only, required first, each with its flag, variable and default.
import { COMMANDS, type Command, SECRET_INPUTS } from './common.js';
import { envName } from './env-file.js';
import { specDefault } from './source.js';
import { COMMAND_SUMMARIES, commonInputs, type InputUse, ownInputs } from './usage.js';

const WIDTH = 80;

/** `pg-dr --help`: the commands, one line each, and the flags of the CLI itself. */
export function cliHelp(): string {
  const pad = Math.max(...COMMANDS.map((c) => c.length)) + 2;
  return [
    'Usage: pg-dr <command> [--flag value …]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.padEnd(pad)}${COMMAND_SUMMARIES[c]}`),
    '',
    "Run 'pg-dr <command> --help' for the flags of a command (its required ones first).",
    'Every flag can also be set as PG_DR_<FLAG> (e.g. PG_DR_DATABASE_URL), or in a file',
    'given with --env-file FILE (PG_DR_<FLAG>=value lines).',
    '',
    ...CLI_FLAGS,
    '',
    'The result goes to stdout (one JSON document with --format json); logs go to stderr.',
    'Exit status: 0 ok, 1 the command failed, 2 bad usage (an unknown command or flag, a bad input).',
  ].join('\n');
}

const CLI_FLAGS = [
  'Flags of pg-dr itself:',
  '  --env-file FILE  read PG_DR_<FLAG>=value lines (comments, quotes); values are never shown',
  '  -v, --verbose    also the lines kept quiet by default (audit artifact, unsent alerts)',
  '  -h, --help       this help; with a command, that command’s flags',
  '  -V, --version    the version of pg-dr',
];

/**
 * `pg-dr <command> --help`: only the inputs `command` reads, required first, each with the
 * first sentence of its description (`full`, with --verbose: all of it).
 */
export function commandHelp(command: Command, full = false): string {
  const entry = (u: InputUse) => describe(u, full);
  const own = ownInputs(command);
  const common = commonInputs().filter((u) => u.name !== 'command');
  const required = [...common, ...own].filter((u) => u.required);
  return [
    `Usage: pg-dr ${command} [--flag value …]`,
    '',
    `${capitalised(COMMAND_SUMMARIES[command])}.`,
    '',
    'Required:',
    ...required.flatMap(entry),
    '',
    `Options of ${command}:`,
    ...own.filter((u) => !u.required).flatMap(entry),
    '',
    'Options of every command (destinations, alerts, output):',
    ...common.filter((u) => !u.required).flatMap(entry),
    '',
    ...CLI_FLAGS,
    ...(full ? [] : ['', `pg-dr ${command} --help --verbose describes each flag in full.`]),
  ].join('\n');
}

/** `--name  PG_DR_NAME  (default: x)`, then the description (or its first sentence), wrapped. */
function describe(u: InputUse, full: boolean): string[] {
  const def = specDefault(u.name).trim().split('\n').join(', ');
  const facts = [
    u.note === '' ? '' : plain(u.note),
    def === '' ? '' : `default: ${def}`,
    (SECRET_INPUTS as readonly string[]).includes(u.name) ? 'secret: prefer the variable' : '',
  ].filter((f) => f !== '');
  const head = `  --${u.name}  ${envName(u.name)}${facts.length ? `  (${facts.join('; ')})` : ''}`;
  const text = full ? u.text : firstSentence(u.text);
  return [head, ...wrap(plain(text), 6)];
}

/** Up to the first full stop that ends a sentence (`e.g. x` does not). */
function firstSentence(text: string): string {
  const m = /\.\s+(?=[A-Z])/.exec(text);
  return m ? text.slice(0, m.index + 1) : text;
}

/** Markdown as a terminal shows it: no backticks or bold marks. */
function plain(s: string): string {
  return s.replace(/`/g, '').replace(/\*\*/g, '');
}

function wrap(text: string, indent: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && indent + line.length + 1 + word.length > WIDTH) {
      lines.push(' '.repeat(indent) + line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(' '.repeat(indent) + line);
  return lines;
}

function capitalised(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
