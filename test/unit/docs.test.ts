import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { INPUT_SPECS, OUTPUT_NAMES } from '../../src/inputs/spec.generated.js';

describe('generated from action.yml', () => {
  it('src/inputs/spec.generated.ts and the README tables are up to date', () => {
    // Exits 1 and names the stale file when either drifted from action.yml.
    expect(() =>
      execFileSync(process.execPath, ['scripts/gen-docs.mjs', '--check'], { stdio: 'pipe' }),
    ).not.toThrow();
  });

  it('the README lists every input and output of action.yml', () => {
    const readme = readFileSync('README.md', 'utf8');
    const action = parse(readFileSync('action.yml', 'utf8')) as { inputs: object; outputs: object };
    for (const name of Object.keys(action.inputs)) expect(readme).toContain(`| \`${name}\` |`);
    for (const name of Object.keys(action.outputs)) expect(readme).toContain(`| \`${name}\` |`);
    expect(Object.keys(INPUT_SPECS)).toEqual(Object.keys(action.inputs));
    expect([...OUTPUT_NAMES]).toEqual(Object.keys(action.outputs));
  });

  it('action.yml runs the bundle on node24', () => {
    const action = parse(readFileSync('action.yml', 'utf8')) as {
      runs: { using: string; main: string };
    };
    expect(action.runs).toEqual({ using: 'node24', main: 'dist/index.js' });
  });
});
