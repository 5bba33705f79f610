import { readFile, writeFile } from 'node:fs/promises';

/**
 * Replaces one benchmark's own section of BENCHMARKS.md (between its markers
 * `<!-- bench:<name>:start -->` and `<!-- bench:<name>:end -->`), or appends it.
 */
export async function writeBenchSection(
  name: string,
  title: string,
  intro: string,
  lines: readonly string[],
  path = 'BENCHMARKS.md',
): Promise<void> {
  const start = `<!-- bench:${name}:start -->`;
  const end = `<!-- bench:${name}:end -->`;
  const text = await readFile(path, 'utf8');
  const section = [start, `## ${title}`, '', intro, '', ...lines, end].join('\n');
  const at = text.indexOf(start);
  const to = text.indexOf(end);
  const next =
    at >= 0 && to > at
      ? `${text.slice(0, at)}${section}${text.slice(to + end.length)}`
      : `${text.trimEnd()}\n\n${section}\n`;
  await writeFile(path, next);
}
