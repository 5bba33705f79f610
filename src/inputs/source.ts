import { InputError } from '../errors.js';
import { envName, readEnvFile } from './env-file.js';
import { INPUT_SPECS } from './spec.generated.js';
import { didYouMean } from './suggest.js';

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

/** What the command line asked for, besides the inputs. */
export interface CliArgs extends InputSource {
  /** The first word (`restore`), as typed; undefined when none. */
  readonly command: string | undefined;
  /** `--help`, `-h` or `help [command]`. */
  readonly help: boolean;
  /** `--version`, `-V` or `version`. */
  readonly version: boolean;
  /** `--verbose`, `-v`: also the lines only a reader looking for detail wants. */
  readonly verbose: boolean;
}

/** Flags of the CLI itself, not inputs. */
const SWITCHES = ['help', 'version', 'verbose'] as const;
const CLI_FLAGS = [...SWITCHES, 'env-file'];

/**
 * `--name value`, `--name=value` or a bare `--name` (= "true"), then PG_DR_<NAME>, then
 * `--env-file FILE`'s PG_DR_<NAME>, then the default. A misspelt flag is refused with the
 * nearest one.
 */
/**
 * The env file's path as a variable (`--env-file` wins): PostgreSQL's restore_command passes
 * it this way, because Node 20 itself takes a `--env-file` anywhere on the command line and
 * exits 9 when the file is missing (nodejs/node#54232) — which PostgreSQL would read as "no
 * such WAL file", the end of recovery.
 */
export const ENV_FILE_VARIABLE = 'PG_DR_ENV_FILE';

export function cliInputSource(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): CliArgs {
  const given = new Map<InputName, string>();
  const words: string[] = [];
  const cli = {
    help: false,
    version: false,
    verbose: false,
    envFile: undefined as string | undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const short = { '-h': 'help', '-V': 'version', '-v': 'verbose' }[arg];
    if (short !== undefined || (SWITCHES as readonly string[]).includes(arg.slice(2))) {
      cli[(short ?? arg.slice(2)) as (typeof SWITCHES)[number]] = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      words.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    const takeValue = (isSwitch: boolean): string => {
      if (eq >= 0) return arg.slice(eq + 1);
      const next = argv[i + 1];
      // A bare switch (`--force`) means true; it takes a next word only if that is a boolean.
      if (
        next === undefined ||
        next.startsWith('--') ||
        (isSwitch && !/^(true|false)$/i.test(next))
      )
        return 'true';
      i++;
      return next;
    };
    if (flag === 'env-file') {
      cli.envFile = takeValue(false);
      continue;
    }
    if (!(flag in INPUT_SPECS))
      throw new InputError(
        flag,
        `Unknown flag '--${flag}'.${didYouMean(flag, [...INPUT_NAMES.filter((n) => n !== 'command'), ...CLI_FLAGS], (f) => `--${f}`)} Run 'pg-dr <command> --help' for its flags.`,
      );
    const name = flag as InputName;
    given.set(name, takeValue(['true', 'false'].includes(INPUT_SPECS[name].default)));
  }
  if (words[0] === 'help') {
    cli.help = true;
    words.shift();
  } else if (words[0] === 'version') {
    cli.version = true;
    words.shift();
  }
  const [command, ...rest] = words;
  // `pg-dr wal-get %f %p`: PostgreSQL's restore_command gives the file and the path as words.
  if (command === 'wal-get') {
    const [file, path] = rest.splice(0, 2);
    if (file !== undefined) given.set('wal-file', file);
    if (path !== undefined) given.set('wal-path', path);
  }
  const extra = rest[0];
  if (extra !== undefined)
    throw new InputError('command', `Unexpected argument "${extra}". Flags start with '--'.`);
  if (command !== undefined) given.set('command', command);
  const fromFile =
    (cli.envFile ?? env[ENV_FILE_VARIABLE]) === undefined
      ? new Map<InputName, string>()
      : readEnvFile((cli.envFile ?? env[ENV_FILE_VARIABLE]) as string);
  return {
    command,
    help: cli.help,
    version: cli.version,
    verbose: cli.verbose,
    get(name) {
      const flag = given.get(name);
      if (flag !== undefined) return flag;
      const fromEnv = env[envName(name)];
      if (fromEnv !== undefined) return fromEnv;
      const fromEnvFile = fromFile.get(name);
      if (fromEnvFile !== undefined) return fromEnvFile;
      if (name === 'github-token') return env.GITHUB_TOKEN ?? '';
      return specDefault(name);
    },
  };
}
