import { InputError } from '../errors.js';
import { INPUT_SPECS } from './spec.generated.js';

export type InputName = keyof typeof INPUT_SPECS;
export const INPUT_NAMES = Object.keys(INPUT_SPECS) as InputName[];

/** Where input values come from: the runner's INPUT_* variables, or CLI flags and PG_DR_* variables. */
export interface InputSource {
  /** The value given for `name`, or its action.yml default; '' when neither. */
  get(name: InputName): string;
}

/** Defaults that only make sense on a runner (`${{ github.token }}`) do not apply elsewhere. */
export function specDefault(name: InputName): string {
  const d: string = INPUT_SPECS[name].default;
  return d.includes('${{') ? '' : d;
}

/**
 * Inputs of a GitHub Action step. The runner sets INPUT_* for every input declared in
 * action.yml (defaults included); when the bundle runs without a runner (tests), an
 * absent variable falls back to the action.yml default, as the runner would.
 */
export function actionInputSource(env: NodeJS.ProcessEnv = process.env): InputSource {
  return {
    get(name) {
      const key = `INPUT_${name.replace(/ /g, '_').toUpperCase()}`;
      const raw = env[key];
      return raw === undefined ? specDefault(name) : raw.trim();
    },
  };
}

/** `--name value`, `--name=value` or a bare `--name` (= "true"), then PG_DR_<NAME>, then the default. */
export function cliInputSource(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): InputSource & { command: string | undefined; help: boolean } {
  const given = new Map<InputName, string>();
  let command: string | undefined;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      if (command === undefined) {
        command = arg;
        continue;
      }
      throw new InputError('command', `Unexpected argument "${arg}". Flags start with '--'.`);
    }
    const eq = arg.indexOf('=');
    const name = (eq >= 0 ? arg.slice(2, eq) : arg.slice(2)) as InputName;
    if (!(name in INPUT_SPECS)) {
      throw new InputError(name, `Unknown flag '--${name}'. Run 'pg-dr --help' for the list.`);
    }
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      const next = argv[i + 1];
      // A bare switch (`--force`) means true; it takes a next word only if that is a boolean.
      const isSwitch = ['true', 'false'].includes(INPUT_SPECS[name].default);
      if (
        next === undefined ||
        next.startsWith('--') ||
        (isSwitch && !/^(true|false)$/i.test(next))
      )
        value = 'true';
      else {
        value = next;
        i++;
      }
    }
    given.set(name, value);
  }
  if (command !== undefined) given.set('command', command);
  return {
    command,
    help,
    get(name) {
      const flag = given.get(name);
      if (flag !== undefined) return flag;
      const fromEnv = env[`PG_DR_${name.replace(/-/g, '_').toUpperCase()}`];
      if (fromEnv !== undefined) return fromEnv;
      if (name === 'github-token') return env.GITHUB_TOKEN ?? '';
      return specDefault(name);
    },
  };
}

export function cliHelp(): string {
  const lines = [
    'Usage: pg-dr <command> [--flag value …]',
    '',
    'Commands: backup, verify, monitor, restore, list, prune',
    'Every flag can also be set as PG_DR_<FLAG> (e.g. PG_DR_DATABASE_URL).',
    'The result goes to stdout (one JSON document with --format json); logs go to stderr.',
    '',
    'Flags:',
  ];
  for (const name of INPUT_NAMES) {
    if (name === 'command') continue;
    const spec = INPUT_SPECS[name];
    const def = specDefault(name);
    const shown = def === '' ? '' : ` (default: ${def.trim().split('\n').join(', ')})`;
    lines.push(`  --${name}${shown}`, `      ${spec.description.replace(/`/g, '')}`);
  }
  return lines.join('\n');
}
