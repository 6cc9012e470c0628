// In-flight tracking for the pipeline: the concurrency limit, the count the
// drain and the inflight gauge read, and waiting until nothing is left.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InFlight } from '../../src/inflight.ts';

/** A piece of work that finishes when told to. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => {};
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

test('at most `limit` run at once; waiting ones count as in flight', async () => {
  const inFlight = new InFlight(2);
  const gates = [gate(), gate(), gate()];
  let running = 0;
  let peak = 0;
  const runs = gates.map((g, i) => inFlight.run(async () => {
    running++;
    peak = Math.max(peak, running);
    await g.promise;
    running--;
    return i;
  }));
  await new Promise((r) => setImmediate(r));
  assert.equal(running, 2);
  assert.equal(inFlight.count, 3);
  for (const g of gates) g.open();
  assert.deepEqual(await Promise.all(runs), [0, 1, 2]);
  assert.equal(peak, 2);
  assert.equal(inFlight.count, 0);
});

test('a failing piece of work frees its slot and its count', async () => {
  const inFlight = new InFlight(1);
  await assert.rejects(inFlight.run(async () => {
    throw new Error('boom');
  }), /boom/);
  assert.equal(inFlight.count, 0);
  assert.equal(await inFlight.run(async () => 'next'), 'next');
});

test('waitIdle: true at once when idle, true when the last one finishes, false at the timeout', async () => {
  const inFlight = new InFlight(4);
  assert.equal(await inFlight.waitIdle(0), true);
  const g = gate();
  const run = inFlight.run(() => g.promise);
  assert.equal(await inFlight.waitIdle(20), false);
  const idle = inFlight.waitIdle(10_000);
  g.open();
  await run;
  assert.equal(await idle, true);
});
