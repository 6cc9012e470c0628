// turnout_kafka_buffered_bytes is read from the broker adapter at each
// scrape: a series per source and topic it reports, none left over from a
// topic it no longer reports, and no series at all where it reports nothing.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import type { BufferedBytes } from '../../adapters/broker.ts';
import { Metrics } from '../../src/metrics.ts';
import { metricValue } from '../support/metrics.ts';

test('turnout_kafka_buffered_bytes follows what the adapter reports at each scrape', async () => {
  let now: BufferedBytes[] = [
    { source: 'orders', topic: 'orders', bytes: 4096 },
    { source: 'orders', topic: 'orders.turnout-defer', bytes: 0 },
  ];
  const registry = new Registry();
  new Metrics(registry, { brokerUp: () => true, inflight: () => 0, buffered: () => now }, { defaultMetrics: false });
  let text = await registry.metrics();
  assert.equal(metricValue(text, 'turnout_kafka_buffered_bytes', { source: 'orders', topic: 'orders' }), 4096);
  assert.match(text, /^turnout_kafka_buffered_bytes\{source="orders",topic="orders\.turnout-defer"\} 0$/m);

  now = [{ source: 'invoices', topic: 'invoices', bytes: 10 }];
  text = await registry.metrics();
  assert.equal(metricValue(text, 'turnout_kafka_buffered_bytes', { source: 'invoices', topic: 'invoices' }), 10);
  assert.doesNotMatch(text, /source="orders"/, 'a topic no longer reported has no series');
});

test('turnout_kafka_buffered_bytes has no samples on a broker without a buffer (HELP and TYPE only)', async () => {
  const registry = new Registry();
  new Metrics(registry, { brokerUp: () => true, inflight: () => 0 }, { defaultMetrics: false });
  const text = await registry.metrics();
  assert.match(text, /^# TYPE turnout_kafka_buffered_bytes gauge$/m);
  assert.doesNotMatch(text, /^turnout_kafka_buffered_bytes[{ ]/m);
});
