// The judging arithmetic: counter increases with resets, histogram
// quantiles as PromQL's histogram_quantile, empty intervals, verdicts.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseExposition, type Sample } from '../../../src/rollout/exposition.ts';
import { bucketIncrease, builtin, counterIncrease, histogramQuantile, verdict } from '../../../src/rollout/judge.ts';

const c = (name: string, labels: Record<string, string>, value: number): Sample => ({ name, labels, value });
const R = 'turnout_messages_received_total';
const DL = 'turnout_messages_dead_lettered_total';

test('counter increase: plain delta, a new series counts from 0, a reset counts its whole value', () => {
  const before = [c(R, { source: 'a', version: '1' }, 100), c(R, { source: 'b', version: '1' }, 50)];
  const after = [c(R, { source: 'a', version: '1' }, 130), c(R, { source: 'b', version: '1' }, 7), c(R, { source: 'a', version: '2' }, 5)];
  // a/1: +30; b/1 went down (restart): +7; a/2 is new: +5
  assert.equal(counterIncrease(before, after, R), 42);
  assert.equal(counterIncrease(before, after, R, (l) => l.source === 'a'), 35);
  // No baseline at all (a new replica): everything it has counts.
  assert.equal(counterIncrease(undefined, after, R), 142);
  // Nothing changed: 0.
  assert.equal(counterIncrease(after, after, R), 0);
});

test('histogram_quantile: interpolation inside the bucket, +Inf answers the highest finite bound, NaN when empty', () => {
  const b = (pairs: [number, number][]) => pairs.map(([le, count]) => ({ le, count }));
  // 100 observations: 50 ≤ 0.1, 90 ≤ 0.5, 100 ≤ 1.
  const h = b([[0.1, 50], [0.5, 90], [1, 100], [Infinity, 100]]);
  assert.equal(histogramQuantile(0.5, h), 0.1);
  // rank 70 is 20 of the 40 in (0.1, 0.5]: 0.1 + 0.4 * 0.5
  assert.ok(Math.abs(histogramQuantile(0.7, h) - 0.3) < 1e-9);
  // rank 99: 9 of 10 in (0.5, 1]
  assert.ok(Math.abs(histogramQuantile(0.99, h) - 0.95) < 1e-9);
  // first bucket starts at 0: rank 25 of 50 in (0, 0.1]
  assert.ok(Math.abs(histogramQuantile(0.25, h) - 0.05) < 1e-9);
  // observations above the last finite bound: the +Inf bucket answers that bound
  assert.equal(histogramQuantile(0.99, b([[0.1, 10], [1, 10], [Infinity, 20]])), 1);
  assert.ok(Number.isNaN(histogramQuantile(0.99, b([[0.1, 0], [Infinity, 0]]))), 'no observations');
  assert.ok(Number.isNaN(histogramQuantile(0.99, b([[0.1, 3]]))), 'no +Inf bucket');
  assert.equal(histogramQuantile(-1, h), -Infinity);
  assert.equal(histogramQuantile(2, h), Infinity);
});

test('bucket increases: summed by le over targets, with a reset on one', () => {
  const text = (n1: number, n2: number, inf: number) => `# TYPE turnout_delivery_duration_seconds histogram
turnout_delivery_duration_seconds_bucket{le="0.1"} ${n1}
turnout_delivery_duration_seconds_bucket{le="1"} ${n2}
turnout_delivery_duration_seconds_bucket{le="+Inf"} ${inf}
turnout_delivery_duration_seconds_sum 1
turnout_delivery_duration_seconds_count ${inf}
`;
  const w1 = { before: parseExposition(text(10, 20, 20)), after: parseExposition(text(60, 110, 110)) }; // +50, +90, +90
  const w2 = { before: parseExposition(text(500, 500, 500)), after: parseExposition(text(0, 5, 10)) }; // reset: 0, 5, 10
  assert.deepEqual(bucketIncrease([w1, w2], 'turnout_delivery_duration_seconds'), [{ le: 0.1, count: 50 }, { le: 1, count: 95 }, { le: Infinity, count: 100 }]);
});

test('built-ins: ratios over the interval filtered by source; an empty interval is no data, not healthy', () => {
  const before = [c(R, { source: 'green', version: '2' }, 100), c(DL, { source: 'green', reason: 'max-attempts' }, 10), c(R, { source: 'blue', version: '1' }, 1000)];
  const after = [c(R, { source: 'green', version: '2' }, 200), c(DL, { source: 'green', reason: 'max-attempts' }, 30), c(R, { source: 'blue', version: '1' }, 3000)];
  const w = [{ target: 'x', before, after }];
  assert.deepEqual(builtin('dead-letter-ratio', ['green'], w), { value: 0.2 });
  assert.deepEqual(builtin('dead-letter-ratio', undefined, w), { value: 20 / 2100 });
  assert.deepEqual(builtin('defer-ratio', ['green'], w), { value: 0 });
  const idle = builtin('dead-letter-ratio', ['green'], [{ target: 'x', before: after, after }]);
  assert.ok('noData' in idle, 'nothing received is no data');
  assert.equal(verdict({ max: 0.01 }, idle), 'no-data');
  const p99 = builtin('delivery-p99', ['green'], [{ target: 'x', before: after, after }]);
  assert.ok('noData' in p99, 'no deliveries is no data');
});

test('verdict: bounds are inclusive; NaN is no data', () => {
  assert.equal(verdict({ max: 0.1 }, { value: 0.1 }), 'pass');
  assert.equal(verdict({ max: 0.1 }, { value: 0.11 }), 'fail');
  assert.equal(verdict({ min: 5 }, { value: 4 }), 'fail');
  assert.equal(verdict({ min: 1, max: 2 }, { value: 1.5 }), 'pass');
  assert.equal(verdict({ max: 1 }, { value: NaN }), 'no-data');
});

test('the exposition parser reads labels with escapes, +Inf and timestamps', () => {
  const s = parseExposition('# HELP x y\nfoo{a="b\\"c",le="+Inf"} 3 1700000000000\nbar 1.5e3\n');
  assert.deepEqual(s, [c('foo', { a: 'b"c', le: '+Inf' }, 3), c('bar', {}, 1500)]);
});
