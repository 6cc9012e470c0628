// The README's configuration reference is the schema's, and the README opens
// with the two commands, which .ci/run mirrors.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { configTable } from '../../config/docs.ts';

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
