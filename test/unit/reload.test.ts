// The files turnout re-reads (src/reload.ts): at start a bad file is a
// ConfigError naming its variable; later a bad version changes nothing.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ConfigError } from '../../config/errors.ts';
import { createLogger } from '../../lib/log.ts';
import { loadTranslators, loadWeight, watchWeight } from '../../src/reload.ts';
import { Router } from '../../src/router.ts';
import { sleep, waitFor } from '../support/wait.ts';

const dir = mkdtempSync(join(tmpdir(), 'turnout-reload-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const isConfigError = (variable: string, text: RegExp) => (err: unknown): boolean =>
  err instanceof ConfigError && err.variable === variable && text.test(err.message);

test('loadWeight: the weight and its text; a bad or missing file is a ConfigError for TURNOUT_WEIGHT_FILE', () => {
  const file = join(dir, 'weight');
  writeFileSync(file, '25%\n');
  assert.deepEqual(loadWeight(file), { weight: 25, text: '25%\n' });
  writeFileSync(file, '250');
  assert.throws(() => loadWeight(file), isConfigError('TURNOUT_WEIGHT_FILE', /weight must be a number from 0 to 100/));
  assert.throws(() => loadWeight(join(dir, 'missing')), isConfigError('TURNOUT_WEIGHT_FILE', /ENOENT/));
});

test('loadTranslators: the set and its text; a bad or missing file is a ConfigError for TURNOUT_TRANSLATORS', () => {
  const file = join(dir, 'steps.yaml');
  writeFileSync(file, '"1->2": "$"\n');
  const loaded = loadTranslators(file);
  assert.deepEqual(loaded.set.stepLabels(), ['1->2']);
  assert.equal(loaded.text, '"1->2": "$"\n');
  writeFileSync(file, '"1->2": "$merge(["\n');
  assert.throws(() => loadTranslators(file), isConfigError('TURNOUT_TRANSLATORS', /step "1->2"/));
  assert.throws(() => loadTranslators(join(dir, 'none.yaml')), isConfigError('TURNOUT_TRANSLATORS', /cannot be read/));
});

test('watchWeight: a valid change sets the weight (origin file); an invalid one leaves it', async () => {
  const file = join(dir, 'live-weight');
  writeFileSync(file, '10');
  const router = new Router({ targets: { blue: 'b', green: 'g' }, routeKey: { kind: 'key' }, weight: 10 });
  const watch = watchWeight(file, '10', router, createLogger('silent'));
  try {
    writeFileSync(file, '40');
    await waitFor('weight 40 from the file', () => router.weight === 40, 5_000);
    assert.equal(router.weightOrigin, 'file');
    writeFileSync(file, 'sixty');
    // Two polls later the invalid content has been seen; nothing changed.
    await sleep(2_200);
    assert.equal(router.weight, 40);
  } finally {
    watch.stop();
  }
});
