// The adapter's pure parts (no broker needed): header rendering, the delay
// queue's name and death-header cleanup, error classes, the management URL.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BrokerError } from '../../../adapters/broker.ts';
import { headerString, toPublishOptions, unencodable } from '../../../adapters/amqp/codec.ts';
import { delayQueueName, stripOwnDeath } from '../../../adapters/amqp/delay.ts';
import { classify, maxSizeFrom, redact } from '../../../adapters/amqp/errors.ts';
import { managementTarget } from '../../../adapters/amqp/management.ts';

describe('amqp adapter parts', () => {
  test('header values become strings; typed values and tables are readable', () => {
    assert.equal(headerString('s'), 's');
    assert.equal(headerString(7), '7');
    assert.equal(headerString(false), 'false');
    assert.equal(headerString(Buffer.from('é')), 'é');
    assert.equal(headerString(null), undefined);
    assert.equal(headerString({ '!': 'timestamp', value: 0 }), '"1970-01-01T00:00:00.000Z"');
    assert.equal(headerString([{ queue: 'q', count: 2, time: { '!': 'timestamp', value: 1 } }]), '[{"queue":"q","count":2,"time":"1970-01-01T00:00:01.000Z"}]');
  });

  test('publish options: persistent, mandatory, key as header, broker-owned headers dropped', () => {
    const o = toPublishOptions({ id: 'i', payload: Buffer.alloc(0), headers: { a: '1', 'x-death': '[]', CC: 'other', BCC: 'x' }, key: 'k', contentType: 'text/plain' }, { expiration: 1500.4 });
    assert.deepEqual(o, { persistent: true, mandatory: true, messageId: 'i', headers: { a: '1', 'x-turnout-key': 'k' }, contentType: 'text/plain', expiration: '1500' });
  });

  test('what AMQP cannot carry (short strings over 255 bytes) is named, not left to a bare RangeError', () => {
    // Found by the hostile-input campaign: a 300-byte header name POSTed to /v1/publish got 400 "The value of \"value\" is out of range".
    const m = { id: 'i', payload: Buffer.alloc(0), headers: { a: '1' } };
    assert.equal(unencodable('q', m), undefined);
    assert.equal(unencodable('q', { ...m, headers: { ['é'.repeat(127)]: 'v' } }), undefined, '254 bytes fit');
    assert.match(unencodable('q', { ...m, headers: { [`x-${'n'.repeat(300)}`]: 'v' } }) ?? '', /^header name "x-n+…" is 302 bytes; AMQP allows 255$/);
    assert.match(unencodable('q'.repeat(256), m) ?? '', /^queue name .* is 256 bytes/);
    assert.match(unencodable('q', { ...m, id: '日'.repeat(90) }) ?? '', /^message id .* is 270 bytes/);
    assert.match(unencodable('q', { ...m, contentType: 'x'.repeat(300) }) ?? '', /^content type .* is 300 bytes/);
  });

  test("the delay queue's death headers are removed, other queues' kept", () => {
    const dq = delayQueueName('orders');
    assert.equal(dq, 'turnout.delay.orders');
    const h: Record<string, string> = {
      'x-death': JSON.stringify([{ queue: dq, reason: 'expired' }, { queue: 'orders.v0', reason: 'rejected' }]),
      'x-first-death-queue': 'orders.v0', 'x-first-death-reason': 'rejected', 'x-first-death-exchange': '',
      'x-last-death-queue': dq, 'x-last-death-reason': 'expired', 'x-last-death-exchange': '',
      other: 'kept',
    };
    stripOwnDeath(h, dq);
    assert.deepEqual(h, {
      'x-death': JSON.stringify([{ queue: 'orders.v0', reason: 'rejected' }]),
      'x-first-death-queue': 'orders.v0', 'x-first-death-reason': 'rejected', 'x-first-death-exchange': '',
      other: 'kept',
    });
    const only: Record<string, string> = { 'x-death': JSON.stringify([{ queue: dq }]), 'x-first-death-queue': dq, 'x-first-death-reason': 'expired' };
    stripOwnDeath(only, dq);
    assert.deepEqual(only, {});
  });

  test('a long source name still gives a valid (<= 255 bytes), stable delay queue name', () => {
    const long = 'q'.repeat(250);
    const a = delayQueueName(long);
    assert.ok(Buffer.byteLength(a) <= 255);
    assert.equal(a, delayQueueName(long));
    assert.notEqual(a, delayQueueName(`${long}x`));
  });

  test('errors are classified where they enter', () => {
    const code = (c: number | string, message = 'x'): string => classify(Object.assign(new Error(message), { code: c }), 'doing').code;
    assert.equal(code(404), 'unknown-queue');
    assert.equal(code(403), 'forbidden');
    assert.equal(code(406), 'invalid');
    assert.equal(code(320), 'unavailable');
    assert.equal(code('ECONNREFUSED'), 'unavailable');
    assert.equal(classify(new Error('Handshake terminated by server: 403 (ACCESS-REFUSED) with message "…"'), 'connecting').code, 'forbidden');
    assert.equal(classify(new RangeError('headers table too big'), 'publishing').code, 'invalid');
    const e = classify(new Error('channel closed'), 'publishing m');
    assert.ok(e instanceof BrokerError && e.retriable && e.message === 'publishing m: channel closed');
    assert.equal(maxSizeFrom(new Error('PRECONDITION_FAILED - message size 2000 is larger than configured max size 1024')), 1024);
    assert.equal(redact('amqp://user:secret@host:5672/vh'), 'amqp://user:***@host:5672/vh');
  });

  test('the management API is derived from the AMQP URL, can be pointed elsewhere or switched off', () => {
    const a = managementTarget('amqp://u:p%40ss@rabbit.svc:5672/prod%2Fa?heartbeat=5');
    assert.equal(a.amqpUrl, 'amqp://u:p%40ss@rabbit.svc:5672/prod%2Fa?heartbeat=5');
    assert.deepEqual(a.target, { base: 'http://rabbit.svc:15672', vhost: 'prod/a', authorization: `Basic ${Buffer.from('u:p@ss').toString('base64')}` });
    const b = managementTarget('amqps://u:p@rabbit/?management=https%3A%2F%2Fmgmt.example%3A443%2F');
    assert.equal(b.amqpUrl, 'amqps://u:p@rabbit/');
    assert.equal(b.target?.base, 'https://mgmt.example:443');
    assert.equal(b.target?.vhost, '/');
    assert.equal(managementTarget('amqps://rabbit').target?.base, 'https://rabbit:15671');
    assert.equal(managementTarget('amqp://rabbit?management=off').target, undefined);
  });
});
