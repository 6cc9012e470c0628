import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backoffCeiling, backoffDelay, MAX_BACKOFF_MS, sleep } from '../../lib/backoff.ts';

const lowest = (): number => 0;
// Just below 1: Math.random never returns 1.
const highest = (): number => 1 - Number.EPSILON;

describe('backoff: backoffDelay', () => {
  test('doubles per failed attempt (upper bound = base × 2^(n-1))', () => {
    assert.deepEqual([1, 2, 3, 4, 5].map((n) => backoffDelay(n, 200, highest)), [200, 400, 800, 1600, 3200]);
    assert.deepEqual([1, 2, 3, 4].map((n) => backoffDelay(n, 10, highest)), [10, 20, 40, 80]);
  });

  test('equal jitter: never below half of the exponential delay, never above it', () => {
    assert.deepEqual([1, 2, 3, 4, 5].map((n) => backoffDelay(n, 200, lowest)), [100, 200, 400, 800, 1600]);
    assert.equal(backoffDelay(3, 200, () => 0.5), 600);
    for (let i = 0; i < 1000; i++) {
      const n = 1 + (i % 10);
      const exp = Math.min(MAX_BACKOFF_MS, 200 * 2 ** (n - 1));
      const d = backoffDelay(n, 200);
      assert.ok(d >= exp / 2 && d <= exp, `attempt ${n}: ${d} not in [${exp / 2}, ${exp}]`);
    }
  });

  test('the random source actually moves the delay', () => {
    const seen = new Set([0, 0.25, 0.5, 0.75, 0.99].map((r) => backoffDelay(4, 100, () => r)));
    assert.equal(seen.size, 5);
  });

  test('capped at 30 s, also for huge attempt numbers and bases', () => {
    assert.equal(MAX_BACKOFF_MS, 30_000);
    assert.equal(backoffDelay(9, 200, highest), 30_000); // 200 × 256 = 51 200 → 30 000
    assert.equal(backoffDelay(9, 200, lowest), 15_000);
    assert.equal(backoffDelay(10_000, 200, highest), 30_000); // 2^9999 is Infinity
    assert.equal(backoffDelay(1, 100_000, highest), 30_000);
  });

  test('attempt 0 or below counts as the first; base 0 means no wait', () => {
    assert.equal(backoffDelay(0, 200, highest), 200);
    assert.equal(backoffDelay(-3, 200, highest), 200);
    assert.equal(backoffDelay(5, 0, highest), 0);
  });
});

describe('backoff: sleep', () => {
  test('sleeps about the given time and resolves true', async () => {
    const t0 = performance.now();
    assert.equal(await sleep(30), true);
    assert.ok(performance.now() - t0 >= 25);
  });

  test('an abort ends the sleep early with false', async () => {
    const ac = new AbortController();
    const t0 = performance.now();
    setTimeout(() => ac.abort(), 20);
    assert.equal(await sleep(10_000, ac.signal), false);
    assert.ok(performance.now() - t0 < 1_000);
  });

  test('an already aborted signal returns false at once', async () => {
    const ac = new AbortController();
    ac.abort();
    const t0 = performance.now();
    assert.equal(await sleep(10_000, ac.signal), false);
    assert.ok(performance.now() - t0 < 50);
  });

  test('a signal that never aborts does not change the result', async () => {
    const ac = new AbortController();
    assert.equal(await sleep(5, ac.signal), true);
    // Aborting afterwards is harmless (the listener was removed).
    ac.abort();
  });
});

describe('backoffCeiling (the un-jittered delay every exponential wait uses)', () => {
  test('doubles from the base and stops at the cap (30 s unless given)', () => {
    assert.deepEqual([1, 2, 3, 4].map((n) => backoffCeiling(n, 250)), [250, 500, 1000, 2000]);
    assert.equal(backoffCeiling(20, 250), MAX_BACKOFF_MS);
    assert.deepEqual([1, 7, 8, 9].map((n) => backoffCeiling(n, 100, 5000)), [100, 5000, 5000, 5000]);
  });

  test('huge attempt counts stay finite', () => {
    assert.equal(backoffCeiling(10_000, 250, 10_000), 10_000);
    assert.ok(Number.isFinite(backoffCeiling(10_000, 250, Infinity)));
  });

  test('backoffDelay takes a cap of its own', () => {
    const highest = (): number => 0.999999;
    assert.equal(backoffDelay(20, 250, highest, 20_000), 20_000);
    assert.equal(backoffDelay(20, 250, () => 0, 20_000), 10_000);
  });
});
