// The README's configuration reference is the schema's, the README opens
// with the two commands, which .ci/run mirrors, and its "The code" section
// names exactly the files and folders the tree has.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { configTable } from '../../config/docs.ts';
import * as code from '../support/contract.ts';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

test('README configuration table equals the schema (run node scripts/readme-config.ts --write)', () => {
  const start = readme.indexOf('<!-- config:start');
  const end = readme.indexOf('<!-- config:end -->');
  assert.ok(start >= 0 && end > start, 'config markers missing');
  const inReadme = readme.slice(readme.indexOf('\n', start) + 1, end).trim();
  assert.equal(inReadme, configTable());
});

test('README opens with the demo and test commands, and .ci/run calls the test command', () => {
  const firstBlock = /```(?:sh|bash)?\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  const commands = firstBlock.split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);
  assert.deepEqual(commands, ['npm run demo', 'npm test']);
  const ci = readFileSync(new URL('../../.ci/run', import.meta.url), 'utf8');
  assert.match(ci, /^npm test$/m);
});

/** The text of the README's "## The code" section (up to the next `## `). */
function codeSection(): string {
  const start = readme.indexOf('\n## The code\n');
  assert.ok(start >= 0, 'README.md has no "## The code" section');
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** The paths the first cell of every table row of a text names (`a/b.ts`, `a/`). */
function firstCellPaths(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('|') && !/^\|[-| ]+\|$/.test(l))
    .map((l) => l.slice(1).split(/(?<!\\)\|/)[0]?.trim() ?? '')
    .flatMap((cell) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1] as string));
}

describe('README "The code" matches the tree', () => {
  const DEEP = ['adapters', 'config', 'lib', 'src'];
  const files = code.trackedFiles();
  // Every file under the deep roots and every folder on the way (with a trailing slash).
  const expected = new Set<string>();
  for (const f of files) {
    const parts = f.split('/');
    if (!DEEP.includes(parts[0] as string) || parts.length < 2) continue;
    expected.add(f);
    for (let i = 2; i < parts.length; i++) expected.add(`${parts.slice(0, i).join('/')}/`);
  }
  const topFolders = new Set(files.filter((f) => f.includes('/')).map((f) => `${f.split('/')[0]}/`));
  const named = firstCellPaths(codeSection());

  test('names every file and folder of adapters/, config/, lib/ and src/', () => {
    assert.ok(expected.size > 50, `found only ${expected.size} paths: is git ls-files working?`);
    const missing = [...expected].filter((p) => !named.includes(p));
    assert.deepEqual(missing, [], 'add a row for each to the README\'s "The code" section');
  });

  test('names every top-level folder', () => {
    const missing = [...topFolders].filter((p) => !named.includes(p));
    assert.deepEqual(missing, [], 'add a row for each top-level folder to the README\'s "The code" section');
  });

  test('names nothing that does not exist, and nothing twice', () => {
    const exists = (p: string): boolean => expected.has(p) || topFolders.has(p);
    assert.deepEqual(named.filter((p) => !exists(p)), [], 'the README\'s "The code" section names paths that are not in the tree');
    assert.deepEqual(named.filter((p, i) => named.indexOf(p) !== i), [], 'named twice');
  });
});
