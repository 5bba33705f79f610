import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../harness/node.js';

/** A child that writes `bytes` to stdout and ends with `exit` (the way src/cli.ts ends). */
function child(bytes: number, exit: string) {
  const script = `
    import { exitWhenFlushed } from './src/report/exit.ts';
    process.stdout.write('x'.repeat(${bytes}));
    process.stderr.write('e'.repeat(${bytes}));
    ${exit}
  `;
  return execa(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: REPO_ROOT,
    reject: false,
    stripFinalNewline: false,
  });
}

describe('exitWhenFlushed', () => {
  it('a 3 MB report on a pipe arrives whole, on stdout and stderr, with the exit code', async () => {
    const r = await child(3_000_000, 'exitWhenFlushed(3);');
    expect(r.exitCode).toBe(3);
    expect(r.stdout.length).toBe(3_000_000);
    expect(r.stderr.length).toBe(3_000_000);
  });

  it('process.exit alone cuts it (what the CLI did before)', async () => {
    const r = await child(3_000_000, 'process.exit(3);');
    expect(r.exitCode).toBe(3);
    expect(r.stdout.length).toBeLessThan(3_000_000);
  });
});
