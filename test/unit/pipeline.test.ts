// The pipeline in process: the real embedded broker, a real local HTTP app,
// deps wired by hand as src/turnout.ts does. Every test accounts for every
// message by id (test/support/tally.ts): app, DLQ, route targets, source.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { BrokerError, type Message } from '../../adapters/broker.ts';
import { MemoryBroker } from '../../adapters/memory/index.ts';
import { loadConfig, type FlagValues } from '../../config/load.ts';
import type { Config } from '../../config/schema.ts';
import { AppDestination } from '../../src/app-destination.ts';
import { AppClient } from '../../src/delivery.ts';
import { retryPolicyOf } from '../../src/destination.ts';
import { createLogger } from '../../lib/log.ts';
import { Metrics } from '../../src/metrics.ts';
import type { Translate } from '../../src/translate/pool.ts';
import { Pipeline } from '../../src/pipeline.ts';
import { RouteDestination } from '../../src/route-destination.ts';
import { bucketOf, colorOf, Router } from '../../src/router.ts';
import { parseTranslators, TranslatorSet } from '../../src/translators.ts';
import { startApp, type Answer, type Delivery, type TestApp } from '../support/app.ts';
import { Tally } from '../support/tally.ts';
import { sleep, waitFor } from '../support/wait.ts';

const DESIGN_STEPS = `"1->2": '$merge([$sift($, function($v,$k){$k != "email"}), {"contact": {"email": email}}])'
"2->1": '$merge([$sift($, function($v,$k){$k != "contact"}), {"email": contact.email}])'
`;

interface Harness {
  config: Config;
  broker: MemoryBroker;
  registry: Registry;
  metrics: Metrics;
  pipeline: Pipeline;
  app: TestApp | undefined;
  router: Router;
  /** Errors the broker saw from the handler (the pipeline must never throw). */
  handlerErrors: unknown[];
  /** Publishes to the source; returns the ids. */
  send(n: number, over?: (i: number) => Partial<Message>): Promise<string[]>;
  /** Sum of a metric's values whose labels match. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** Every message still on a queue (removes them). */
  left(queue: string): Message[];
}

const open: Harness[] = [];
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  open.length = 0;
});

async function harness(
  flags: FlagValues,
  options: { behave?: (d: Delivery) => Answer | Promise<Answer>; translators?: string; consumer?: boolean; start?: boolean; translate?: Translate } = {},
): Promise<Harness> {
  const consumer = options.consumer ?? true;
  const app = consumer ? await startApp(options.behave ?? (() => 200)) : undefined;
  const { config } = loadConfig({
    source: 'in',
    dlq: 'dlq',
    deferDelay: '30',
    retryBackoff: '1',
    ...(app ? { appUrl: app.url } : {}),
    ...flags,
  }, {});
  const handlerErrors: unknown[] = [];
  const queues = new Set<string>(['dlq', ...(config.source ?? [])]);
  for (const t of [config.blue, config.green]) if (t !== undefined) queues.add(t.replaceAll('{source}', 'in'));
  const broker = new MemoryBroker({ queues: [...queues], onError: (err) => handlerErrors.push(err) });
  await broker.connect();
  const registry = new Registry();
  // The in-flight gauge reads the pipeline at scrape time; the pipeline is made below.
  let pipelineRef: Pipeline | undefined;
  const metrics = new Metrics(registry, { brokerUp: () => broker.isUp(), inflight: () => pipelineRef?.inflight ?? 0 }, { defaultMetrics: false });
  // As in turnout.ts: a router always exists; without TURNOUT_BLUE/GREEN it has no targets.
  const router = new Router({
    targets: { blue: config.blue, green: config.green },
    routeKey: config.routeKey,
    weight: config.greenWeight,
    onRouted: (color) => metrics.routed.inc({ color }),
  });
  const client = config.appUrl !== undefined ? new AppClient({ url: config.appUrl, timeoutMs: config.deliveryTimeout, connections: config.concurrency }) : undefined;
  const translators = options.translators !== undefined ? parseTranslators(options.translators, 'test-steps.yaml') : TranslatorSet.empty;
  const logger = createLogger('silent');
  const retry = retryPolicyOf(config);
  const pipeline = new Pipeline({
    config,
    broker,
    translators: () => translators,
    destination: client !== undefined
      ? new AppDestination({ app: client, retry, metrics, logger })
      : new RouteDestination({ router, broker, retry }),
    metrics,
    logger,
    ...(options.translate !== undefined ? { translate: options.translate } : {}),
  });
  pipelineRef = pipeline;
  cleanups.push(async () => {
    await pipeline.drain(0);
    await client?.close();
    await app?.close();
    await broker.close();
  });
  if (options.start ?? true) await pipeline.start();
  const h: Harness = {
    config,
    broker,
    registry,
    metrics,
    pipeline,
    app,
    router,
    handlerErrors,
    async send(n, over = () => ({})) {
      const ids: string[] = [];
      for (let i = 0; i < n; i++) {
        const m: Message = { id: randomUUID(), payload: Buffer.from(JSON.stringify({ n: i, email: `u${i}@example.com` })), headers: {}, contentType: 'application/json', ...over(i) };
        ids.push(m.id);
        await broker.publish('in', m);
      }
      return ids;
    },
    async metric(name, labels = {}) {
      const m = registry.getSingleMetric(name);
      assert.ok(m, `metric ${name} exists`);
      // Histograms report name_bucket/_sum/_count (metricName, untyped in prom-client's d.ts): count the _count.
      const values = (await m.get()).values as { value: number; labels: Record<string, string | number | undefined>; metricName?: string }[];
      return values
        .filter((v) => v.metricName === undefined || v.metricName === name || v.metricName === `${name}_count`)
        .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
        .reduce((a, v) => a + v.value, 0);
    },
    left(queue) {
      return broker.drainQueue(queue);
    },
  };
  open.push(h);
  return h;
}

/** Records where every message ended up. */
function account(h: Harness, extraQueues: string[] = []): { tally: Tally; dlq: Message[]; source: Message[]; queues: Record<string, Message[]> } {
  const tally = new Tally();
  for (const [id, ds] of h.app?.accepted ?? []) for (let i = 0; i < ds.length; i++) tally.record('app', id);
  const dlq = h.left('dlq');
  for (const m of dlq) tally.record('dlq', m.id);
  const source = h.left('in');
  for (const m of source) tally.record('source', m.id);
  const queues: Record<string, Message[]> = {};
  for (const q of extraQueues) {
    queues[q] = h.left(q);
    for (const m of queues[q] ?? []) tally.record(q, m.id);
  }
  return { tally, dlq, source, queues };
}

/** Waits until the source has nothing ready, delayed or in flight and the pipeline is idle. */
async function settled(h: Harness, timeoutMs = 10_000): Promise<void> {
  await waitFor('the sources to be empty and the pipeline idle', async () => {
    for (const source of h.config.source ?? []) {
      const d = await h.broker.depth(source);
      if (d.depth !== 0 || d.inflight !== 0) return false;
    }
    return h.pipeline.inflight === 0;
  }, timeoutMs, 5);
}

function assertEach(tally: Tally, ids: string[], place: string): void {
  assert.deepEqual(tally.missing(ids), [], 'no message is missing');
  assert.deepEqual(tally.duplicates(), [], 'no message is in two places or twice in one');
  for (const id of ids) assert.deepEqual(tally.placesOf(id), { [place]: 1 }, `${id} ends once in ${place}`);
}

describe('pipeline: pass, translate, defer', () => {
  test('pass → delivered once each, payload and headers intact', async () => {
    const h = await harness({});
    const ids = await h.send(20, (i) => ({ headers: { 'x-schema-version': '1', 'x-n': String(i) }, key: `k${i}` }));
    await settled(h);
    const { tally } = account(h);
    assertEach(tally, ids, 'app');
    assert.equal(tally.count('app'), 20);
    for (const [i, id] of ids.entries()) {
      const [d] = h.app?.accepted.get(id) ?? [];
      assert.ok(d);
      assert.deepEqual(JSON.parse(d.body.toString()), { n: i, email: `u${i}@example.com` });
      assert.equal(d.headers['x-n'], String(i));
      assert.equal(d.headers['x-turnout-source'], 'in');
      assert.equal(d.headers['x-turnout-key'], `k${i}`);
      assert.equal(d.attempt, 1);
      assert.equal(d.headers['x-turnout-translated-from'], undefined);
    }
    assert.equal(h.app?.deliveries.length, 20, 'no extra attempts');
    assert.equal(await h.metric('turnout_messages_received_total', { source: 'in', version: '1' }), 20);
    assert.equal(await h.metric('turnout_messages_delivered_total', { source: 'in' }), 20);
    assert.equal(await h.metric('turnout_delivery_duration_seconds'), 20, 'one observation per attempt');
    assert.equal(await h.metric('turnout_messages_dead_lettered_total'), 0);
    assert.equal(await h.metric('turnout_messages_deferred_total'), 0);
    assert.equal(await h.metric('turnout_messages_translated_total'), 0);
    assert.equal(await h.metric('turnout_inflight_messages'), 0);
    assert.deepEqual(h.handlerErrors, []);
  });

  test('no version header → TURNOUT_DEFAULT_VERSION decides', async () => {
    const h = await harness({ accept: '2', defaultVersion: '2' });
    const ids = await h.send(3);
    await settled(h);
    const { tally } = account(h);
    assertEach(tally, ids, 'app');
    assert.equal(await h.metric('turnout_messages_received_total', { version: '2' }), 3);
  });

  test('translate → delivered with the new version header and x-turnout-translated-from', async () => {
    const h = await harness({ accept: '2' }, { translators: DESIGN_STEPS });
    const ids = await h.send(10, () => ({ headers: { 'x-schema-version': 'v1', 'x-keep': 'yes' }, contentType: 'text/plain' }));
    await settled(h);
    const { tally } = account(h);
    assertEach(tally, ids, 'app');
    for (const id of ids) {
      const d = h.app?.accepted.get(id)?.[0];
      assert.ok(d);
      const body = JSON.parse(d.body.toString()) as { n: number; contact: { email: string }; email?: string };
      assert.deepEqual(body, { n: body.n, contact: { email: `u${body.n}@example.com` } });
      assert.equal(d.headers['x-schema-version'], '2');
      assert.equal(d.headers['x-turnout-translated-from'], '1');
      assert.equal(d.headers['x-keep'], 'yes');
      assert.equal(d.headers['content-type'], 'application/json');
    }
    assert.equal(await h.metric('turnout_messages_translated_total', { from: '1', to: '2' }), 10);
    assert.equal(await h.metric('turnout_messages_received_total', { source: 'in', version: '1' }), 10);
    assert.equal(await h.metric('turnout_messages_delivered_total', { source: 'in' }), 10);
  });

  test('defer → back on the source with x-turnout-deferrals: 1, unchanged otherwise', async () => {
    const h = await harness({ accept: '2', deferDelay: '150', maxDeferrals: '5' });
    const ids = await h.send(4, () => ({ headers: { 'x-schema-version': '3' } }));
    await waitFor('4 deferrals', async () => (await h.metric('turnout_messages_deferred_total', { source: 'in', version: '3' })) === 4);
    // Stop consuming so the deferred copies stay on the source for inspection.
    assert.deepEqual(await h.pipeline.drain(1_000), { clean: true, released: 0 });
    assert.equal(h.broker.held(), 4, 'all four are on the source, delayed');
    // Let the defer delay (150 ms, started before the drain) pass so they are ready again.
    await sleep(200);
    const { tally, source } = account(h);
    assertEach(tally, ids, 'source');
    for (const m of source) {
      assert.equal(m.headers['x-turnout-deferrals'], '1');
      assert.equal(m.headers['x-schema-version'], '3');
      assert.match(m.payload.toString(), /"email"/);
    }
    assert.equal(h.app?.deliveries.length, 0, 'a deferred message is not sent to the app');
    assert.equal(await h.metric('turnout_messages_deferred_total'), 4);
    assert.equal(await h.metric('turnout_messages_dead_lettered_total'), 0);
  });

  test('deferred messages are picked up by a consumer that accepts their version', async () => {
    const old = await harness({ accept: '1', maxDeferrals: '100', deferDelay: '40' });
    const ids = await old.send(5, () => ({ headers: { 'x-schema-version': '2' } }));
    await waitFor('each deferred at least once', async () => (await old.metric('turnout_messages_deferred_total')) >= 5);
    await old.pipeline.drain(1_000);
    // A new consumer (accepts 2) on the same broker takes them.
    const app2 = await startApp();
    const client2 = new AppClient({ url: app2.url, timeoutMs: 5_000, connections: 4 });
    const registry2 = new Registry();
    const metrics2 = new Metrics(registry2, { brokerUp: () => true, inflight: () => 0 }, { defaultMetrics: false });
    const config2 = loadConfig({ source: 'in', dlq: 'dlq', appUrl: app2.url, accept: '2' }, {}).config;
    const logger2 = createLogger('silent');
    const destination2 = new AppDestination({ app: client2, retry: retryPolicyOf(config2), metrics: metrics2, logger: logger2 });
    const p2 = new Pipeline({ config: config2, broker: old.broker, translators: () => TranslatorSet.empty, destination: destination2, metrics: metrics2, logger: logger2 });
    cleanups.push(async () => {
      await p2.drain(0);
      await client2.close();
      await app2.close();
    });
    await p2.start();
    await settled(old);
    const { tally } = account(old);
    for (const [id, ds] of app2.accepted) for (const _ of ds) tally.record('new-app', id);
    assertEach(tally, ids, 'new-app');
    for (const id of ids) assert.ok(Number(app2.accepted.get(id)?.[0]?.headers['x-turnout-deferrals']) >= 1);
    assert.equal(old.app?.deliveries.length, 0);
  });

  test('deferrals exhausted → DLQ unsupported-version with the original message', async () => {
    const h = await harness({ accept: '2', maxDeferrals: '2', deferDelay: '5' });
    const ids = await h.send(3, () => ({ headers: { 'x-schema-version': '3' }, key: 'kk' }));
    await waitFor('3 dead-lettered', async () => (await h.metric('turnout_messages_dead_lettered_total')) === 3);
    await settled(h);
    const { tally, dlq } = account(h);
    assertEach(tally, ids, 'dlq');
    for (const m of dlq) {
      assert.equal(m.headers['x-turnout-dlq-reason'], 'unsupported-version');
      assert.match(m.headers['x-turnout-error'] ?? '', /deferred 2 times \(TURNOUT_MAX_DEFERRALS=2\)/);
      assert.equal(m.headers['x-turnout-attempts'], '0');
      assert.equal(m.headers['x-turnout-source'], 'in');
      assert.ok(!Number.isNaN(Date.parse(m.headers['x-turnout-failed-at'] ?? '')));
      assert.equal(m.headers['x-turnout-deferrals'], undefined);
      assert.equal(m.headers['x-schema-version'], '3');
      assert.equal(m.key, 'kk');
    }
    assert.equal(h.app?.deliveries.length, 0);
    assert.equal(await h.metric('turnout_messages_deferred_total', { version: '3' }), 6, 'deferred exactly twice each');
    assert.equal(await h.metric('turnout_messages_dead_lettered_total', { source: 'in', reason: 'unsupported-version' }), 3);
    assert.equal(await h.metric('turnout_messages_received_total', { version: '3' }), 9, 'seen three times each');
  });

  test('TURNOUT_MAX_DEFERRALS=0 → dead-lettered at once', async () => {
    const h = await harness({ accept: '2', maxDeferrals: '0' });
    const ids = await h.send(2, () => ({ headers: { 'x-schema-version': '1' } }));
    await settled(h);
    const { tally, dlq } = account(h);
    assertEach(tally, ids, 'dlq');
    assert.ok(dlq.every((m) => m.headers['x-turnout-dlq-reason'] === 'unsupported-version'));
    assert.equal(await h.metric('turnout_messages_deferred_total'), 0);
  });
});

describe('pipeline: dead-lettering', () => {
  test('an invalid version header → DLQ unsupported-version', async () => {
    const h = await harness({});
    const ids = await h.send(2, (i) => ({ headers: { 'x-schema-version': ['banana', '0'][i] ?? '' } }));
    await settled(h);
    const { tally, dlq } = account(h);
    assertEach(tally, ids, 'dlq');
    for (const m of dlq) {
      assert.equal(m.headers['x-turnout-dlq-reason'], 'unsupported-version');
      assert.match(m.headers['x-turnout-error'] ?? '', /x-schema-version ".*" is not a version/);
    }
    assert.equal(h.app?.deliveries.length, 0);
    assert.equal(await h.metric('turnout_messages_received_total', { version: 'invalid' }), 2);
    assert.equal(await h.metric('turnout_messages_dead_lettered_total', { reason: 'unsupported-version' }), 2);
  });

  test('a 58 KiB version header is quoted by its first 64 characters and its length', async () => {
    const h = await harness({});
    const raw = 'h'.repeat(58_108);
    const ids = await h.send(1, () => ({ headers: { 'x-schema-version': raw } }));
    await settled(h);
    const { tally, dlq } = account(h);
    assertEach(tally, ids, 'dlq');
    assert.equal(dlq[0]?.headers['x-turnout-dlq-reason'], 'unsupported-version');
    assert.equal(dlq[0]?.headers['x-schema-version'], raw, 'the copy keeps the header as it came');
    assert.match(dlq[0]?.headers['x-turnout-error'] ?? '', /^x-schema-version "h{64}\.\.\." \(58108 characters\) is not a version/);
  });

  test('too large → DLQ too-large; exactly the limit passes', async () => {
    const h = await harness({ maxMessageBytes: '10' });
    const [big] = await h.send(1, () => ({ payload: Buffer.alloc(11, 'a') }));
    const [fits] = await h.send(1, () => ({ payload: Buffer.alloc(10, 'b') }));
    await settled(h);
    const { tally, dlq } = account(h);
    assert.deepEqual(tally.placesOf(big ?? ''), { dlq: 1 });
    assert.deepEqual(tally.placesOf(fits ?? ''), { app: 1 });
    assert.deepEqual(tally.duplicates(), []);
    assert.equal(dlq[0]?.headers['x-turnout-dlq-reason'], 'too-large');
    assert.match(dlq[0]?.headers['x-turnout-error'] ?? '', /11 bytes.*TURNOUT_MAX_MESSAGE_BYTES is 10/);
    assert.deepEqual(dlq[0]?.payload, Buffer.alloc(11, 'a'));
    assert.equal(await h.metric('turnout_messages_received_total', { version: 'unknown' }), 1);
    assert.equal(await h.metric('turnout_messages_dead_lettered_total', { reason: 'too-large' }), 1);
  });

  test('translate error → DLQ translate-error with the ORIGINAL payload and version', async () => {
    const steps = `"1->2": '$merge([$, {"v": 2}])'\n"2->3": '$error("boom")'`;
    const h = await harness({ accept: '2,3' }, { translators: steps });
    // Not JSON: translating 1->2 needs JSON.
    const [notJson] = await h.send(1, () => ({ payload: Buffer.from('<xml/>'), headers: { 'x-schema-version': '1' }, contentType: 'application/xml' }));
    const h3 = await harness({ accept: '3' }, { translators: steps });
    const [fails] = await h3.send(1, () => ({ payload: Buffer.from('{"a":1}'), headers: { 'x-schema-version': '2' } }));
    await settled(h);
    await settled(h3);
    const a = account(h);
    const b = account(h3);
    assert.deepEqual(a.tally.placesOf(notJson ?? ''), { dlq: 1 });
    assert.deepEqual(b.tally.placesOf(fails ?? ''), { dlq: 1 });
    const [m1] = a.dlq;
    assert.equal(m1?.headers['x-turnout-dlq-reason'], 'translate-error');
    assert.match(m1?.headers['x-turnout-error'] ?? '', /not JSON/);
    assert.equal(m1?.payload.toString(), '<xml/>');
    assert.equal(m1?.headers['x-schema-version'], '1');
    assert.equal(m1?.contentType, 'application/xml');
    const [m2] = b.dlq;
    assert.equal(m2?.headers['x-turnout-dlq-reason'], 'translate-error');
    assert.match(m2?.headers['x-turnout-error'] ?? '', /step 2->3 failed: boom/);
    assert.equal(m2?.payload.toString(), '{"a":1}');
    assert.equal(m2?.headers['x-schema-version'], '2');
    assert.equal(m2?.headers['x-turnout-translated-from'], undefined);
    assert.equal(h.app?.deliveries.length, 0);
    assert.equal(h3.app?.deliveries.length, 0);
    assert.equal(await h.metric('turnout_messages_translated_total'), 0);
    assert.equal(await h.metric('turnout_messages_dead_lettered_total', { reason: 'translate-error' }), 1);
  });

  test('a translated copy over TURNOUT_MAX_MESSAGE_BYTES → DLQ too-large with the original', async () => {
    // The original (13 bytes) fits; its translation (a 2 000-element array) does not.
    const h = await harness({ accept: '2', maxMessageBytes: '1000' }, { translators: `"1->2": '[1..2000]'` });
    const [id] = await h.send(1, () => ({ payload: Buffer.from('{"small":true}'), headers: { 'x-schema-version': '1' } }));
    await settled(h);
    const a = account(h);
    assert.deepEqual(a.tally.placesOf(id ?? ''), { dlq: 1 });
    const [m] = a.dlq;
    assert.equal(m?.headers['x-turnout-dlq-reason'], 'too-large');
    assert.match(m?.headers['x-turnout-error'] ?? '', /translated copy \(v1->v2\) is \d+ bytes; TURNOUT_MAX_MESSAGE_BYTES is 1000/);
    assert.equal(m?.payload.toString(), '{"small":true}');
    assert.equal(h.app?.deliveries.length, 0);
    assert.equal(await h.metric('turnout_messages_dead_lettered_total', { reason: 'too-large' }), 1);
    assert.equal(await h.metric('turnout_messages_translated_total'), 0);
  });

  test('a translated message the app rejects is dead-lettered as the original, not the translation', async () => {
    const h = await harness({ accept: '2' }, { translators: DESIGN_STEPS, behave: () => 422 });
    const [id] = await h.send(1, () => ({ headers: { 'x-schema-version': '1' } }));
    await settled(h);
    const { tally, dlq } = account(h);
    assert.deepEqual(tally.placesOf(id ?? ''), { dlq: 1 });
    assert.deepEqual(JSON.parse(dlq[0]?.payload.toString() ?? ''), { n: 0, email: 'u0@example.com' });
    assert.equal(dlq[0]?.headers['x-schema-version'], '1');
    assert.equal(dlq[0]?.headers['x-turnout-translated-from'], undefined);
    assert.equal(dlq[0]?.contentType, 'application/json');
    assert.equal(dlq[0]?.headers['x-turnout-dlq-reason'], 'rejected');
  });

  test('app 400 → DLQ rejected after exactly 1 attempt', async () => {
    const h = await harness({ maxAttempts: '5' }, { behave: () => ({ status: 400, body: 'missing field' }) });
    const ids = await h.send(5);
    await settled(h);
    const { tally, dlq } = account(h);
    assertEach(tally, ids, 'dlq');
    for (const id of ids) assert.equal(h.app?.deliveries.filter((d) => d.id === id).length, 1);
    for (const m of dlq) {
      assert.equal(m.headers['x-turnout-dlq-reason'], 'rejected');
      assert.equal(m.headers['x-turnout-attempts'], '1');
      assert.equal(m.headers['x-turnout-error'], 'app answered 400: missing field');
    }
    assert.equal(await h.metric('turnout_messages_dead_lettered_total', { source: 'in', reason: 'rejected' }), 5);
    assert.equal(await h.metric('turnout_messages_delivered_total'), 0);
    assert.equal(await h.metric('turnout_delivery_duration_seconds'), 5);
  });

  test('app 500 → DLQ max-attempts after exactly TURNOUT_MAX_ATTEMPTS attempts', async () => {
    const h = await harness({ maxAttempts: '3' }, { behave: () => 500 });
    const ids = await h.send(4);
    await settled(h);
    const { tally, dlq } = account(h);
    assertEach(tally, ids, 'dlq');
    for (const id of ids) {
      assert.deepEqual(h.app?.deliveries.filter((d) => d.id === id).map((d) => d.attempt), [1, 2, 3]);
    }
    for (const m of dlq) {
      assert.equal(m.headers['x-turnout-dlq-reason'], 'max-attempts');
      assert.equal(m.headers['x-turnout-attempts'], '3');
      assert.equal(m.headers['x-turnout-error'], 'app answered 500');
    }
    assert.equal(await h.metric('turnout_messages_dead_lettered_total', { reason: 'max-attempts' }), 4);
    assert.equal(await h.metric('turnout_delivery_duration_seconds'), 12);
  });

  test('a retry that then succeeds is delivered once, not dead-lettered', async () => {
    const h = await harness({ maxAttempts: '4' }, { behave: (d) => (d.attempt < 3 ? 503 : 200) });
    const ids = await h.send(3);
    await settled(h);
    const { tally } = account(h);
    assertEach(tally, ids, 'app');
    for (const id of ids) assert.deepEqual(h.app?.deliveries.filter((d) => d.id === id).map((d) => d.attempt), [1, 2, 3]);
    assert.equal(await h.metric('turnout_messages_delivered_total'), 3);
  });

  test('app 415 → deferred, then delivered when the app takes it', async () => {
    const h = await harness({ deferDelay: '10' }, { behave: (d) => (d.headers['x-turnout-deferrals'] === undefined ? 415 : 200) });
    const ids = await h.send(4, () => ({ headers: { 'x-schema-version': '2' } }));
    await settled(h);
    const { tally } = account(h);
    assertEach(tally, ids, 'app');
    for (const id of ids) {
      const ds = h.app?.deliveries.filter((d) => d.id === id) ?? [];
      assert.deepEqual(ds.map((d) => d.headers['x-turnout-deferrals']), [undefined, '1']);
      assert.deepEqual(ds.map((d) => d.attempt), [1, 1], 'a deferral starts the attempts afresh');
    }
    assert.equal(await h.metric('turnout_messages_deferred_total', { source: 'in', version: '2' }), 4);
    assert.equal(await h.metric('turnout_messages_delivered_total'), 4);
    assert.equal(await h.metric('turnout_messages_dead_lettered_total'), 0);
  });

  test('an unexpected error (a bug, not a verdict) → released (after a pause), then dead-lettered max-attempts after TURNOUT_MAX_ATTEMPTS tries, not redelivered for ever', async () => {
    let calls = 0;
    const buggy: Translate = async () => {
      calls++;
      throw new TypeError('cannot read properties of undefined');
    };
    const h = await harness({ maxAttempts: '3', retryBackoff: '10', accept: '2' }, { translators: `"1->2": '$'\n`, translate: buggy });
    const [ok] = await h.send(1, () => ({ headers: { 'x-schema-version': '2' } }));
    const [bad] = await h.send(1, () => ({ headers: { 'x-schema-version': '1' } }));
    await settled(h);
    const { tally, dlq } = account(h);
    assert.deepEqual(tally.placesOf(ok ?? ''), { app: 1 });
    assert.deepEqual(tally.placesOf(bad ?? ''), { dlq: 1 });
    assert.equal(calls, 3, 'tried TURNOUT_MAX_ATTEMPTS times, then dead-lettered');
    assert.equal(dlq[0]?.headers['x-turnout-dlq-reason'], 'max-attempts');
    assert.match(dlq[0]?.headers['x-turnout-error'] ?? '', /turnout failed on this message 3 times \(unexpected error: TypeError: cannot read properties of undefined\)/);
    assert.equal(dlq[0]?.payload.toString(), JSON.stringify({ n: 0, email: 'u0@example.com' }), 'the original payload');
    assert.deepEqual(h.handlerErrors, []);
  });

  test('DLQ publish failure → the message is released, not lost, and dead-lettered once the DLQ is back', async () => {
    const h = await harness({}, { behave: () => 400 });
    let failures = 0;
    h.broker.publishFault = (queue) => (queue === 'dlq' && failures++ < 3 ? new BrokerError('unavailable', 'dlq is down') : undefined);
    const [id] = await h.send(1);
    await settled(h);
    const { tally, dlq } = account(h);
    assert.deepEqual(tally.placesOf(id ?? ''), { dlq: 1 });
    assert.equal(failures, 4, 'three refused publishes, then one that went through');
    const ds = h.app?.deliveries.filter((d) => d.id === id) ?? [];
    assert.equal(ds.length, 4, 'released and consumed again after each failed dead-lettering');
    assert.deepEqual(ds.map((d) => d.headers['x-turnout-redelivered']), [undefined, 'true', 'true', 'true']);
    assert.equal(dlq[0]?.headers['x-turnout-dlq-reason'], 'rejected');
    assert.equal(await h.metric('turnout_messages_dead_lettered_total'), 1, 'counted only when the broker confirmed');
    assert.deepEqual(h.handlerErrors, []);
  });

  test('the DLQ refuses the copy for its headers (invalid) → dead-lettered once without them, not released for ever', async () => {
    // Found by the hostile-input campaign: a foreign message whose headers, rendered as strings, pass AMQP's
    // 64 KiB header table only without turnout's dead-letter headers was released and redelivered endlessly.
    const h = await harness({}, { behave: () => 400 });
    let refused = 0;
    h.broker.publishFault = (queue, m) => {
      if (queue !== 'dlq' || m.headers['x-huge'] === undefined) return undefined;
      refused++;
      return new BrokerError('invalid', 'Encoded field table (headers or arguments) exceeds the 65536 byte encoding buffer');
    };
    const [id] = await h.send(1, () => ({ headers: { 'x-schema-version': '1', 'x-huge': 'h'.repeat(100), 'x-small': 's' } }));
    await settled(h);
    const { tally, dlq } = account(h);
    assert.deepEqual(tally.placesOf(id ?? ''), { dlq: 1 });
    assert.equal(refused, 1, 'one refused full copy, then the reduced one');
    assert.equal(h.app?.deliveries.filter((d) => d.id === id).length, 1, 'never released and delivered again');
    const copy = dlq[0];
    assert.equal(copy?.headers['x-turnout-dlq-reason'], 'rejected');
    assert.equal(copy?.headers['x-schema-version'], '1', 'the version header stays');
    assert.equal(copy?.headers['x-huge'], undefined);
    assert.equal(copy?.headers['x-small'], undefined, 'the message\'s own headers are dropped');
    assert.match(copy?.headers['x-turnout-error'] ?? '', /^app answered 400.*other headers were dropped: the dead-letter target refused them \(Encoded field table/);
    assert.equal(copy?.payload.toString(), JSON.stringify({ n: 0, email: 'u0@example.com' }), 'the original payload');
    assert.equal(await h.metric('turnout_messages_dead_lettered_total', { reason: 'rejected' }), 1);
    assert.deepEqual(h.handlerErrors, []);
  });

  test('the DLQ refuses the copy for its size (too-large, e.g. Kafka MESSAGE_TOO_LARGE) → dead-lettered once without the added headers', async () => {
    // A message the broker took at its size limit: the dead-letter headers are what pushes the copy past it.
    const h = await harness({}, { behave: () => 400 });
    let refused = 0;
    h.broker.publishFault = (queue, m) => {
      if (queue !== 'dlq' || m.headers['x-trace'] === undefined) return undefined;
      refused++;
      return new BrokerError('too-large', 'publish to dlq: MESSAGE_TOO_LARGE');
    };
    const [id] = await h.send(1, () => ({ headers: { 'x-schema-version': '1', 'x-trace': 't-1' } }));
    await settled(h);
    const { tally, dlq } = account(h);
    assert.deepEqual(tally.placesOf(id ?? ''), { dlq: 1 });
    assert.equal(refused, 1, 'one refused full copy, then the reduced one');
    assert.equal(h.app?.deliveries.filter((d) => d.id === id).length, 1, 'never released and delivered again');
    assert.equal(dlq[0]?.headers['x-turnout-dlq-reason'], 'rejected');
    assert.equal(dlq[0]?.headers['x-trace'], undefined, 'the message\'s own headers are dropped');
    assert.match(dlq[0]?.headers['x-turnout-error'] ?? '', /dead-letter target refused them \(publish to dlq: MESSAGE_TOO_LARGE\)/);
    assert.deepEqual(h.handlerErrors, []);
  });

  test('DLQ down for good → the message stays on the source (drained), never dropped', async () => {
    const h = await harness({}, { behave: () => 400 });
    h.broker.publishFault = (queue) => (queue === 'dlq' ? new BrokerError('unavailable', 'dlq is down') : undefined);
    const ids = await h.send(3);
    await waitFor('several failed dead-letterings', () => (h.app?.deliveries.length ?? 0) >= 6);
    const result = await h.pipeline.drain(2_000);
    assert.equal(result.clean, true);
    const { tally } = account(h);
    assertEach(tally, ids, 'source');
    assert.equal(await h.metric('turnout_messages_dead_lettered_total'), 0);
    assert.equal(tally.count('app'), 0);
  });
});

describe('pipeline: green failures flow back to blue', () => {
  // docs/reference.md: the green queue's dead-letter target is the legacy (blue) queue, so a
  // message the new consumer cannot handle is processed by the old one, never lost.
  for (const [what, body] of [
    ['a plain error text', 'database is down'],
    ['a non-Latin-1 error text', 'Ошибка: 数据库不可用 🙁'],
    ['control characters in the error text', 'bad \u0000 byte \u001b[31m red'],
    ['an error text longer than the header limit', 'x'.repeat(600)],
  ] as const) {
    test(`green app fails with ${what} → dead-lettered to blue → delivered by the blue consumer`, async () => {
      const green = await harness({ source: 'green', dlq: 'blue', maxAttempts: '2' }, { behave: () => ({ status: 500, body }) });
      green.broker.declare('blue');
      green.broker.declare('blue.dlq');
      const blueApp = await startApp();
      const blueClient = new AppClient({ url: blueApp.url, timeoutMs: 5_000, connections: 2 });
      const blueRegistry = new Registry();
      const blueConfig = loadConfig({ source: 'blue', dlq: 'blue.dlq', appUrl: blueApp.url, retryBackoff: '1' }, {}).config;
      const blueMetrics = new Metrics(blueRegistry, { brokerUp: () => true, inflight: () => 0 }, { defaultMetrics: false });
      const blueLogger = createLogger('silent');
      const blue = new Pipeline({
        config: blueConfig,
        broker: green.broker,
        translators: () => TranslatorSet.empty,
        destination: new AppDestination({ app: blueClient, retry: retryPolicyOf(blueConfig), metrics: blueMetrics, logger: blueLogger }),
        metrics: blueMetrics,
        logger: blueLogger,
      });
      cleanups.push(async () => {
        await blue.drain(0);
        await blueClient.close();
        await blueApp.close();
      });
      await blue.start();
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const id = randomUUID();
        ids.push(id);
        await green.broker.publish('green', { id, payload: Buffer.from(`{"n":${i}}`), headers: { 'x-schema-version': '1' } });
      }
      await settled(green);
      await waitFor('the blue side to finish', async () => {
        const d = await green.broker.depth('blue');
        return d.depth === 0 && d.inflight === 0;
      });
      const tally = new Tally();
      for (const [id, ds] of blueApp.accepted) for (const _ of ds) tally.record('blue-app', id);
      for (const m of green.left('blue.dlq')) tally.record('blue.dlq', m.id);
      for (const m of green.left('green')) tally.record('green', m.id);
      for (const m of green.left('dlq')) tally.record('dlq', m.id);
      assertEach(tally, ids, 'blue-app');
      assert.equal(green.app?.accepted.size, 0);
      for (const id of ids) {
        const d = blueApp.accepted.get(id)?.[0];
        assert.equal(d?.headers['x-turnout-dlq-reason'], 'max-attempts');
        assert.match(String(d?.headers['x-turnout-error']), /^app answered 500: /);
      }
    });
  }
});

describe('pipeline: router role', () => {
  test('no app: each message goes to exactly one of blue/green, by its key', async () => {
    const h = await harness({ blue: '{source}-blue', green: '{source}-green', greenWeight: '50' }, { consumer: false });
    const keys = Array.from({ length: 200 }, (_, i) => `customer-${i}`);
    const ids = await h.send(200, (i) => ({ key: keys[i] as string, headers: { 'x-schema-version': '1' } }));
    await settled(h);
    const { tally, queues } = account(h, ['in-blue', 'in-green']);
    assert.deepEqual(tally.missing(ids), []);
    assert.deepEqual(tally.duplicates(), []);
    assert.equal(tally.count('dlq') + tally.count('source'), 0);
    for (const [q, color] of [['in-blue', 'blue'], ['in-green', 'green']] as const) {
      for (const m of queues[q] ?? []) assert.equal(colorOf(bucketOf(m.key ?? ''), 50), color, `${m.key} on ${q}`);
    }
    const blue = tally.count('in-blue');
    const green = tally.count('in-green');
    assert.equal(blue + green, 200);
    assert.ok(blue > 60 && green > 60, `a real split: ${blue} blue, ${green} green`);
    assert.deepEqual(h.router?.counts, { blue, green });
    assert.equal(await h.metric('turnout_messages_routed_total', { color: 'blue' }), blue);
    assert.equal(await h.metric('turnout_messages_routed_total', { color: 'green' }), green);
    // Headers and payload travel unchanged.
    const m = queues['in-green']?.[0];
    assert.equal(m?.headers['x-schema-version'], '1');
    assert.match(m?.payload.toString() ?? '', /email/);
  });

  test('weight 0 → all blue; 100 → all green', async () => {
    for (const [weight, color] of [['0', 'blue'], ['100', 'green']] as const) {
      const h = await harness({ blue: 'b', green: 'g', greenWeight: weight }, { consumer: false });
      const ids = await h.send(30, (i) => ({ key: `k${i}` }));
      await settled(h);
      const { tally } = account(h, ['b', 'g']);
      assertEach(tally, ids, color === 'blue' ? 'b' : 'g');
      assert.equal(await h.metric('turnout_messages_routed_total', { color }), 30);
    }
  });

  test('router role translates before routing when the targets need another version', async () => {
    const h = await harness({ green: 'g', accept: '2' }, { consumer: false, translators: DESIGN_STEPS });
    const ids = await h.send(3, () => ({ headers: { 'x-schema-version': '1' } }));
    await settled(h);
    const { tally, queues } = account(h, ['g']);
    assertEach(tally, ids, 'g');
    for (const m of queues.g ?? []) {
      assert.equal(m.headers['x-schema-version'], '2');
      assert.equal(m.headers['x-turnout-translated-from'], '1');
      assert.match(m.payload.toString(), /"contact"/);
    }
  });

  test('a target that refuses the message for good → DLQ rejected', async () => {
    const h = await harness({ blue: 'b', green: 'g', greenWeight: '100' }, { consumer: false });
    h.broker.publishFault = (queue) => (queue === 'g' ? new BrokerError('too-large', 'too big for g') : undefined);
    const ids = await h.send(2);
    await settled(h);
    const { tally, dlq } = account(h, ['b', 'g']);
    assertEach(tally, ids, 'dlq');
    assert.match(dlq[0]?.headers['x-turnout-error'] ?? '', /green target "g" failed: too big for g/);
    assert.equal(dlq[0]?.headers['x-turnout-dlq-reason'], 'rejected');
    assert.equal(await h.metric('turnout_messages_routed_total'), 0);
  });

  test('a target that is briefly unavailable → retried, routed once', async () => {
    const h = await harness({ green: 'g', maxAttempts: '5' }, { consumer: false });
    let failures = 0;
    h.broker.publishFault = (queue) => (queue === 'g' && failures++ < 2 ? new BrokerError('unavailable', 'blip') : undefined);
    const [id] = await h.send(1);
    await settled(h);
    const { tally } = account(h, ['g']);
    assert.deepEqual(tally.placesOf(id ?? ''), { g: 1 });
    assert.equal(failures, 3);
    assert.equal(await h.metric('turnout_messages_routed_total', { color: 'green' }), 1);
  });
});

/** An app that takes 15 ms per message and remembers the most messages it held at once. */
function slowApp(): { behave: () => Promise<number>; peak: () => number } {
  let active = 0;
  let peak = 0;
  return {
    behave: async () => {
      active++;
      peak = Math.max(peak, active);
      await sleep(15);
      active--;
      return 200;
    },
    peak: () => peak,
  };
}

describe('pipeline: concurrency and drain', () => {
  test('never more than TURNOUT_CONCURRENCY messages at the app at once', async () => {
    const app = slowApp();
    const h = await harness({ concurrency: '3' }, { behave: app.behave });
    const ids = await h.send(30);
    await settled(h);
    const { tally } = account(h);
    assertEach(tally, ids, 'app');
    assert.equal(app.peak(), 3, 'reaches the limit (so the check means something) and never exceeds it');
  });

  test('the limit holds across several sources (each source has its own prefetch)', async () => {
    const app = slowApp();
    const h = await harness({ source: 'in,in2', concurrency: '3' }, { behave: app.behave });
    const ids = await h.send(15);
    for (let i = 0; i < 15; i++) {
      const id = randomUUID();
      ids.push(id);
      await h.broker.publish('in2', { id, payload: Buffer.from('{}'), headers: {} });
    }
    await settled(h);
    const { tally } = account(h, ['in2']);
    assertEach(tally, ids, 'app');
    assert.equal(app.peak(), 3);
    const sources = new Set(h.app?.deliveries.map((d) => d.source));
    assert.deepEqual([...sources].sort(), ['in', 'in2']);
  });

  test('drain: messages waiting for a slot are released too', async () => {
    // Two sources, prefetch 2 each, 2 slots: 2 messages at the app, 2 waiting for a slot.
    const h = await harness({ source: 'in,in2', concurrency: '2' }, { behave: () => ({ status: 200, delayMs: 300 }) });
    const ids = await h.send(3);
    for (let i = 0; i < 3; i++) {
      const id = randomUUID();
      ids.push(id);
      await h.broker.publish('in2', { id, payload: Buffer.from('{}'), headers: {} });
    }
    await waitFor('2 at the app and 4 handed out', async () => h.app?.active() === 2 && h.pipeline.inflight === 4);
    assert.equal(await h.metric('turnout_inflight_messages'), 4, 'the gauge reads the pipeline at scrape time');
    assert.deepEqual(await h.pipeline.drain(30), { clean: false, released: 4 });
    assert.equal(h.app?.deliveries.length, 2, 'the waiting ones never reached the app');
    const { tally } = account(h, ['in2']);
    assert.deepEqual(tally.missing(ids), []);
    assert.deepEqual(tally.duplicates(), []);
    assert.equal(tally.count('source'), 3);
    assert.equal(tally.count('in2'), 3);
    await waitFor('the app to finish', () => h.app?.active() === 0);
  });

  test('drain: in-flight messages finish before the deadline → clean', async () => {
    const h = await harness({ concurrency: '4' }, { behave: () => ({ status: 200, delayMs: 100 }) });
    const ids = await h.send(4);
    await waitFor('4 in flight', () => h.app?.active() === 4);
    const t0 = performance.now();
    const result = await h.pipeline.drain(5_000);
    assert.deepEqual(result, { clean: true, released: 0 });
    assert.ok(performance.now() - t0 < 2_000);
    const { tally } = account(h);
    assertEach(tally, ids, 'app');
    assert.equal(await h.metric('turnout_messages_delivered_total'), 4);
    assert.equal(await h.metric('turnout_inflight_messages'), 0);
  });

  test('drain: no new message is taken after drain starts', async () => {
    const h = await harness({ concurrency: '2' }, { behave: () => ({ status: 200, delayMs: 80 }) });
    const ids = await h.send(6);
    await waitFor('2 in flight', () => h.app?.active() === 2);
    assert.deepEqual(await h.pipeline.drain(5_000), { clean: true, released: 0 });
    const { tally } = account(h);
    assert.deepEqual(tally.missing(ids), []);
    assert.deepEqual(tally.duplicates(), []);
    assert.equal(tally.count('app'), 2);
    assert.equal(tally.count('source'), 4);
    assert.equal(h.app?.deliveries.length, 2);
  });

  test('drain: a slow app past the deadline → released, back on the source', async () => {
    const h = await harness({ concurrency: '2' }, { behave: () => ({ status: 200, delayMs: 400 }) });
    const ids = await h.send(5);
    await waitFor('2 in flight', () => h.app?.active() === 2);
    const t0 = performance.now();
    const result = await h.pipeline.drain(50);
    assert.deepEqual(result, { clean: false, released: 2 });
    assert.ok(performance.now() - t0 < 350, 'did not wait for the app');
    assert.equal(await h.metric('turnout_inflight_messages'), 0);
    assert.equal(await h.metric('turnout_messages_delivered_total'), 0);
    assert.equal(await h.metric('turnout_messages_dead_lettered_total'), 0);
    // Every message is on the source: 2 released + 3 never taken.
    const taken = new Set(h.app?.deliveries.map((d) => d.id));
    assert.equal(taken.size, 2);
    const { tally, source } = account(h);
    assertEach(tally, ids, 'source');
    assert.equal(source.length, 5);
    // The app went on working on the 2 it had and answered 200 to a closed
    // connection: at-least-once, they will be delivered again.
    await waitFor('the app to finish', () => h.app?.active() === 0);
    assert.deepEqual(new Set(h.app?.accepted.keys()), taken);
    assert.deepEqual(h.handlerErrors, []);
  });

  test('drain: messages waiting in backoff are released at the deadline', async () => {
    const h = await harness({ retryBackoff: '10000', maxAttempts: '5' }, { behave: () => 503 });
    const ids = await h.send(2);
    await waitFor('first attempts', () => h.app?.deliveries.length === 2);
    const t0 = performance.now();
    assert.deepEqual(await h.pipeline.drain(50), { clean: false, released: 2 });
    assert.ok(performance.now() - t0 < 1_000, 'backoff sleep was cut short');
    const { tally } = account(h);
    assertEach(tally, ids, 'source');
    assert.equal(await h.metric('turnout_messages_dead_lettered_total'), 0);
  });
});
