// POST /v1/publish tells the app whether its message may be on the broker:
// 503 when the broker certainly did not take it (retry freely), 504 when the
// publish was handed over and no answer came (a retry may make a duplicate).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Registry } from 'prom-client';
import { BrokerError } from '../../adapters/broker.ts';
import { MemoryBroker } from '../../adapters/memory/index.ts';
import { loadConfig } from '../../config/load.ts';
import { createLogger } from '../../lib/log.ts';
import { HttpServer } from '../../src/http/server.ts';
import { Metrics } from '../../src/metrics.ts';
import { Router } from '../../src/router.ts';

const { config } = loadConfig({ broker: 'memory', source: 'in', dlq: 'dead', appUrl: 'http://127.0.0.1:1/', logLevel: 'silent' }, {});
const broker = new MemoryBroker({ queues: ['in', 'out'] });
const server = new HttpServer({
  config,
  broker,
  router: new Router({ targets: { blue: undefined, green: undefined }, routeKey: config.routeKey, weight: 0 }),
  metrics: new Metrics(new Registry(), { brokerUp: () => true, inflight: () => 0 }, { defaultMetrics: false }),
  logger: createLogger('silent'),
  readiness: () => ({ ready: true }),
});
let base = '';

before(async () => {
  await broker.connect();
  base = `http://127.0.0.1:${await server.listen(0, '127.0.0.1')}`;
});
after(async () => {
  await server.close();
  await broker.close();
});

const publish = async (): Promise<{ status: number; retryAfter: string | null; error: string }> => {
  const res = await fetch(`${base}/v1/publish/out`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), error: String(((await res.json()) as { error?: string }).error) };
};

test('a publish the broker certainly did not take: 503, retry-after 1', async () => {
  broker.publishFault = () => new BrokerError('unavailable', 'not connected; not published');
  const r = await publish();
  assert.deepEqual([r.status, r.retryAfter], [503, '1']);
  assert.doesNotMatch(r.error, /may have the message/);
});

test('a publish handed over whose answer never came: 504, retry-after 1, and the answer says a retry may duplicate it', async () => {
  broker.publishFault = () => new BrokerError('unavailable', 'no publisher confirm within 30000 ms', { unconfirmed: true });
  const r = await publish();
  assert.deepEqual([r.status, r.retryAfter], [504, '1']);
  assert.match(r.error, /no publisher confirm within 30000 ms; the broker may have the message: sending it again may make a duplicate/);
});

test('only unavailable can be unconfirmed: a refusal stays the refusal it is', async () => {
  assert.equal(new BrokerError('too-large', 'too big', { unconfirmed: true }).unconfirmed, false);
  broker.publishFault = () => new BrokerError('too-large', 'too big', { unconfirmed: true });
  assert.equal((await publish()).status, 413);
  broker.publishFault = undefined;
  assert.equal((await publish()).status, 202);
});
