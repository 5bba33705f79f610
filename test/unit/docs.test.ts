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

describe('the README a new user follows', () => {
  const readme = readFileSync('README.md', 'utf8');
  const section = (heading: string) => {
    const from = readme.indexOf(`\n${heading}\n`);
    expect(from, heading).toBeGreaterThan(0);
    const rest = readme.slice(from + heading.length + 2);
    return rest.slice(0, rest.search(/\n#{2,3} /));
  };

  it('starts with adding it to a repository, and the demo and tests come under Develop', () => {
    const headings = [...readme.matchAll(/^## (.*)$/gm)].map((m) => m[1]);
    expect(headings.slice(0, 3)).toEqual([
      'Add it to your repository',
      'What you get',
      'Reference',
    ]);
    expect(headings.indexOf('Quickstart')).toBe(headings.indexOf('Develop') - 1);
    // Exactly two command lines: the demo, and the whole test suite.
    const lines = /```sh\n([^`]*)```/.exec(section('## Quickstart'))?.[1]?.trim().split('\n');
    expect(lines).toEqual(['npm ci && npm run demo', 'npm test']);
  });

  it("step 3's workflow grants what the alerts need and passes only inputs action.yml declares", () => {
    const yaml = /```yaml\n([^`]*)```/.exec(section('### 3. The workflow file'))?.[1] ?? '';
    const doc = parse(yaml) as {
      permissions: Record<string, string>;
      jobs: { backup: { steps: { uses?: string; with?: Record<string, string> }[] } };
    };
    expect(doc.permissions).toEqual({ contents: 'read', issues: 'write' });
    const action = parse(readFileSync('action.yml', 'utf8')) as { inputs: object };
    const step = doc.jobs.backup.steps.find((s) => s.uses?.startsWith('your-org/pg-dr@'));
    expect(step?.with?.['github-token']).toMatch(/^\$\{\{ github\.token \}\}$/);
    for (const key of Object.keys(step?.with ?? {}))
      expect(Object.keys(action.inputs)).toContain(key);
  });
});
