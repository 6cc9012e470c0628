// Hostile-input campaign, fast subset, RabbitMQ: publish requests through the
// real turnout process, and messages a foreign producer (amqplib) put straight
// on the queue; every message followed to its end (the dead-letter queue is
// read with amqplib). Replay a failure with the command it prints.

import { test } from 'node:test';
import { amqpSuite } from './lib/suites.ts';
import { fuzzSettings } from './lib/settings.ts';
import { Stats } from './lib/stats.ts';

test('fuzz: publish requests and foreign messages on RabbitMQ end in a defined place', async () => {
  const s = fuzzSettings();
  const stats = new Stats();
  try {
    await amqpSuite(s, stats, { publishRuns: 15, foreignRuns: 25, batch: 12 }, 'test/fuzz/amqp.test.ts');
  } finally {
    process.stderr.write(`${stats.summary(s.seed)}\n`);
  }
});
