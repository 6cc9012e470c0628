// The two destinations and their retry policies, with a scripted app and a
// scripted broker (no network): what each attempt answer comes to, how many
// attempts are made and how long the waits between them are.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { BrokerError, type Message, type Received } from '../../adapters/broker.ts';
import { AppDestination } from '../../src/app-destination.ts';
import type { AttemptResult, DeliveryContext } from '../../src/delivery.ts';
import type { SendContext } from '../../src/destination.ts';
import { createLogger } from '../../lib/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { RouteDestination } from '../../src/route-destination.ts';
import { bucketOf, colorOf, Router, type Color } from '../../src/router.ts';

const received = (over: Partial<Received> = {}): Received => ({
  id: 'm1', payload: Buffer.from('{"n":1}'), headers: {}, source: 'orders', redelivered: false, ...over,
});

function context(options: { draining?: boolean; abort?: AbortController } = {}): SendContext {
  const abort = options.abort ?? new AbortController();
  return { signal: abort.signal, draining: () => options.draining ?? false };
}

/** An app that answers from a script, one entry per attempt, and records what it was sent. */
function scriptedApp(answers: AttemptResult[]): { post: (m: Message, c: DeliveryContext, s: AbortSignal) => Promise<AttemptResult>; calls: DeliveryContext[] } {
  const calls: DeliveryContext[] = [];
  return {
    calls,
    post: async (_m, ctx) => {
      calls.push({ ...ctx });
      const answer = answers[calls.length - 1];
      assert.ok(answer, `attempt ${calls.length} was not expected`);
      return answer;
    },
  };
}

function toApp(answers: AttemptResult[], maxAttempts = 3, backoffMs = 1): { destination: AppDestination; calls: DeliveryContext[]; metrics: Metrics } {
  const app = scriptedApp(answers);
  const metrics = new Metrics(new Registry(), { brokerUp: () => true, inflight: () => 0 }, { defaultMetrics: false });
  const destination = new AppDestination({ app, retry: { maxAttempts, backoffMs }, metrics, logger: createLogger('silent') });
  return { destination, calls: app.calls, metrics };
}

const retry = (error = 'app answered 503'): AttemptResult => ({ kind: 'retry', error });

describe('AppDestination', () => {
  test('each answer of the app comes to its verdict', async () => {
    const cases: [AttemptResult, unknown][] = [
      [{ kind: 'delivered', status: 200 }, { kind: 'ack' }],
      [{ kind: 'unsupported', status: 415 }, { kind: 'defer', why: 'app answered 415 (does not understand this version)' }],
      [{ kind: 'rejected', error: 'app answered 400' }, { kind: 'dead-letter', reason: 'rejected', error: 'app answered 400', attempts: 1 }],
      [{ kind: 'aborted' }, { kind: 'release', why: 'drain deadline passed during delivery' }],
    ];
    for (const [answer, verdict] of cases) {
      const { destination, calls } = toApp([answer]);
      assert.deepEqual(await destination.send(received(), received(), context()), verdict, answer.kind);
      assert.equal(calls.length, 1);
    }
  });

  test('retries until TURNOUT_MAX_ATTEMPTS, numbering the attempts, then dead-letters as max-attempts', async () => {
    const { destination, calls } = toApp([retry(), retry(), retry('app answered 500: down')], 3);
    const verdict = await destination.send(received({ redelivered: true }), received(), context());
    assert.deepEqual(verdict, { kind: 'dead-letter', reason: 'max-attempts', error: 'app answered 500: down', attempts: 3 });
    assert.deepEqual(calls, [1, 2, 3].map((attempt) => ({ attempt, source: 'orders', redelivered: true })));
  });

  test('a retry that then succeeds is one ack', async () => {
    const { destination, calls, metrics } = toApp([retry(), { kind: 'delivered', status: 204 }], 5);
    assert.deepEqual(await destination.send(received(), received(), context()), { kind: 'ack' });
    assert.equal(calls.length, 2);
    const delivered = (await metrics.registry.getSingleMetric('turnout_messages_delivered_total')?.get())?.values ?? [];
    assert.deepEqual(delivered.map((v) => [v.labels['source'], v.value]), [['orders', 1]]);
  });

  test('Retry-After is honoured: the wait before the next attempt is at least what the app asked for', async () => {
    const { destination, calls } = toApp([{ kind: 'retry', error: 'app answered 429', retryAfterMs: 150 }, { kind: 'delivered', status: 200 }], 5, 1);
    const started = performance.now();
    assert.deepEqual(await destination.send(received(), received(), context()), { kind: 'ack' });
    assert.ok(performance.now() - started >= 140, `waited ${performance.now() - started} ms`);
    assert.equal(calls.length, 2);
  });

  test('while draining, a failure hands the message back instead of spending attempts', async () => {
    const { destination, calls } = toApp([retry('cannot reach the app: ECONNREFUSED')], 5);
    const verdict = await destination.send(received(), received(), context({ draining: true }));
    assert.deepEqual(verdict, { kind: 'release', why: 'draining and the app failed (cannot reach the app: ECONNREFUSED)' });
    assert.equal(calls.length, 1);
  });

  test('the drain deadline during a backoff ends the wait at once with a release', async () => {
    const abort = new AbortController();
    const { destination, calls } = toApp([retry()], 5, 20_000);
    setTimeout(() => abort.abort(), 20);
    const started = performance.now();
    const verdict = await destination.send(received(), received(), context({ abort }));
    assert.deepEqual(verdict, { kind: 'release', why: 'drain deadline passed during backoff' });
    assert.ok(performance.now() - started < 5_000);
    assert.equal(calls.length, 1);
  });
});

/** A broker whose publish answers from a script (an error to throw, or undefined for success). */
function scriptedBroker(failures: (Error | undefined)[]): { publish: (target: string, m: Message) => Promise<void>; published: [string, string][]; calls: () => number } {
  const published: [string, string][] = [];
  let calls = 0;
  return {
    published,
    calls: () => calls,
    publish: async (target, m) => {
      const failure = failures[calls++];
      if (failure !== undefined) throw failure;
      published.push([target, m.id]);
    },
  };
}

function toRoutes(failures: (Error | undefined)[], targets: { blue?: string; green?: string } = { blue: '{source}-blue', green: '{source}-green' }, weight = 0) {
  const broker = scriptedBroker(failures);
  const router = new Router({ targets, routeKey: { kind: 'key' }, weight });
  return { destination: new RouteDestination({ router, broker, retry: { maxAttempts: 3, backoffMs: 1 } }), broker, router };
}

describe('RouteDestination', () => {
  test('publishes what it is given to the picked target, counts the color, acks', async () => {
    const { destination, broker, router } = toRoutes([undefined], undefined, 100);
    const translated: Message = { ...received(), id: 'translated-copy' };
    assert.deepEqual(await destination.send(received(), translated, context()), { kind: 'ack' });
    assert.deepEqual(broker.published, [['orders-green', 'translated-copy']]);
    assert.deepEqual(router.counts, { blue: 0, green: 1 });
  });

  test('the route key is read from the message as consumed, not from the translated copy', async () => {
    const keyOn = (color: Color): string => {
      for (let i = 0; ; i++) if (colorOf(bucketOf(`k${i}`), 50) === color) return `k${i}`;
    };
    const { destination, broker } = toRoutes([undefined, undefined], { blue: 'b', green: 'g' }, 50);
    await destination.send(received({ key: keyOn('green') }), { ...received(), key: keyOn('blue') }, context());
    await destination.send(received({ key: keyOn('blue') }), { ...received(), key: keyOn('green') }, context());
    assert.deepEqual(broker.published.map(([target]) => target), ['g', 'b']);
  });

  test('no target: released with nothing published', async () => {
    const { destination, broker } = toRoutes([], {});
    assert.deepEqual(await destination.send(received(), received(), context()), { kind: 'release', why: 'no route target' });
    assert.equal(broker.calls(), 0);
  });

  test('a permanent broker error dead-letters at once (rejected)', async () => {
    const { destination, broker } = toRoutes([new BrokerError('too-large', 'message too large')], { blue: 'b' });
    const verdict = await destination.send(received(), received(), context());
    assert.deepEqual(verdict, { kind: 'dead-letter', reason: 'rejected', error: 'publishing to blue target "b" failed: message too large', attempts: 1 });
    assert.equal(broker.calls(), 1);
  });

  test('retriable errors are retried; after TURNOUT_MAX_ATTEMPTS the message is kept on its source', async () => {
    const down = new BrokerError('unavailable', 'connection closed');
    const { destination, broker } = toRoutes([down, down, down], { green: 'g' });
    const verdict = await destination.send(received(), received(), context());
    assert.equal(verdict.kind, 'keep');
    assert.equal(verdict.kind === 'keep' ? verdict.why : '', 'publishing to green target "g" failed: connection closed');
    assert.equal(broker.calls(), 3);
  });

  test('a retriable error, then success: one ack, one publish', async () => {
    const { destination, broker } = toRoutes([new Error('socket hang up'), undefined], { green: 'g' });
    assert.deepEqual(await destination.send(received(), received(), context()), { kind: 'ack' });
    assert.deepEqual(broker.published, [['g', 'm1']]);
    assert.equal(broker.calls(), 2);
  });
});
