// Before a release: the tag, package.json's version and the CHANGELOG agree. Prints the
// tag's CHANGELOG section (the release notes) to stdout; exits 1 naming what disagrees.
//
//   node scripts/release-check.mjs v0.2.0 > notes.md
import { readFileSync } from 'node:fs';

const tag = process.argv[2] ?? '';
const fail = (message) => {
  process.stderr.write(`release check: ${message}\n`);
  process.exit(1);
};

const m = /^v(\d+)\.(\d+)\.(\d+)$/.exec(tag);
if (!m) fail(`the tag "${tag}" is not vMAJOR.MINOR.PATCH (e.g. v0.2.0).`);
const version = tag.slice(1);

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
if (pkg.version !== version)
  fail(
    `package.json says ${pkg.version}, the tag ${tag}: set "version": "${version}" (npm version ${version} --no-git-tag-version) and tag that commit.`,
  );

const changelog = readFileSync('CHANGELOG.md', 'utf8');
const heading = new RegExp(
  `^## \\[${version.replaceAll('.', '\\.')}\\] - (\\d{4}-\\d{2}-\\d{2})$`,
  'm',
);
const found = heading.exec(changelog);
if (!found)
  fail(
    `CHANGELOG.md has no "## [${version}] - YYYY-MM-DD" section: move the Unreleased notes under it.`,
  );
const rest = changelog.slice(found.index + found[0].length);
const next = rest.search(/^## \[/m);
const notes = (next < 0 ? rest : rest.slice(0, next)).replace(/^\[[^\]]+\]: .*$/gm, '').trim();
if (notes === '') fail(`the CHANGELOG section of ${version} is empty.`);
process.stdout.write(`${notes}\n`);
