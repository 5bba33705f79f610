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
  const commands = commandNames(inputs);
  for (const i of inputs) Object.assign(i, parseUsage(i, commands));
  const outputs = Object.entries(doc.outputs ?? {}).map(([name, v]) => ({
    name,
    description: String(v.description ?? '').trim(),
  }));
  return { inputs, commands, outputs };
}

/** The commands, as the `command` input's description names them in backticks, in order. */
function commandNames(inputs) {
  const command = inputs.find((i) => i.name === 'command');
  const names = [...(command?.description ?? '').matchAll(/`([a-z]+(?:-[a-z]+)*)`/g)].map(
    (m) => m[1],
  );
  if (names.length === 0)
    throw new Error("action.yml: the 'command' input's description names no `command`.");
  return names;
}

const ENTRY = String.raw`\*\*([a-z -]+)\*\*(?: \(([^()]*)\))?`;
const PREFIX = new RegExp(`^(${ENTRY}(?:, ${ENTRY})*): `);

/**
 * Which commands use an input, from the start of its description:
 * `**backup** (required), **verify** (level restore): …` or `**all commands**: …`.
 * `usage` maps a command (or `*` for all) to its note; a note of `required` (or starting
 * `required,`) makes the input required for that command.
 */
export function parseUsage(input, commands) {
  const m = PREFIX.exec(input.description);
  if (!m)
    throw new Error(
      `action.yml: the description of '${input.name}' must start with the commands that use it, e.g. "**backup** (required), **verify**: …" or "**all commands**: …".`,
    );
  const usage = {};
  for (const e of m[1].matchAll(new RegExp(ENTRY, 'g'))) {
    const who = e[1] === 'all commands' ? '*' : e[1];
    if (who !== '*' && !commands.includes(who))
      throw new Error(
        `action.yml: '${input.name}' names the command "${who}", which the 'command' input does not list (${commands.join(', ')}).`,
      );
    usage[who] = e[2] ?? '';
  }
  return { usage, text: input.description.slice(m[0].length) };
}

export const isRequired = (note) => note === 'required' || note.startsWith('required,');

/** The inputs a command uses, required first, each with its note for that command. */
function inputsOf(spec, command) {
  const rows = spec.inputs
    .filter((i) => command in i.usage)
    .map((i) => ({ ...i, note: i.usage[command] }));
  return [...rows.filter((r) => isRequired(r.note)), ...rows.filter((r) => !isRequired(r.note))];
}

export function renderInputsModule(spec) {
  const lines = [
    '// Generated from action.yml by `npm run docs`. Do not edit: change action.yml instead.',
    '',
    'export const INPUT_SPECS = {',
  ];
  for (const i of spec.inputs) {
    lines.push(
      `  ${JSON.stringify(i.name)}: { default: ${JSON.stringify(i.default)}, usage: ${JSON.stringify(i.usage)}, text: ${JSON.stringify(i.text)}, description: ${JSON.stringify(i.description)} },`,
    );
  }
  lines.push('} as const;', '', '/** The commands, as the `command` input names them. */');
  lines.push(`export const COMMAND_NAMES = ${JSON.stringify(spec.commands)} as const;`);
  lines.push('', 'export const OUTPUT_NAMES = [');
  for (const o of spec.outputs) lines.push(`  ${JSON.stringify(o.name)},`);
  lines.push('] as const;', '');
  return lines.join('\n');
}

const cell = (s) => s.replace(/\|/g, '\\|').replace(/\n+/g, ' ').trim();

/**
 * The inputs every command reads (required first), then one table per command with only
 * its own inputs: a reader setting up `restore` reads the restore table and the first one.
 */
export function renderInputsTable(spec) {
  const def = (i) => (i.default === '' ? '' : `\`${cell(i.default).replace(/`/g, '')}\``);
  const req = (note) => cell(isRequired(note) ? `**yes**${note.slice('required'.length)}` : note);
  const out = [
    '### Every command',
    '',
    '| input | required / when | default | description |',
    '|---|---|---|---|',
  ];
  for (const i of inputsOf(spec, '*'))
    out.push(`| \`${i.name}\` | ${req(i.note)} | ${def(i)} | ${cell(i.text)} |`);
  for (const command of spec.commands) {
    out.push(
      '',
      `### ${command}`,
      '',
      '| input | required / when | default | description |',
      '|---|---|---|---|',
    );
    for (const i of inputsOf(spec, command))
      out.push(`| \`${i.name}\` | ${req(i.note)} | ${def(i)} | ${cell(i.text)} |`);
  }
  return out.join('\n');
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
