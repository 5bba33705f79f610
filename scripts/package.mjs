// Bundles the action (dist/index.js) and the CLI (dist/cli/index.js) with ncc, as ESM.
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';

const ncc = 'node_modules/@vercel/ncc/dist/ncc/cli.js';
const staging = '.dist-build';
rmSync('dist', { recursive: true, force: true });
rmSync(staging, { recursive: true, force: true });

/** One ncc build of `entry` into `out`; rejects with its exit code. */
function build(entry, out) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [ncc, 'build', entry, '-o', out, '--license', 'licenses.txt', '--no-cache', '--quiet'],
      { stdio: 'inherit' },
    );
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`ncc build ${entry}: ${signal ?? `exit ${code}`}`)),
    );
  });
}

// The two bundles are independent: built side by side (one core each), each in a folder of
// its own, then moved into place (dist/cli inside dist).
await Promise.all([
  build('src/index.ts', `${staging}/action`),
  build('src/cli.ts', `${staging}/cli`),
]);
renameSync(`${staging}/action`, 'dist');
renameSync(`${staging}/cli`, 'dist/cli');
rmSync(staging, { recursive: true, force: true });
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
