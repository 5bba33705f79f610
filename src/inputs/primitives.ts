import { InputError } from '../errors.js';
import type { InputName, InputSource } from './source.js';

/** One of `values`, exactly as written (after trimming). */
export function parseOneOf<T extends string>(
  src: InputSource,
  name: InputName,
  values: readonly T[],
): T {
  const v = src.get(name).trim();
  if ((values as readonly string[]).includes(v)) return v as T;
  throw new InputError(name, `Invalid '${name}': "${v}". Expected one of: ${values.join(', ')}.`);
}

/** `true` or `false`, in any case; `expected` names what else the input takes, when it does. */
export function parseBoolean(
  src: InputSource,
  name: InputName,
  expected = 'true or false',
): boolean {
  const v = src.get(name).trim().toLowerCase();
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new InputError(name, `Invalid '${name}': "${src.get(name)}". Expected ${expected}.`);
}

/** An upper bound of a whole number, and the unit its message names (`seconds`), if any. */
export interface UpperBound {
  readonly max: number;
  readonly unit?: string;
}

/**
 * A whole number ≥ `min`; with `upTo`, also ≤ its `max`, the message then giving the range
 * ("Expected a whole number of seconds from 1 to 3600.").
 */
export function parseWholeNumber(
  src: InputSource,
  name: InputName,
  min = 0,
  upTo?: UpperBound,
): number {
  const v = src.get(name).trim();
  if (!/^\d+$/.test(v) || Number(v) < min || !Number.isSafeInteger(Number(v)))
    throw new InputError(name, `Invalid '${name}': "${v}". Expected a whole number ≥ ${min}.`);
  const n = Number(v);
  if (upTo !== undefined && n > upTo.max) {
    const what = upTo.unit === undefined ? 'a whole number' : `a whole number of ${upTo.unit}`;
    throw new InputError(
      name,
      `Invalid '${name}': "${n}". Expected ${what} from ${min} to ${upTo.max}.`,
    );
  }
  return n;
}

/** A number from 0 to 1 (a rate). */
export function parseFraction(src: InputSource, name: InputName): number {
  const v = src.get(name).trim();
  const n = Number(v);
  if (!/^(0(\.\d+)?|1(\.0+)?|\.\d+)$/.test(v) || n < 0 || n > 1)
    throw new InputError(name, `Invalid '${name}': "${v}". Expected a number from 0 to 1.`);
  return n;
}

export function hasControlCharacters(v: string): boolean {
  return [...v].some((c) => c.charCodeAt(0) < 0x20);
}

/**
 * A value that must be set; `what` says what is expected. A secret is not checked for
 * control characters (a key may hold newlines).
 */
export function parseRequired(
  src: InputSource,
  name: InputName,
  what: string,
  secret = false,
): string {
  const v = src.get(name).trim();
  if (v === '') throw new InputError(name, `Missing '${name}'. Expected ${what}.`);
  if (!secret && hasControlCharacters(v))
    throw new InputError(name, `Invalid '${name}': contains control characters. Expected ${what}.`);
  return v;
}

/** A comma-separated list; blanks dropped. */
export function parseCommaList(src: InputSource, name: InputName): string[] {
  return src
    .get(name)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/**
 * An http(s) URL whose value is a secret (a heartbeat check, a chat webhook): empty → null.
 * The message names the input and what was expected, never the value.
 */
export function parseSecretUrl(src: InputSource, name: InputName, example: string): string | null {
  const v = src.get(name).trim();
  if (!v) return null;
  const invalid = () =>
    new InputError(
      name,
      `Invalid '${name}' (its value is secret and not shown): expected an http:// or https:// URL such as ${example}.`,
    );
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw invalid();
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || /\s/.test(v)) throw invalid();
  return url.toString();
}
