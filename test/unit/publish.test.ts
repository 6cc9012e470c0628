// Building a message from a publish request (POST /v1/publish): header text;
// and what publish() asks of the broker.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Message, PublishOptions } from '../../adapters/broker.ts';
import { MemoryBroker } from '../../adapters/memory/index.ts';
import { loadConfig } from '../../config/load.ts';
import { messageFromRequest, publish } from '../../src/publish.ts';
import { Router } from '../../src/router.ts';

const config = loadConfig({}, {}).config;
// Node hands request header values over one byte per character (Latin-1).
const asNodeReads = (text: string): string => Buffer.from(text, 'utf8').toString('latin1');

test('header values POSTed as UTF-8 become the text they spell (id, key, content type too); other bytes stay Latin-1', () => {
  // Regression: "x-city: 東京" was stored as the mojibake "æ\x9D±äº¬", which a broker consumer then read.
  const m = messageFromRequest({
    payload: Buffer.from('{}'),
    headers: {
      'x-city': asNodeReads('東京'),
      'x-latin1': 'caf\u00e9', // the single byte E9: not UTF-8, read as Latin-1
      'x-turnout-message-id': asNodeReads('id-日本'),
      'x-turnout-key': asNodeReads('ключ'),
      'content-type': asNodeReads('text/plain; title=é'),
    },
  }, config);
  assert.equal(m.headers['x-city'], '東京');
  assert.equal(m.headers['x-latin1'], 'café');
  assert.equal(m.id, 'id-日本');
  assert.equal(m.key, 'ключ');
  assert.equal(m.contentType, 'text/plain; title=é');
});

test('a header sent twice, one line Latin-1 and one UTF-8: each line is decoded on its own, then joined (found by the hostile-input campaign, seed 322703478)', () => {
  const m = messageFromRequest({
    payload: Buffer.from('{}'),
    headers: { 'x-note': ['\u00ff\u00fe', asNodeReads('émoji 🎉')], 'x-turnout-message-id': ['id-1'] },
  }, config);
  assert.equal(m.headers['x-note'], 'ÿþ, émoji 🎉');
  assert.equal(m.id, 'id-1');
});

test('publish() asks the broker to fail fast (503 at once while RabbitMQ blocks publishes), to a named queue and to a routed one', async () => {
  // The adapter does the refusing (test/integration/amqp/publish-blocked.test.ts): here, that the request path asks for it.
  class Recording extends MemoryBroker {
    readonly asked: (PublishOptions | undefined)[] = [];
    override publish(queue: string, message: Message, options?: PublishOptions): Promise<void> {
      this.asked.push(options);
      return super.publish(queue, message);
    }
  }
  const broker = new Recording({ queues: ['named', 'blue-q'] });
  await broker.connect();
  const router = new Router({ targets: { blue: 'blue-q', green: undefined }, routeKey: config.routeKey, weight: 0 });
  await publish({ payload: Buffer.from('{}'), headers: {}, queue: 'named' }, { config, broker, router });
  const routed = await publish({ payload: Buffer.from('{}'), headers: {} }, { config, broker, router });
  assert.equal(routed.queue, 'blue-q');
  assert.deepEqual(broker.asked, [{ failFast: true }, { failFast: true }]);
  assert.equal(broker.held(), 2);
  await broker.close();
});
