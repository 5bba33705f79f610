// Reads action.yml — the single source of input/output names, descriptions and defaults —
// and renders the generated TypeScript map and the README tables from it.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

export function loadActionSpec(path = 'action.yml') {
  const doc = parse(readFileSync(path, 'utf8'));
  const inputs = Object.entries(doc.inputs ?? {}).map(([name, v]) => ({
    name,
    description: String(v.description ?? '').trim(),
    default: v.default === undefined ? '' : String(v.default),
    required: v.required === true || v.required === 'true',
  }));
  const outputs = Object.entries(doc.outputs ?? {}).map(([name, v]) => ({
    name,
    description: String(v.description ?? '').trim(),
  }));
  return { inputs, outputs };
}

export function renderInputsModule(spec) {
  const lines = [
    '// Generated from action.yml by `npm run docs`. Do not edit: change action.yml instead.',
    '',
    'export const INPUT_SPECS = {',
  ];
  for (const i of spec.inputs) {
    lines.push(
      `  ${JSON.stringify(i.name)}: { default: ${JSON.stringify(i.default)}, description: ${JSON.stringify(i.description)} },`,
    );
  }
  lines.push('} as const;', '', 'export const OUTPUT_NAMES = [');
  for (const o of spec.outputs) lines.push(`  ${JSON.stringify(o.name)},`);
  lines.push('] as const;', '');
  return lines.join('\n');
}

const cell = (s) => s.replace(/\|/g, '\\|').replace(/\n+/g, ' ').trim();

export function renderInputsTable(spec) {
  const rows = ['| input | default | description |', '|---|---|---|'];
  for (const i of spec.inputs) {
    const def = i.default === '' ? '' : `\`${cell(i.default).replace(/`/g, '')}\``;
    rows.push(`| \`${i.name}\` | ${def} | ${cell(i.description)} |`);
  }
  return rows.join('\n');
}

export function renderOutputsTable(spec) {
  const rows = ['| output | description |', '|---|---|'];
  for (const o of spec.outputs) rows.push(`| \`${o.name}\` | ${cell(o.description)} |`);
  return rows.join('\n');
}

/** Replaces the text between `<!-- NAME:start -->` and `<!-- NAME:end -->`. */
export function replaceBetween(text, name, body) {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error(`README lacks the ${start} … ${end} markers`);
  return `${text.slice(0, a + start.length)}\n${body}\n${text.slice(b)}`;
}
