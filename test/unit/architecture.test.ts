import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without types; its one export is typed below.
import { functionLengths as measure } from '../../scripts/function-lengths.mjs';
import { REPO_ROOT } from '../harness/node.js';

/**
 * The shape of the house (docs/architecture.md), checked: a change that breaks a rule
 * fails here with the file and line to look at, not in a reviewer's memory.
 */

const SRC = join(REPO_ROOT, 'src');
/** Files at the top: they wire everything together and nothing imports them. */
const ENTRIES = new Set(['main.ts', 'index.ts', 'cli.ts']);
/** Folders that are not concerns: commands use concerns, inputs maps onto their settings. */
const ABOVE_CONCERNS = new Set(['commands', 'inputs']);

interface Import {
  readonly from: string;
  readonly to: string;
  readonly line: number;
  readonly spec: string;
}

function sourceFiles(dir = SRC): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

function importsOf(file: string): Import[] {
  const out: Import[] = [];
  const lines = readFileSync(file, 'utf8').split('\n');
  let statement = '';
  let startLine = 0;
  lines.forEach((text, i) => {
    if (statement === '' && !/^(import|export)\b/.test(text)) return;
    if (statement === '') startLine = i + 1;
    statement += `${text}\n`;
    const m = /\bfrom\s+'([^']+)'|^import\s+'([^']+)'/.exec(statement);
    if (!m && !/;\s*$/.test(text)) return;
    const spec = m?.[1] ?? m?.[2];
    statement = '';
    if (!spec) return;
    const to = spec.startsWith('.')
      ? relative(SRC, resolve(dirname(file), spec.replace(/\.js$/, '.ts')))
      : spec;
    out.push({ from: relative(SRC, file), to, line: startLine, spec });
  });
  return out;
}

/** `commands` for `commands/backup.ts`, `.` for a file directly in src/. */
function folderOf(path: string): string {
  const parts = path.split('/');
  return parts.length > 1 ? (parts[0] as string) : '.';
}

const files = sourceFiles();
const imports = files.flatMap(importsOf);
const internal = imports.filter((i) => i.spec.startsWith('.'));
const where = (i: Import) => `src/${i.from}:${i.line} imports ${i.spec}`;

describe('architecture', () => {
  it('reads the imports it checks', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(internal.some((i) => i.from === 'main.ts' && i.to.startsWith('commands/'))).toBe(true);
  });

  it('only the two thin entry files import main.ts, and nothing imports them', () => {
    expect(
      internal
        .filter((i) => ENTRIES.has(i.to) && !(i.to === 'main.ts' && ENTRIES.has(i.from)))
        .map(where),
    ).toEqual([]);
  });

  it('concerns never import commands or inputs: data flows inputs → settings → command → concerns', () => {
    const bad = internal.filter(
      (i) =>
        !ENTRIES.has(i.from) &&
        !ABOVE_CONCERNS.has(folderOf(i.from)) &&
        ABOVE_CONCERNS.has(folderOf(i.to)),
    );
    expect(bad.map(where)).toEqual([]);
    // inputs never reaches up into commands either.
    expect(
      internal
        .filter((i) => folderOf(i.from) === 'inputs' && folderOf(i.to) === 'commands')
        .map(where),
    ).toEqual([]);
  });

  it('the folders form no cycle', () => {
    const edges = new Map<string, Set<string>>();
    for (const i of internal) {
      const a = folderOf(i.from);
      const b = folderOf(i.to);
      if (a === b || a === '.' || b === '.') continue;
      if (!edges.has(a)) edges.set(a, new Set());
      edges.get(a)?.add(b);
    }
    const cycles: string[] = [];
    const visit = (node: string, path: string[]) => {
      for (const next of edges.get(node) ?? []) {
        if (next === path[0]) cycles.push([...path, next].join(' → '));
        else if (!path.includes(next) && next > (path[0] as string)) visit(next, [...path, next]);
      }
    };
    for (const start of edges.keys()) visit(start, [start]);
    const why = cycles.map((c) => {
      const [a, b] = c.split(' → ');
      const example = internal.find((i) => folderOf(i.from) === a && folderOf(i.to) === b);
      return `${c}${example ? ` (e.g. ${where(example)})` : ''}`;
    });
    expect(why).toEqual([]);
  });

  it('only src/storage/ speaks S3: no AWS SDK import elsewhere', () => {
    const bad = imports.filter(
      (i) => i.spec.startsWith('@aws-sdk/') && folderOf(i.from) !== 'storage',
    );
    expect(bad.map(where)).toEqual([]);
    // Nor reads an SDK error's insides: a destination describes its own errors.
    const peeks = files
      .filter((f) => folderOf(relative(SRC, f)) !== 'storage')
      .flatMap((f) =>
        readFileSync(f, 'utf8')
          .split('\n')
          .flatMap((text, i) =>
            /\$metadata|NoSuchKey|httpStatusCode/.test(text)
              ? [`src/${relative(SRC, f)}:${i + 1}`]
              : [],
          ),
      );
    expect(peeks).toEqual([]);
  });

  it('no function in src/ is longer than 120 lines', () => {
    const all = (
      measure as (root: string) => { file: string; line: number; name: string; lines: number }[]
    )(SRC);
    expect(all.length).toBeGreaterThan(500);
    const over = all
      .filter((f) => f.lines > 120)
      .map((f) => `${relative(REPO_ROOT, f.file)}:${f.line} ${f.name} (${f.lines} lines)`);
    expect(over).toEqual([]);
  });
});
