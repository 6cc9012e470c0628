// An idle Kafka adapter keeps no timer loop running (adapters/kafka/idle-loop.ts):
// kafkajs 2.2.4 re-armed a 1 ms timer on every broker connection for ever while
// nothing waited (an idle turnout spent 3 % of a core in it). Counted here, not
// timed: how often kafkajs's request queues looked for waiting requests while
// the adapter sat connected (a producer, an admin client and a consumer) and
// did nothing. Without the fix that is about once per millisecond per
// connection; with it, only when a request was answered.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import RequestQueue from 'kafkajs/src/network/requestQueue/index.js';
import type { BrokerAdapter, Disposition } from '../../../adapters/broker.ts';
import { sleep } from '../../support/wait.ts';
import { startMockCluster, type MockCluster } from './cluster.ts';
import { kafkaAdapter } from './env.ts';
import { testProducer } from './topics.ts';

let cluster: MockCluster;
before(async () => {
  cluster = await startMockCluster();
});
after(() => cluster.stop());

test('an idle, connected adapter: kafkajs does not poll its request queues every millisecond', async () => {
  const src = await cluster.newTopic(1, 'idle');
  let adapter: BrokerAdapter | undefined;
  const checks = { n: 0 };
  const original = RequestQueue.prototype.checkPendingRequests;
  RequestQueue.prototype.checkPendingRequests = function counted(this: RequestQueue): void {
    checks.n++;
    original.call(this);
  };
  const producer = await testProducer(cluster);
  try {
    adapter = await kafkaAdapter(cluster);
    let handled = 0;
    const sub = await adapter.consume(src, async (): Promise<Disposition> => (handled++, { kind: 'ack' }), { prefetch: 4, group: `g-${src}` });
    await producer.send(src, [{ key: 'k', value: '{}', headers: { 'x-turnout-id': 'one' } }]);
    await adapter.publish(src, { id: 'two', payload: Buffer.from('{}'), headers: {} });
    for (let i = 0; i < 200 && handled < 2; i++) await sleep(50);
    assert.equal(handled, 2, 'both messages consumed: the connections are up and in use');
    await sleep(1000); // settle: commits, the last fetches
    const before = checks.n;
    await sleep(2000);
    const during = checks.n - before;
    // The consumer's fetches and heartbeats are answered in these 2 s, and each answer checks its queue once:
    // some dozens at most. The old timer loop made it ~2 000 per connection.
    assert.ok(during < 300, `${during} checks of the request queues in 2 s of idling`);
    await sub.stop();
  } finally {
    RequestQueue.prototype.checkPendingRequests = original;
    await producer.close();
    await adapter?.close();
  }
});

// The tests' own kafkajs clients load the same fix (topics.ts), so in this
// process the count above cannot tell whether the adapter loads it: a
// process that loads only the adapter says so.
test('loading the Kafka adapter alone replaces kafkajs\'s timer scheduling (the fix is the adapter\'s, not only the tests\')', async () => {
  const root = fileURLToPath(new URL('../../..', import.meta.url));
  const script = [
    "const RQ = (await import('kafkajs/src/network/requestQueue/index.js')).default;",
    'const unfixed = RQ.prototype.scheduleCheckPendingRequests;',
    `await import(${JSON.stringify(new URL('../../../adapters/kafka/index.ts', import.meta.url).href)});`,
    'console.log(RQ.prototype.scheduleCheckPendingRequests === unfixed ? "unfixed" : "fixed");',
  ].join('\n');
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { cwd: root });
  assert.equal(stdout.trim(), 'fixed');
});
