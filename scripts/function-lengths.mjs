// Lists the functions in src/ longer than a limit, measured by the TypeScript parser:
// every function declaration, method, arrow function and function expression, from the
// line of its first token to the line of its last (blank lines and comments inside count).
// A nested function counts in its parent too. Usage: node scripts/function-lengths.mjs [limit] [--all]
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

export function functionLengths(root = 'src') {
  const out = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) measure(p);
    }
  };
  const measure = (file) => {
    const text = readFileSync(file, 'utf8');
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const visit = (node) => {
      if (ts.isFunctionLike(node) && 'body' in node && node.body) {
        const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
        const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
        const name =
          node.name?.getText(sf) ??
          (ts.isVariableDeclaration(node.parent) ? node.parent.name.getText(sf) : '(anonymous)');
        out.push({ file: relative('.', file), line: start + 1, name, lines: end - start + 1 });
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  };
  walk(root);
  return out.sort((a, b) => b.lines - a.lines);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const limit = Number(process.argv[2] ?? 120);
  const all = functionLengths();
  const over = all.filter((f) => f.lines > limit);
  const shown = process.argv.includes('--all') ? all.slice(0, 30) : over;
  for (const f of shown)
    console.log(`${String(f.lines).padStart(4)}  ${f.file}:${f.line}  ${f.name}`);
  console.log(
    `${all.length} functions; ${over.length} longer than ${limit} lines; longest ${all[0]?.lines ?? 0}`,
  );
  process.exitCode = over.length > 0 ? 1 : 0;
}
