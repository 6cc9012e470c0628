// Hostile-input campaign, fast subset, embedded broker: publish requests of
// every shape (fetch and raw sockets) against the real turnout process,
// each message followed to its end. Replay a failure with the command it prints.

import { test } from 'node:test';
import { memorySuite } from './lib/suites.ts';
import { fuzzSettings } from './lib/settings.ts';
import { Stats } from './lib/stats.ts';

test('fuzz: publish requests on the embedded broker end in a defined place', async () => {
  const s = fuzzSettings();
  const stats = new Stats();
  try {
    await memorySuite(s, stats, { publishRuns: 30, foreignRuns: 0, batch: 12 }, 'test/fuzz/memory.test.ts');
  } finally {
    process.stderr.write(`${stats.summary(s.seed)}\n`);
  }
});
