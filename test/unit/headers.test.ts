import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TranslatorSet, parseTranslators } from '../../src/translators.ts';
import { decide } from '../../src/gate.ts';
import { deleteHeader, headerValue, setHeader } from '../../lib/headers.ts';
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
