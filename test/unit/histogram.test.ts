// TalliedHistogram against prom-client's own Histogram: the same observations
// give the same exposition text and the same get() values.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { TalliedHistogram } from '../../src/histogram.ts';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.1, 1, 900];
// Below, on and between the bounds, above the last; and repeated values.
const VALUES = [0, 0.0005, 0.001, 0.001, 0.0011, 0.0025, 0.004, 0.01, 0.05, 0.1, 0.5, 1, 1, 899.9, 900, 901, 5000];

function both(): { ours: TalliedHistogram; theirs: Histogram; ourRegistry: Registry; theirRegistry: Registry } {
  const ourRegistry = new Registry();
  const theirRegistry = new Registry();
  const config = { name: 'x_duration_seconds', help: 'Time of something.', buckets: BUCKETS };
  return {
    ours: new TalliedHistogram({ ...config, registers: [ourRegistry] }),
    theirs: new Histogram({ ...config, registers: [theirRegistry] }),
    ourRegistry,
    theirRegistry,
  };
}

test('the same exposition text and get() values as prom-client for the same observations', async () => {
  const h = both();
  for (const v of VALUES) {
    h.ours.observe(v);
    h.theirs.observe(v);
  }
  const text = await h.ourRegistry.metrics();
  assert.equal(text, await h.theirRegistry.metrics());
  assert.match(text, /^x_duration_seconds_bucket\{le="0.001"\} 4$/m);
  assert.match(text, /^x_duration_seconds_bucket\{le="\+Inf"\} 17$/m);
  const strip = (vs: { value: number; labels: object; metricName?: string }[]): unknown[] => vs.map(({ value, labels, metricName }) => ({ value, labels: { ...labels }, metricName }));
  assert.deepEqual(strip((await h.ours.get()).values), strip((await h.theirs.get()).values));
});

test('empty, and after reset, it reports zeros as prom-client does', async () => {
  const h = both();
  assert.equal(await h.ourRegistry.metrics(), await h.theirRegistry.metrics());
  h.ours.observe(0.2);
  h.ourRegistry.resetMetrics();
  h.theirRegistry.resetMetrics();
  h.theirs.zero({});
  assert.equal(await h.ourRegistry.metrics(), await h.theirRegistry.metrics());
});

test('a value that is not a finite number is not counted', async () => {
  const h = both();
  h.ours.observe(Number.NaN);
  h.ours.observe(Number.POSITIVE_INFINITY);
  h.ours.observe(0.003);
  const count = (await h.ours.get()).values.find((v) => v.metricName === 'x_duration_seconds_count');
  assert.equal(count?.value, 1);
});
