// Hostile-input campaign, fast subset, translators files: at start (exit 2
// naming the file and the step) and on hot reload (the previous set stays
// active; a v2 message meets the live step, the process keeps answering).

import { test } from 'node:test';
import { fuzzSettings } from './lib/settings.ts';
import { Stats } from './lib/stats.ts';
import { translatorsReloadSuite, translatorsStartSuite } from './lib/translators-suite.ts';

const FILE = 'test/fuzz/translators.test.ts';

test('fuzz: translators files at start: valid ones start, invalid ones exit 2 naming the file and the step', async () => {
  const s = fuzzSettings();
  const stats = new Stats();
  try {
    await translatorsStartSuite(s, stats, 4, FILE);
  } finally {
    process.stderr.write(`${stats.summary(s.seed)}\n`);
  }
});

test('fuzz: translators files on hot reload: the previous set stays on a bad file; no step stalls the process', async () => {
  const s = fuzzSettings();
  const stats = new Stats();
  try {
    await translatorsReloadSuite(s, stats, 6, FILE);
  } finally {
    process.stderr.write(`${stats.summary(s.seed)}\n`);
  }
});
