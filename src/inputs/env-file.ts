import { readFileSync } from 'node:fs';
import { InputError } from '../errors.js';
import type { InputName } from './source.js';
import { INPUT_SPECS } from './spec.generated.js';
import { didYouMean } from './suggest.js';

/** The PG_DR_<NAME> variable of an input. */
export function envName(name: InputName): string {
  return `PG_DR_${name.replace(/-/g, '_').toUpperCase()}`;
}

const BY_ENV = new Map((Object.keys(INPUT_SPECS) as InputName[]).map((n) => [envName(n), n]));

/**
 * Reads `--env-file FILE`: `PG_DR_NAME=value` lines (an `export ` in front is allowed),
 * `#` comments and blank lines; a value in single quotes is taken as it is, one in double
 * quotes may span lines and knows `\n`, `\"` and `\\`. Errors name the file, the line and
 * the variable, never a value (the file holds secrets).
 */
export function readEnvFile(path: string): Map<InputName, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new InputError(
      'env-file',
      `Cannot read --env-file "${path}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}. Expected a readable file of PG_DR_NAME=value lines.`,
    );
  }
  return parseEnvFile(text, path);
}

export function parseEnvFile(text: string, path: string): Map<InputName, string> {
  const out = new Map<InputName, string>();
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === '' || line.startsWith('#')) continue;
    const where = `--env-file ${path}, line ${i + 1}`;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m)
      throw new InputError(
        'env-file',
        `${where}: not a NAME=value line. Expected e.g. PG_DR_PRIMARY_BUCKET=acme-dr.`,
      );
    const key = m[1] as string;
    const name = BY_ENV.get(key);
    if (name === undefined)
      throw new InputError(
        'env-file',
        `${where}: unknown variable ${key}.${didYouMean(key, BY_ENV.keys())} Expected PG_DR_<INPUT> names (pg-dr <command> --help lists them).`,
      );
    let value = m[2] as string;
    if (value.startsWith("'")) {
      const end = value.indexOf("'", 1);
      if (end < 0) throw new InputError('env-file', `${where}: ${key}'s value has no closing '.`);
      value = value.slice(1, end);
    } else if (value.startsWith('"')) {
      let raw = value.slice(1);
      while (!/(^|[^\\])(\\\\)*"/.test(raw) && i + 1 < lines.length) raw += `\n${lines[++i]}`;
      const close = /(^|[^\\])(\\\\)*"/.exec(raw);
      if (!close) throw new InputError('env-file', `${where}: ${key}'s value has no closing ".`);
      value = raw
        .slice(0, close.index + close[0].length - 1)
        .replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
    } else value = value.replace(/\s+#.*$/, '').trim();
    out.set(name, value);
  }
  return out;
}
