// The Kafka commit loop, without Kafka: one request at a time, each with the
// latest position of every partition that moved; failures retried; a
// position that moved during its request stays pending.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { OffsetCommits, type CommitPosition } from '../../../adapters/kafka/commits.ts';
import { partitionKey } from '../../../adapters/kafka/partition.ts';
import { waitFor } from '../../support/wait.ts';

interface FakeConsumer {
  requests: CommitPosition[][];
  /** Requests under way at once, at most. */
  peak: number;
  commits: OffsetCommits;
  failNext: number;
  /** Requests wait for this before answering (to move positions meanwhile). */
  gate: Promise<void>;
  errors: unknown[];
}

function fake(options: { closing?: () => boolean; connected?: () => boolean } = {}): FakeConsumer {
  let active = 0;
  const f: FakeConsumer = {
    requests: [],
    peak: 0,
    failNext: 0,
    gate: Promise.resolve(),
    errors: [],
    commits: undefined as unknown as OffsetCommits,
  };
  f.commits = new OffsetCommits({
    sender: () => {
      if (options.connected && !options.connected()) return undefined;
      return async (positions) => {
        active++;
        f.peak = Math.max(f.peak, active);
        f.requests.push(positions.map((p) => ({ ...p })));
        try {
          await f.gate;
          if (f.failNext > 0) {
            f.failNext--;
            throw new Error('commit refused (on purpose)');
          }
        } finally {
          active--;
        }
      };
    },
    closing: options.closing ?? (() => false),
    failed: (err) => f.errors.push(err),
    spacingMs: 5,
  });
  return f;
}

const at = (topic: string, partition: number, offset: bigint): CommitPosition => ({ topic, partition, offset });

describe('kafka: offset commits', () => {
  test('a position is committed once and then no longer pending', async () => {
    const f = fake();
    f.commits.advance(at('t', 0, 5n));
    f.commits.schedule();
    assert.equal(await f.commits.flush(Date.now() + 2000), true);
    assert.deepEqual(f.requests, [[at('t', 0, 5n)]]);
    assert.equal(f.commits.size, 0);
  });

  test('one request at a time; what moves meanwhile goes in the next one, latest position per partition', async () => {
    const f = fake();
    let open!: () => void;
    f.gate = new Promise((r) => (open = r));
    f.commits.advance(at('t', 0, 1n));
    f.commits.schedule();
    await waitFor('the first request', () => f.requests.length === 1, 2000, 1);
    f.commits.advance(at('t', 0, 2n));
    f.commits.advance(at('t', 1, 7n));
    f.commits.schedule();
    f.commits.advance(at('t', 0, 3n));
    f.commits.schedule();
    assert.equal(f.requests.length, 1, 'nothing sent while a request is under way');
    open();
    assert.equal(await f.commits.flush(Date.now() + 2000), true);
    assert.equal(f.peak, 1);
    assert.deepEqual(f.requests, [[at('t', 0, 1n)], [at('t', 0, 3n), at('t', 1, 7n)]]);
  });

  test('a position that moved while its request was under way stays pending', async () => {
    const f = fake();
    let open!: () => void;
    f.gate = new Promise((r) => (open = r));
    f.commits.advance(at('t', 0, 1n));
    f.commits.schedule();
    await waitFor('the request', () => f.requests.length === 1, 2000, 1);
    f.commits.advance(at('t', 0, 2n)); // no schedule(): the position must survive the answer for 1
    open();
    await waitFor('the answer', () => f.commits.size === 1, 2000, 1);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(f.commits.size, 1, 'offset 2 is still to commit');
    f.commits.schedule();
    assert.equal(await f.commits.flush(Date.now() + 2000), true);
    assert.deepEqual(f.requests.at(-1), [at('t', 0, 2n)]);
  });

  test('a failed request is retried with what is pending then', async () => {
    const f = fake();
    f.failNext = 2;
    f.commits.advance(at('t', 0, 4n));
    f.commits.schedule();
    assert.equal(await f.commits.flush(Date.now() + 5000), true);
    assert.equal(f.requests.length, 3, 'two failures, then the commit');
    assert.equal(f.errors.length, 2, 'each failure reported');
    for (const request of f.requests) assert.deepEqual(request, [at('t', 0, 4n)]);
  });

  test('a forgotten partition is not committed', async () => {
    const f = fake();
    f.commits.advance(at('t', 0, 4n));
    f.commits.advance(at('t', 1, 9n));
    f.commits.forget(partitionKey('t', 1));
    assert.equal(f.commits.size, 1);
    f.commits.schedule();
    assert.equal(await f.commits.flush(Date.now() + 2000), true);
    assert.deepEqual(f.requests, [[at('t', 0, 4n)]]);
  });

  test('without a consumer nothing is sent, and flush gives up at its deadline', async () => {
    let connected = false;
    const f = fake({ connected: () => connected });
    f.commits.advance(at('t', 0, 4n));
    f.commits.schedule();
    const started = Date.now();
    assert.equal(await f.commits.flush(Date.now() + 300), false);
    assert.ok(Date.now() - started >= 250, 'waited for the deadline');
    assert.deepEqual(f.requests, []);
    connected = true;
    f.commits.schedule();
    assert.equal(await f.commits.flush(Date.now() + 2000), true, 'sent once there is a consumer');
    assert.deepEqual(f.requests, [[at('t', 0, 4n)]]);
  });

  test('while closing, commits are given up after three failures in a row', async () => {
    const f = fake({ closing: () => true });
    f.failNext = 100;
    f.commits.advance(at('t', 0, 4n));
    f.commits.schedule();
    await waitFor('the loop to give up', () => f.requests.length === 4, 10_000, 5);
    await new Promise((r) => setTimeout(r, 1500)); // longer than the backoff after a fourth failure
    assert.equal(f.requests.length, 4, 'no fifth request');
    assert.equal(f.commits.size, 1, 'the position is still pending');
  });
});
