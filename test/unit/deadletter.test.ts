import assert from 'node:assert/strict';
import { validateHeaderValue } from 'node:http';
import { describe, test } from 'node:test';
import type { Received } from '../../adapters/broker.ts';
import { DEFERRALS_HEADER, deadLetterMessage, type DeadLetterReason } from '../../src/deadletter.ts';

const original = (over: Partial<Received> = {}): Received => ({
  id: 'm-1',
  payload: Buffer.from('{"email":"a@b"}'),
  headers: { 'x-schema-version': '1', 'x-tenant': 't1', [DEFERRALS_HEADER]: '3' },
  key: 'customer-9',
  contentType: 'application/json',
  source: 'orders',
  redelivered: true,
  ...over,
});

const at = new Date('2025-01-02T03:04:05.678Z');

describe('deadletter: deadLetterMessage', () => {
  test('every reason header is set', () => {
    for (const reason of ['max-attempts', 'rejected', 'unsupported-version', 'translate-error', 'too-large'] as DeadLetterReason[]) {
      const m = deadLetterMessage(original(), reason, 'app answered 500', 5, at);
      assert.equal(m.headers['x-turnout-dlq-reason'], reason);
      assert.equal(m.headers['x-turnout-error'], 'app answered 500');
      assert.equal(m.headers['x-turnout-attempts'], '5');
      assert.equal(m.headers['x-turnout-source'], 'orders');
      assert.equal(m.headers['x-turnout-failed-at'], '2025-01-02T03:04:05.678Z');
    }
  });

  test('failed-at defaults to now, as ISO time', () => {
    const before = Date.now();
    const m = deadLetterMessage(original(), 'rejected', 'x', 1);
    const t = Date.parse(m.headers['x-turnout-failed-at'] ?? '');
    assert.ok(t >= before && t <= Date.now());
    assert.match(m.headers['x-turnout-failed-at'] ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  test('the original payload, version, id, key and content type are kept', () => {
    const o = original();
    const m = deadLetterMessage(o, 'translate-error', 'step 1->2 failed', 0, at);
    assert.equal(m.id, 'm-1');
    assert.equal(m.payload, o.payload);
    assert.equal(m.payload.toString(), '{"email":"a@b"}');
    assert.equal(m.headers['x-schema-version'], '1');
    assert.equal(m.headers['x-tenant'], 't1');
    assert.equal(m.key, 'customer-9');
    assert.equal(m.contentType, 'application/json');
    assert.equal(m.headers['x-turnout-attempts'], '0');
  });

  test('no key / content type on the original → none on the copy (not "undefined")', () => {
    const m = deadLetterMessage(original({ key: undefined, contentType: undefined }), 'rejected', 'x', 1, at);
    assert.equal('key' in m, false);
    assert.equal('contentType' in m, false);
  });

  test('x-turnout-deferrals is removed; the original is not modified', () => {
    const o = original();
    const m = deadLetterMessage(o, 'unsupported-version', 'deferred too often', 0, at);
    assert.equal(DEFERRALS_HEADER, 'x-turnout-deferrals');
    assert.equal(m.headers[DEFERRALS_HEADER], undefined);
    assert.equal(o.headers[DEFERRALS_HEADER], '3');
    assert.equal(o.headers['x-turnout-dlq-reason'], undefined);
  });

  test('the copy carries only message fields, not source/redelivered', () => {
    const m = deadLetterMessage(original(), 'rejected', 'x', 1, at) as unknown as Record<string, unknown>;
    assert.deepEqual(Object.keys(m).sort(), ['contentType', 'headers', 'id', 'key', 'payload']);
  });

  test('reason headers overwrite stale ones from an earlier dead-lettering', () => {
    const o = original({ headers: { 'x-turnout-dlq-reason': 'rejected', 'x-turnout-attempts': '9', 'x-turnout-source': 'old' } });
    const m = deadLetterMessage(o, 'max-attempts', 'again', 2, at);
    assert.equal(m.headers['x-turnout-dlq-reason'], 'max-attempts');
    assert.equal(m.headers['x-turnout-attempts'], '2');
    assert.equal(m.headers['x-turnout-source'], 'orders');
  });

  test('the error text is flattened to one line', () => {
    const m = deadLetterMessage(original(), 'rejected', '  app answered 400:\r\n\tbad\n\nfield  ', 1, at);
    assert.equal(m.headers['x-turnout-error'], 'app answered 400: bad field');
    assert.doesNotMatch(m.headers['x-turnout-error'] ?? '', /[\r\n\t]/);
  });

  test('the error text is truncated to 512 characters, ending in ...', () => {
    const m = deadLetterMessage(original(), 'rejected', 'x'.repeat(2000), 1, at);
    const e = m.headers['x-turnout-error'] ?? '';
    assert.equal(e.length, 512);
    assert.equal(e, `${'x'.repeat(509)}...`);
    const exact = deadLetterMessage(original(), 'rejected', 'y'.repeat(512), 1, at).headers['x-turnout-error'];
    assert.equal(exact, 'y'.repeat(512), 'exactly 512 is kept whole');
  });

  test('the error text is printable ASCII, so the DLQ copy can be delivered over HTTP again (green → blue)', () => {
    const texts = ['Ошибка: 数据库不可用 🙁', 'bad \u0000 byte \u001b[31m red \u007f', 'café', 'z'.repeat(600), '…'.repeat(600)];
    for (const text of texts) {
      const e = deadLetterMessage(original(), 'rejected', text, 1, at).headers['x-turnout-error'] ?? '';
      assert.match(e, /^[\x20-\x7e]*$/, JSON.stringify(text));
      assert.doesNotThrow(() => validateHeaderValue('x-turnout-error', e));
      assert.ok(e.length <= 512);
    }
    // Nothing is silently lost: other characters are written as \uXXXX.
    assert.equal(deadLetterMessage(original(), 'rejected', 'café\u0000!', 1, at).headers['x-turnout-error'], 'caf\\u00e9\\u0000!');
    // Every header turnout adds passes HTTP's rules too.
    const m = deadLetterMessage(original(), 'max-attempts', texts[0] ?? '', 3, at);
    for (const [k, v] of Object.entries(m.headers)) assert.doesNotThrow(() => validateHeaderValue(k, v), k);
  });
});
