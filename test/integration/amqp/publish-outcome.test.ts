// What a failed publish says about its message, on the real RabbitMQ behind
// a fault proxy this test owns: `unconfirmed` (POST /v1/publish answers 504)
// when it was written and no confirm came, so RabbitMQ may have it; plain
// `unavailable` (503) when it was never sent. And close() against a RabbitMQ
// that does not answer: bounded, where amqplib would wait for ever.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { AmqpBroker } from '../../../adapters/amqp/index.ts';
import { BrokerError, type Message } from '../../../adapters/broker.ts';
import { startFaultProxy, type FaultProxy } from '../../support/fault-proxy.ts';
import { waitFor } from '../../support/wait.ts';
import { rabbitShared } from './lock.ts';
import { AMQP_URL, TestRabbit, connectedBroker } from './rabbit.ts';

const msg = (): Message => ({ id: randomUUID(), payload: Buffer.from('{}'), headers: {} });
const failure = (p: Promise<void>): Promise<unknown> => p.then(() => assert.fail('the publish was confirmed'), (err: unknown) => err);

describe('amqp: what a failed publish says about the message', () => {
  const rabbit = new TestRabbit('outcome');
  let release: () => void = () => {};
  let proxy: FaultProxy;
  const opened: AmqpBroker[] = [];
  const viaProxy = async (): Promise<AmqpBroker> => {
    const url = new URL(AMQP_URL);
    url.hostname = proxy.host;
    url.port = String(proxy.port);
    const b = await connectedBroker({ url: url.toString(), confirmTimeoutMs: 300, reconnectMinMs: 50, reconnectMaxMs: 200 });
    opened.push(b);
    return b;
  };

  before(async () => {
    release = await rabbitShared();
    const u = new URL(AMQP_URL);
    proxy = await startFaultProxy({ host: u.hostname, port: Number(u.port || 5672) });
  });
  after(async () => {
    for (const b of opened) await b.close();
    await proxy.close();
    await rabbit.teardown();
    release();
  });

  test('no confirm within the timeout: unavailable and unconfirmed, and RabbitMQ has the message after all', async () => {
    const b = await viaProxy();
    const q = await rabbit.queue('classic');
    await b.publish(q, msg()); // opens the confirm channel
    await proxy.set({ kind: 'delay', ms: 1500 });
    const m = msg();
    const err = await failure(b.publish(q, m));
    assert.ok(err instanceof BrokerError && err.code === 'unavailable' && err.unconfirmed, String(err));
    await proxy.set({ kind: 'pass' });
    await waitFor('the unconfirmed message on the queue', async () => (await rabbit.ready(q)) === 2, 15_000, 100);
    assert.ok((await rabbit.drain(q)).some((x) => x.properties.messageId === m.id), 'the message the publish failed for is on the queue');
    await b.close();
  });

  test('the connection cut while the confirm is due: unconfirmed; a publish after close() was never sent: not', async () => {
    const b = await viaProxy();
    const q = await rabbit.queue('classic');
    await b.publish(q, msg());
    await proxy.set({ kind: 'delay', ms: 1000 });
    const cutOff = b.publish(q, msg());
    await new Promise((resolve) => setImmediate(resolve)); // written to the socket, confirm a second away
    assert.ok(proxy.cut() > 0);
    const err = await failure(cutOff);
    assert.ok(err instanceof BrokerError && err.code === 'unavailable' && err.unconfirmed, String(err));
    await proxy.set({ kind: 'pass' });
    await b.close();
    const never = await failure(b.publish(q, msg()));
    assert.ok(never instanceof BrokerError && never.code === 'unavailable' && !never.unconfirmed, String(never));
  });

  test('close() with RabbitMQ not answering (every byte swallowed): it gives up on the close-ok after 5 s instead of holding the shutdown', async () => {
    const b = await viaProxy();
    await proxy.set({ kind: 'blackhole' });
    const started = Date.now();
    await b.close();
    const took = Date.now() - started;
    await proxy.set({ kind: 'pass' });
    assert.ok(took >= 4_000 && took < 15_000, `close() took ${took} ms`);
    assert.equal(b.isUp(), false);
  });
});
