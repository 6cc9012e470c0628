// The Kafka adapter's pure parts, without a broker: records ↔ messages and
// the classification of kafkajs errors (the shapes kafkajs really throws:
// protocol errors wrapped in retry and aggregate errors).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KafkaMessage } from 'kafkajs';
import { BrokerError } from '../../../adapters/broker.ts';
import { classify, codeOf, isRebalance } from '../../../adapters/kafka/errors.ts';
import { fromRecord, toRecord } from '../../../adapters/kafka/records.ts';

type Over = { key?: Buffer | null; value?: Buffer | null; offset?: string; headers?: NonNullable<KafkaMessage['headers']> };
const record = (over: Over): KafkaMessage => ({
  key: null,
  value: Buffer.from('{}'),
  timestamp: '0',
  attributes: 0,
  offset: '7',
  headers: {},
  ...over,
});

test('a message survives toRecord → fromRecord: id, key, payload bytes, headers, content type', () => {
  const payload = Buffer.from([0, 255, 10]);
  const r = toRecord({ id: 'm-1', key: 'k', payload, headers: { 'x-a': '1', 'x-empty': '' }, contentType: 'application/octet-stream' });
  const back = fromRecord('t', 0, record({ key: Buffer.from(r.key as string), value: r.value as Buffer, headers: r.headers }));
  assert.deepEqual(back.message, { id: 'm-1', key: 'k', payload, headers: { 'x-a': '1', 'x-empty': '' }, contentType: 'application/octet-stream' });
  assert.equal(back.notBefore, undefined);
});

test('turnout-owned headers cannot be forged through message headers', () => {
  const r = toRecord({ id: 'real', payload: Buffer.alloc(0), headers: { 'X-Turnout-Id': 'fake', 'content-type': 'text/x-fake', 'x-turnout-not-before': '1' } }, 5000);
  const back = fromRecord('t', 0, record({ headers: r.headers }));
  assert.equal(back.message.id, 'real');
  assert.equal(back.message.contentType, undefined);
  assert.equal(back.notBefore, 5000);
  assert.deepEqual(back.message.headers, {});
});

test('records from other producers: lower-cased names, first of a repeated header, position as id, no key', () => {
  const back = fromRecord('orders', 3, record({ offset: '42', headers: { 'X-Schema-Version': Buffer.from('2'), 'x-multi': [Buffer.from('a'), Buffer.from('b')] } }));
  assert.equal(back.message.id, 'orders/3/42');
  assert.deepEqual(back.message.headers, { 'x-schema-version': '2', 'x-multi': 'a' });
  assert.equal(back.message.key, undefined);
  assert.deepEqual(fromRecord('t', 0, record({ value: null })).message.payload, Buffer.alloc(0));
});

test('kafkajs errors are classified by the protocol error inside them', () => {
  const protocol = (type: string): Error => Object.assign(new Error(type), { name: 'KafkaJSProtocolError', type, retriable: true });
  const retries = (cause: Error): Error => Object.assign(new Error('retries exceeded'), { name: 'KafkaJSNumberOfRetriesExceeded', cause });
  assert.equal(codeOf(retries(protocol('UNKNOWN_TOPIC_OR_PARTITION'))), 'unknown-queue');
  assert.equal(codeOf(retries(protocol('MESSAGE_TOO_LARGE'))), 'too-large');
  assert.equal(codeOf(protocol('TOPIC_AUTHORIZATION_FAILED')), 'forbidden');
  assert.equal(codeOf(Object.assign(new Error('x'), { name: 'KafkaJSSASLAuthenticationError' })), 'forbidden');
  assert.equal(codeOf(Object.assign(new Error('agg'), { errors: [protocol('INVALID_RECORD')] })), 'invalid');
  assert.equal(codeOf(Object.assign(new Error('Connection error: ECONNREFUSED'), { name: 'KafkaJSConnectionError' })), 'unavailable');
  const e = classify(retries(protocol('UNKNOWN_TOPIC_OR_PARTITION')), 'publish to x');
  assert.ok(e instanceof BrokerError);
  assert.equal(e.retriable, false);
  assert.match(e.message, /^publish to x: .*UNKNOWN_TOPIC_OR_PARTITION/);
  assert.equal(isRebalance(retries(protocol('REBALANCE_IN_PROGRESS'))), true);
  assert.equal(isRebalance(protocol('NOT_COORDINATOR_FOR_GROUP')), false);
});
