import { InputError } from '../errors.js';

/** The input these globs come from; every error about them names it. */
export const CONFIG_PATHS_INPUT = 'config-paths';

/**
 * What a platform usually needs to be rebuilt: compose files, Dockerfiles, env
 * templates and deploy scripts. Mirrors the `config-paths` default in action.yml.
 */
export const DEFAULT_CONFIG_PATHS: readonly string[] = Object.freeze([
  '**/docker-compose*.yml',
  '**/docker-compose*.yaml',
  '**/compose*.yml',
  '**/compose*.yaml',
  '**/Dockerfile',
  '**/Dockerfile.*',
  '**/*.Dockerfile',
  '**/.dockerignore',
  '**/*.env.example',
  'deploy/**',
]);

/**
 * Parses the `config-paths` input: one glob per line, blank lines and `#` comment
 * lines skipped. A line starting with `!` excludes what it matches. Throws an
 * InputError naming `config-paths` for an absolute path, a `..` segment or a glob
 * that cannot be right (an unclosed `[`, `{` or `(`).
 */
export function parseConfigPaths(text: string): string[] {
  const patterns: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    patterns.push(checkConfigPattern(line));
  }
  return patterns;
}

/** Validates one glob (as parseConfigPaths does) and returns it without a leading `./`. */
export function checkConfigPattern(pattern: string): string {
  const negated = pattern.startsWith('!');
  let body = negated ? pattern.slice(1) : pattern;
  while (body.startsWith('./')) body = body.slice(2);

  if (body === '' || body.includes('\0')) {
    throw invalid(pattern, 'Expected a non-empty glob, one per line.');
  }
  if (isAbsoluteLike(body) || escapesUpward(body)) {
    throw invalid(pattern, "Expected globs relative to the workspace (no '..', not absolute).");
  }
  const problem = globSyntaxProblem(body);
  if (problem !== null) {
    throw invalid(pattern, `Expected a valid glob, one per line; this one has ${problem}.`);
  }
  return negated ? `!${body}` : body;
}

function invalid(pattern: string, expected: string): InputError {
  return new InputError(
    CONFIG_PATHS_INPUT,
    `Invalid '${CONFIG_PATHS_INPUT}': ${JSON.stringify(pattern)}. ${expected}`,
  );
}

/** `/x`, `\x`, `C:x`, `~/x`: anything that points away from the workspace root. */
function isAbsoluteLike(body: string): boolean {
  return /^(?:[/\\~]|[A-Za-z]:)/.test(body);
}

/**
 * A `..` segment, also inside a brace or extglob alternative (`{..,x}/etc`), which
 * would expand to one.
 */
function escapesUpward(body: string): boolean {
  return /(?:^|[/\\{,(|])\.\.(?:$|[/\\},)|])/.test(body);
}

/** Describes the first structural error of a glob, or null when it has none. */
function globSyntaxProblem(glob: string): string | null {
  let braces = 0;
  let parens = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '\\') {
      i++; // the next character is literal
    } else if (c === '[') {
      const end = bracketEnd(glob, i);
      if (end < 0) return "an unclosed '['";
      i = end;
    } else if (c === '{') {
      braces++;
    } else if (c === '}') {
      if (braces === 0) return "a '}' without its '{'";
      braces--;
    } else if (c === '(') {
      parens++;
    } else if (c === ')') {
      if (parens === 0) return "a ')' without its '('";
      parens--;
    }
  }
  if (braces > 0) return "an unclosed '{'";
  if (parens > 0) return "an unclosed '('";
  return null;
}

/** Index of the `]` closing the class opened at `start`, or -1. A `]` right after `[`, `[!` or `[^` is literal. */
function bracketEnd(glob: string, start: number): number {
  let j = start + 1;
  if (glob[j] === '!' || glob[j] === '^') j++;
  if (glob[j] === ']') j++;
  for (; j < glob.length; j++) {
    if (glob[j] === '\\') j++;
    else if (glob[j] === ']') return j;
  }
  return -1;
}
