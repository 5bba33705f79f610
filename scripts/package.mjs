// Bundles the action (dist/index.js) and the CLI (dist/cli/index.js) with ncc, as ESM.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

const ncc = 'node_modules/@vercel/ncc/dist/ncc/cli.js';
rmSync('dist', { recursive: true, force: true });
for (const [entry, out] of [
  ['src/index.ts', 'dist'],
  ['src/cli.ts', 'dist/cli'],
]) {
  execFileSync(
    process.execPath,
    [ncc, 'build', entry, '-o', out, '--license', 'licenses.txt', '--quiet'],
    {
      stdio: 'inherit',
    },
  );
}
mkdirSync('dist', { recursive: true });
writeFileSync('dist/package.json', `${JSON.stringify({ type: 'module' }, null, 2)}\n`);
// The CLI is the package's bin: keep its shebang first and make it executable.
const cli = 'dist/cli/index.js';
const text = readFileSync(cli, 'utf8');
if (!text.startsWith('#!'))
  writeFileSync(cli, `#!/usr/bin/env node\n${text.replace(/^#!.*\n/m, '')}`);
chmodSync(cli, 0o755);
