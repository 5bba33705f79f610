// Regenerates src/inputs/spec.generated.ts and the README inputs/outputs tables from action.yml.
// `--check` exits 1 when either is out of date (used by the test suite and CI).
import { readFileSync, writeFileSync } from 'node:fs';
import {
  loadActionSpec,
  renderInputsModule,
  renderInputsTable,
  renderOutputsTable,
  replaceBetween,
} from './action-spec.mjs';

const check = process.argv.includes('--check');
const spec = loadActionSpec();
const targets = [
  ['src/inputs/spec.generated.ts', () => renderInputsModule(spec)],
  [
    'README.md',
    (old) =>
      replaceBetween(
        replaceBetween(old, 'inputs', renderInputsTable(spec)),
        'outputs',
        renderOutputsTable(spec),
      ),
  ],
];
let stale = 0;
for (const [file, render] of targets) {
  let old = '';
  try {
    old = readFileSync(file, 'utf8');
  } catch {}
  const next = render(old);
  if (next === old) continue;
  stale++;
  if (check) console.error(`${file} is out of date with action.yml: run \`npm run docs\`.`);
  else writeFileSync(file, next);
}
if (check && stale > 0) process.exit(1);
