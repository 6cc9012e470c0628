import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TranslatorSet, parseTranslators } from '../../src/translators.ts';
import { decide } from '../../src/gate.ts';
import { deleteHeader, fromWire, headerValue, setHeader, toWire, withTwoHeaders } from '../../lib/headers.ts';
import { routeKeyOf } from '../../lib/route-key.ts';

test('headerValue matches names case-insensitively, exact first', () => {
  assert.equal(headerValue({ 'X-Schema-Version': '2' }, 'x-schema-version'), '2');
  assert.equal(headerValue({ 'x-schema-version': '3', 'X-Schema-Version': '2' }, 'x-schema-version'), '3');
  assert.equal(headerValue({ other: '1' }, 'x-schema-version'), undefined);
});

test('setHeader replaces every differently-cased copy; deleteHeader removes them all', () => {
  const h: Record<string, string> = { 'X-Schema-Version': '2', 'x-SCHEMA-version': '9', keep: 'k' };
  setHeader(h, 'x-schema-version', '1');
  assert.deepEqual(h, { keep: 'k', 'x-schema-version': '1' });
  deleteHeader(h, 'X-SCHEMA-VERSION');
  assert.deepEqual(h, { keep: 'k' });
});

test('withTwoHeaders is setHeader twice on a copy: same keys, values and order; the original is untouched', () => {
  const cases: Record<string, string>[] = [
    { 'X-Schema-Version': '2', 'x-SCHEMA-version': '9', keep: 'k', 'X-Turnout-Translated-From': '0', after: 'a' },
    { 'x-schema-version': '1' },
    {},
    JSON.parse('{"__proto__": "p", "x-schema-version": "1"}') as Record<string, string>,
  ];
  for (const h of cases) {
    const before = JSON.stringify(h);
    const expected = { ...h };
    setHeader(expected, 'x-schema-version', '3');
    setHeader(expected, 'x-turnout-translated-from', '1');
    const got = withTwoHeaders(h, 'x-schema-version', '3', 'x-turnout-translated-from', '1');
    assert.deepEqual(Object.entries(got), Object.entries(expected));
    assert.equal(Object.getPrototypeOf(got), Object.prototype);
    assert.equal(JSON.stringify(h), before);
  }
});

test('the gate reads a version header written in any case (AMQP/Kafka keep the producer\'s case)', () => {
  const set = parseTranslators('"2->1": "$"', 't.yaml');
  const d = decide({ 'X-Schema-Version': '2' }, { versionHeader: 'x-schema-version', defaultVersion: 1, accept: [1] }, set);
  assert.equal(d.kind, 'translate');
  const p = decide({ 'X-Schema-Version': 'v1' }, { versionHeader: 'x-schema-version', defaultVersion: 1, accept: [1] }, TranslatorSet.empty);
  assert.deepEqual(p, { kind: 'pass', version: 1 });
});

test('header:NAME route keys read the header in any case', () => {
  const m = { id: 'id-1', payload: Buffer.from('{}'), headers: { 'X-Tenant': 'acme' } };
  assert.equal(routeKeyOf(m, { kind: 'header', name: 'x-tenant' }), 'acme');
});

test('header text on HTTP is UTF-8: toWire/fromWire round-trip any text; bytes that are not UTF-8 read as Latin-1', () => {
  for (const text of ['plain', 'Müller', '東京', '🎉 z\u0301', '']) {
    assert.equal(fromWire(toWire(text)), text);
    assert.equal(Buffer.from(toWire(text), 'latin1').toString('utf8'), text, 'the bytes on the wire are the UTF-8 of the text');
  }
  // What Node hands over for the bytes C3 A9 (UTF-8 "é") and for a lone E9 (Latin-1 "é", not UTF-8).
  assert.equal(fromWire('\u00c3\u00a9'), 'é');
  assert.equal(fromWire('caf\u00e9'), 'café');
});
