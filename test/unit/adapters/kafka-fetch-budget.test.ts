// The Kafka subscription's buffer bounds (adapters/kafka/fetch-budget.ts), as
// rules on plain partitions; test/integration/kafka/fetch-budget.test.ts runs
// them against the broker.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FetchBudget, ownBytes, type Buffered, type FetchLimits } from '../../../adapters/kafka/fetch-budget.ts';

const limits: FetchLimits = { partitionRecords: 100, partitionBytes: 10_000, totalBytes: 1_000, floorRecords: 10, floorBytes: 100 };
const part = (length: number, bufferedBytes: number, deferral = false): Buffered => ({ length, bufferedBytes, deferral });

test('a partition pauses at its own bound and resumes below half of it, without pressure', () => {
  const b = new FetchBudget(limits);
  assert.equal(b.shouldPause(part(99, 9_999)), false);
  assert.equal(b.shouldPause(part(100, 50)), true);
  assert.equal(b.shouldPause(part(5, 10_000)), true);
  assert.equal(b.mayResume(part(51, 10)), false);
  assert.equal(b.mayResume(part(50, 5_000)), true);
});

test('past the shared bound, partitions above the floor pause, those below it keep fetching; the pressure ends at half', () => {
  const b = new FetchBudget(limits);
  const big = part(20, 600);
  assert.equal(b.added(big, 600), false);
  assert.equal(b.underPressure, false);
  assert.equal(b.shouldPause(big), false, 'below the shared bound only the own bound counts');
  const other = part(20, 400);
  assert.equal(b.added(other, 400), true, 'reaching the shared bound begins the pressure');
  assert.equal(b.added(other, 1), false, 'once');
  b.removed(other, 1);
  assert.equal(b.total, 1_000);
  assert.equal(b.underPressure, true);
  assert.equal(b.shouldPause(other), true, '20 records is above the floor of 10');
  assert.equal(b.shouldPause(part(9, 99)), false, 'below the floor it still fetches');
  assert.equal(b.shouldPause(part(10, 0)), true, 'the floor counts records too');
  assert.equal(b.mayResume(part(6, 40)), false, 'above half the floor it waits for the pressure to end');
  assert.equal(b.mayResume(part(5, 50)), true, 'at half the floor it fetches again');
  assert.equal(b.removed(big, 499), false, '501 bytes left: still pressed');
  assert.equal(b.removed(big, 1), true, 'at half the shared bound the pressure ends, once');
  assert.equal(b.removed(other, 1), false);
  assert.equal(b.underPressure, false);
  assert.equal(b.mayResume(part(20, 400)), true);
});

test('deferral partitions count only against their own bound', () => {
  const b = new FetchBudget(limits);
  b.added(part(0, 0, true), 5_000);
  assert.equal(b.total, 0);
  assert.equal(b.underPressure, false);
  b.added(part(0, 0), 1_000);
  assert.equal(b.shouldPause(part(50, 5_000, true)), false, 'a deferral partition under its own bound is not paused by the pressure');
  assert.equal(b.mayResume(part(50, 5_000, true)), true);
  assert.equal(b.removed(part(0, 0, true), 5_000), false);
  assert.equal(b.total, 1_000);
});

test('a payload sliced out of a large store gets its own bytes; a small or whole one is kept as it is', () => {
  const response = Buffer.alloc(1 << 20, 7);
  const slice = response.subarray(4096, 4096 + 1024);
  const own = ownBytes(slice);
  assert.notEqual(own.buffer, response.buffer);
  assert.ok(own.buffer.byteLength <= Math.max(64 << 10, Buffer.poolSize), `the copy keeps no large store alive (${own.buffer.byteLength} bytes)`);
  assert.deepEqual(own, slice);
  const whole = Buffer.allocUnsafeSlow(1 << 20);
  assert.equal(ownBytes(whole), whole, 'a payload that is its whole store is not copied');
  const pooled = Buffer.from('small');
  assert.equal(ownBytes(pooled), pooled, "a slice of Node's Buffer pool is not copied");
});
