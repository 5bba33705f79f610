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
    [ncc, 'build', entry, '-o', out, '--license', 'licenses.txt', '--no-cache', '--quiet'],
    {
      stdio: 'inherit',
    },
  );
}
// ssh2's optional native add-ons (built by npm for this machine's Node) and its Windows
// agent helper: ssh2 falls back to pure JavaScript without them, and machine-built binaries
// would make dist/ differ from one build machine to the next.
for (const out of ['dist', 'dist/cli']) {
  for (const extra of ['build', 'lib', 'pagent.exe'])
    rmSync(`${out}/${extra}`, { recursive: true, force: true });
}
mkdirSync('dist', { recursive: true });
writeFileSync('dist/package.json', `${JSON.stringify({ type: 'module' }, null, 2)}\n`);
// The CLI is the package's bin: keep its shebang first and make it executable.
const cli = 'dist/cli/index.js';
const text = readFileSync(cli, 'utf8');
if (!text.startsWith('#!'))
  writeFileSync(cli, `#!/usr/bin/env node\n${text.replace(/^#!.*\n/m, '')}`);
chmodSync(cli, 0o755);
