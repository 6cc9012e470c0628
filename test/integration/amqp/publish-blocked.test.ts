// An app consuming from and publishing through its sidecar while RabbitMQ is
// in a resource alarm (the real one: the node's memory watermark set below
// what it uses). RabbitMQ reads nothing more from a connection that
// publishes, acks included, and tells it so (connection.blocked) after its
// first publish. That publish waits for the alarm to clear. Every later one
// is answered 503 at once, unsent, so the app can retry without making a
// duplicate (before, each was written and held for the 30 s confirm timeout,
// then answered 504, "may be there"). And consuming goes on meanwhile: the
// sidecar publishes on a connection of its own (before, one connection did
// both, and the first publish stopped the acks, so at most the prefetch
// more messages reached the app until the alarm cleared).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startApp, type TestApp } from '../../support/app.ts';
import { startTurnout, type TurnoutProcess } from '../../support/process.ts';
import { Tally } from '../../support/tally.ts';
import { waitFor } from '../../support/wait.ts';
import { rabbitExclusive } from './lock.ts';
import { AMQP_URL, RetryingProducer, TestRabbit } from './rabbit.ts';
import { withMemoryAlarm } from './rabbitmqctl.ts';

const REFUSED = 20;
/** Source messages, consumed two at a time at ~40/s: still being consumed when the alarm is on. */
const SOURCE_MESSAGES = 600;
const CONCURRENCY = 2;
/** Deliveries to wait for during the alarm: far more than the prefetch a blocked connection would let through. */
const DURING_ALARM = 40;

interface Answer {
  status: number;
  retryAfter: string | null;
  error: string;
}

describe('amqp: publishing through a sidecar while RabbitMQ blocks publishers', () => {
  const rabbit = new TestRabbit('blocked');
  let app: TestApp | undefined;
  let sidecar: TurnoutProcess | undefined;

  before(async () => {
    app = await startApp(() => ({ status: 200, delayMs: 50 }));
  });
  after(async () => {
    await sidecar?.kill();
    await app?.close();
    await rabbit.teardown();
  });

  test('memory alarm: consuming goes on; the publish that met it waits and lands; the ones after are 503 at once and never reach the queue', async () => {
    await rabbitExclusive(async () => {
      const a = app as TestApp;
      const source = await rabbit.queue('classic', 'source');
      const target = await rabbit.queue('classic', 'target');
      const sourceIds = Array.from({ length: SOURCE_MESSAGES }, (_, i) => `s-${i}`);
      // From a connection of its own, closed before the alarm (RabbitMQ would block it too).
      const producer = new RetryingProducer();
      for (const id of sourceIds) await producer.publish(source, id, Buffer.from('{}'));
      await producer.close();
      const t = await startTurnout({ TURNOUT_BROKER: AMQP_URL, TURNOUT_SOURCE: source, TURNOUT_APP_URL: a.url, TURNOUT_CONCURRENCY: String(CONCURRENCY) });
      sidecar = t;
      const post = async (id: string): Promise<Answer> => {
        const res = await fetch(`${t.baseUrl}/v1/publish/${encodeURIComponent(target)}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-turnout-message-id': id },
          body: JSON.stringify({ id }),
        });
        const body = (await res.json()) as { error?: string };
        return { status: res.status, retryAfter: res.headers.get('retry-after'), error: String(body.error) };
      };
      const readyz = async (): Promise<number> => (await fetch(`${t.baseUrl}/readyz`)).status;
      const readyReason = async (): Promise<string> => String(((await (await fetch(`${t.baseUrl}/readyz`)).json()) as { reason?: string }).reason);

      assert.equal((await post('before')).status, 202);
      const refused: Answer[] = [];
      const { meeting } = await withMemoryAlarm(async () => {
        // RabbitMQ tells a connection it is blocked when it next publishes: this one.
        const meeting = post('met-the-alarm');
        await waitFor('turnout to hear connection.blocked', () => t.logs().some((l) => String(l.msg).startsWith('RabbitMQ blocked the publishing connection')), 30_000, 50);
        assert.equal(await readyz(), 503, 'not ready while blocked');
        assert.equal(await readyReason(), 'RabbitMQ is blocking publishes (resource alarm: low on memory)');
        const status = (await (await fetch(`${t.baseUrl}/v1/status`)).json()) as { queues: { queue: string; depth: number | null; error?: string }[] };
        const sourceRow = status.queues.find((q) => q.queue === source);
        assert.equal(typeof sourceRow?.depth, 'number', `the status page has the source's depth during the alarm: ${JSON.stringify(sourceRow)}`);
        for (let i = 0; i < REFUSED; i++) refused.push(await post(`refused-${i}`));
        const delivered = a.deliveries.length;
        assert.ok(delivered < SOURCE_MESSAGES - DURING_ALARM, `the source is still being consumed (${delivered} of ${SOURCE_MESSAGES} delivered)`);
        await waitFor(`${DURING_ALARM} more deliveries while the publishing connection is blocked`, () => a.deliveries.length >= delivered + DURING_ALARM, 30_000, 50);
        assert.ok((await rabbit.ready(target)) >= 0, 'queue checks answer during the alarm');
        // Wrapped: an async function returning the promise itself would wait for it, and the alarm would never be cleared.
        return { meeting };
      });
      const met = await meeting;
      assert.equal(met.status, 202, `the publish that met the alarm is confirmed once it clears: ${JSON.stringify(met)}`);
      await waitFor('turnout to hear connection.unblocked', () => t.logs().some((l) => l.msg === 'RabbitMQ unblocked the publishing connection'), 30_000, 50);
      assert.equal(await readyz(), 200);
      assert.equal((await post('after')).status, 202);

      assert.deepEqual(refused.map((a) => a.status), Array(REFUSED).fill(503), 'every publish during the block is refused');
      for (const a of refused) {
        assert.equal(a.retryAfter, '1');
        assert.match(a.error, /RabbitMQ is blocking publishes on this connection \(resource alarm: low on memory\); message refused-\d+ to .* not sent/);
      }
      const tally = new Tally();
      for (const m of await rabbit.drain(target)) tally.record('queue', String(m.properties.messageId));
      assert.deepEqual([...tally.ids('queue')].sort(), ['after', 'before', 'met-the-alarm'], 'the three accepted, and none refused, are on the queue');
      assert.deepEqual(tally.duplicates(), [], 'each once');
      await waitFor(`all ${SOURCE_MESSAGES} source messages delivered`, () => sourceIds.every((id) => a.accepted.has(id)), 60_000, 100);
      const consumed = new Tally();
      for (const d of a.deliveries) consumed.record('app', d.id);
      assert.deepEqual(consumed.missing(sourceIds), [], 'every source message reached the app');
      assert.deepEqual(consumed.duplicates(), [], 'each once');
      assert.equal(await rabbit.ready(source), 0, 'the source is empty');
      assert.equal(await t.stop('SIGTERM'), 0, t.output());
    });
  });
});
